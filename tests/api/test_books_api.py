"""The books through the API and the console: performance, lots, gains; a token is
needed, the role checked, an unknown account is 404, a bad date 422 naming the field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from api_helpers import auth
from test_console import sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_performance_over_the_api(world):
    c, t = world["client"], world["tokens"]
    r = c.get("/api/v1/accounts/alice/performance", headers=auth(t["viewer"]))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["windows"], doc["from"], doc["deposits"], doc["start_value"]) == (1, "2026-11-24", "1000.00", "0.00")
    end = Decimal(doc["end_value"])
    assert doc["twr"] == pytest.approx(float(end / 1000 - 1), abs=1e-8)
    assert doc == c.get("/api/v1/accounts/alice/performance?from=2026-11-01&to=2026-11-30",
                        headers=auth(t["viewer"])).json()
    empty = c.get("/api/v1/accounts/alice/performance?from=2026-11-25", headers=auth(t["viewer"])).json()
    assert (empty["windows"], empty["twr"], empty["start_value"]) == (0, None, doc["end_value"])


def test_performance_refusals(world):
    c, t = world["client"], world["tokens"]
    assert c.get("/api/v1/accounts/alice/performance").status_code == 401
    assert c.get("/api/v1/accounts/alice/performance", headers=auth(world["revoked"])).status_code == 401
    missing = c.get("/api/v1/accounts/zed/performance", headers=auth(t["viewer"]))
    assert missing.status_code == 404 and "no account named 'zed'" in missing.json()["detail"]
    bad = c.get("/api/v1/accounts/alice/performance?from=2026-13-01", headers=auth(t["viewer"]))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "from"
    reversed_ = c.get("/api/v1/accounts/alice/performance?from=2026-11-25&to=2026-11-24", headers=auth(t["viewer"]))
    assert reversed_.status_code == 422 and "after --to" in reversed_.json()["detail"]


def test_performance_page(world):
    c = world["client"]
    assert c.get("/console/accounts/alice/performance", follow_redirects=False).status_code == 303
    sign_in(c, world["tokens"]["viewer"])
    assert 'href="/console/accounts/alice/performance"' in c.get("/console/accounts/alice").text
    page = c.get("/console/accounts/alice/performance")
    assert page.status_code == 200 and 'id="twr"' in page.text and "$1,000.00" in page.text
    assert c.get("/console/accounts/zed/performance").status_code == 404
    bad = c.get("/console/accounts/alice/performance?from=nope")
    assert bad.status_code == 422 and "from &#39;nope&#39; is not a date" in bad.text
