"""schemathesis against the API's own OpenAPI document: generated requests (with an admin
token) never get a 5xx, and every response matches its schema; requests that break the
schema (schemathesis' negative mode), and bodies that are large, truncated, deeply nested
or not JSON at all, never get a 5xx either, and never come back larger than they went."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# The routes that only read or refuse without side effects worth fuzzing (token deletion
# would lock the fuzzer out: it is covered by test_api.py).
SKIP = {("DELETE", "/api/v1/tokens/{name}")}


def operations(world):
    """The API's operations from its own OpenAPI document (read with an admin token), but SKIP."""
    token = world["tokens"]["admin"]
    doc = world["client"].get("/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.app = world["client"].app
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) not in SKIP:
            yield op


def test_the_api_keeps_its_own_schema(world):
    token = world["tokens"]["admin"]
    assert world["client"].get("/openapi.json").status_code == 401          # the document needs a token too
    ran = 0
    for op in operations(world):

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                   checks=[not_a_server_error, response_schema_conformance])
        run()
        ran += 1
    assert ran >= 12


def test_schema_breaking_requests_never_get_a_5xx(world):
    token = world["tokens"]["admin"]
    ran = 0
    for op in operations(world):

        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(GenerationMode.NEGATIVE))
        def run(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error])
        try:
            run()
        except Unsatisfiable:          # nothing to break: a route without parameters or body
            continue
        ran += 1
    assert ran >= 10


POSTS = ["/api/v1/events", "/api/v1/accounts", "/api/v1/events/1/cancel", "/api/v1/policies/plan",
         "/api/v1/policies/apply", "/api/v1/tokens", "/console/login", "/console/accounts/alice/events"]
VALID = b'{"account": "alice", "kind": "deposit", "amount": "5"}'
bodies = st.one_of(
    st.binary(max_size=300),                                                   # anything at all
    st.builds(lambda piece, n: piece * n, st.binary(min_size=1, max_size=40), st.integers(1, 5000)),  # up to 200 KB
    st.integers(1, len(VALID) - 1).map(lambda n: VALID[:n]),                  # truncated JSON
    st.integers(1, 20_000).map(lambda n: b"[" * n + b"]" * n),                # deeply nested
    st.integers(1, 40_000).map(lambda n: b'{"account": "alice", "kind": "deposit", "amount": "' + b"9" * n + b'"}'),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(60_000, 200_000).map(lambda n: b'{"account": "' + b"a" * n + b'"}'),   # around the 64 KiB limit
)


def test_large_and_malformed_bodies_never_get_a_5xx_nor_an_echo(world):
    c = world["client"]
    limit = c.app.state.settings.api_max_body_bytes
    headers = {"Authorization": f"Bearer {world['tokens']['admin']}"}

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(POSTS), body=bodies,
           kind=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                 "multipart/form-data; boundary=x", None]))
    def run(path, body, kind):
        c.app.state.limiter._fails.clear()            # failed sign-ins on /console/login count; start afresh
        r = c.post(path, content=body, headers={**headers, **({"content-type": kind} if kind else {})},
                   follow_redirects=False)
        assert r.status_code < 500, (path, kind, len(body), r.text[:300])
        if len(body) > limit:
            assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
            seen["too large"] += 1
        assert len(r.content) < 4000 or r.headers["content-type"].startswith("text/html")
        assert r.status_code != 429
        seen["sent"] += 1
    seen = {"too large": 0, "sent": 0}
    run()
    print(f"bodies: {seen['sent']} sent, {seen['too large']} past the limit (413)")
    assert seen["too large"] > 0
