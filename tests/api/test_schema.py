"""schemathesis against the API's own OpenAPI document: generated requests (with an admin
token) never get a 5xx, and every response matches its schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# The routes that only read or refuse without side effects worth fuzzing (token deletion
# would lock the fuzzer out: it is covered by test_api.py).
SKIP = {("DELETE", "/api/v1/tokens/{name}")}


def test_the_api_keeps_its_own_schema(world):
    token = world["tokens"]["admin"]
    assert world["client"].get("/openapi.json").status_code == 401          # the document needs a token too
    doc = world["client"].get("/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.app = world["client"].app
    ran = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP:
            continue

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                   checks=[not_a_server_error, response_schema_conformance])
        run()
        ran += 1
    assert ran >= 12
