"""A hostile policy file (issue 19, item 4) answered at once over HTTP: the API's plan is a
422 naming the place, the console's policies page shows the error (once both hung)."""

from __future__ import annotations

import html

import pytest

from api_helpers import auth
from language import hostile
from test_console import sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_plan_and_console_answer_a_file_that_expands_past_the_cap(world, tmp_path):
    (tmp_path / "core.pie").write_text(hostile.fanout(8, 50, 50))
    c = world["client"]
    r = c.post("/api/v1/policies/plan", json={"file": "core.pie"}, headers=auth(world["tokens"]["analyst"]))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert 'core.pie:13001:5: error: pie "L6P0" has 127,550 slices once every `use` is expanded' in r.json()["detail"]
    sign_in(c, world["tokens"]["analyst"])
    page = c.get("/console/policies")
    assert page.status_code == 200 and 'pie "L6P0" has 127,550 slices' in html.unescape(page.text)
