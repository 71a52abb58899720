"""The HTTP API: the same answers as the CLI for the same ledger, and every route refusing
a missing, wrong, revoked or too-weak token; problem details; idempotency; the audit."""

from __future__ import annotations

import json

import pytest

from engine.shell.api import MAX_FAILURES

from api_helpers import auth



# Every route, the least role it needs, and a request that would succeed with that role.
ROUTES = [
    ("get", "/api/v1/accounts", "viewer", None),
    ("get", "/api/v1/accounts/alice", "viewer", None),
    ("get", "/api/v1/accounts/alice/history", "viewer", None),
    ("get", "/api/v1/windows", "viewer", None),
    ("get", "/api/v1/windows/1", "viewer", None),
    ("get", "/metrics", "viewer", None),
    ("post", "/api/v1/events", "operator", {"account": "alice", "kind": "deposit", "amount": "5"}),
    ("post", "/api/v1/accounts", "operator", {"accounts": [{"name": "carol", "pie": "Core"}]}),
    ("post", "/api/v1/events/999/cancel", "operator", None),
    ("post", "/api/v1/windows/run?name=open", "operator", None),
    ("get", "/api/v1/windows/runs/1", "viewer", None),
    ("get", "/api/v1/status", "viewer", None),
    ("get", "/api/v1/plan?account=alice", "viewer", None),
    ("post", "/api/v1/policies/plan", "analyst", {"file": "core.pie"}),
    ("post", "/api/v1/policies/apply", "analyst", {"file": "core.pie", "sha256": "x"}),
    ("get", "/api/v1/tokens", "admin", None),
    ("post", "/api/v1/tokens", "admin", {"name": "new", "role": "viewer"}),
    ("delete", "/api/v1/tokens/viewer-token", "admin", None),
    ("get", "/api/v1/audit", "admin", None),
]
ORDER = ["viewer", "operator", "analyst", "admin"]


@pytest.mark.parametrize("method, path, needs, body", ROUTES)
def test_every_route_refuses_missing_wrong_revoked_and_weak_tokens(world, method, path, needs, body):
    c = world["client"]
    call = getattr(c, method)
    kwargs = {"json": body} if body is not None else {}
    for headers, status in (({}, 401), (auth("pies_not-a-real-token"), 401), (auth(world["revoked"]), 401),
                            ({"Authorization": "Basic dXNlcjpwYXNz"}, 401)):
        r = call(path, headers=headers, **kwargs)
        assert r.status_code == status, (path, headers, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == status and "token" in r.json()["detail"]
    for role in ORDER[:ORDER.index(needs)]:
        r = call(path, headers=auth(world["tokens"][role]), **kwargs)
        assert r.status_code == 403 and f"needs the {needs} role" in r.json()["detail"], (path, role)
    r = call(path, headers=auth(world["tokens"][needs]), **kwargs)
    assert r.status_code not in (401, 403), (path, r.text)
    for secret in world["tokens"].values():
        assert secret not in r.text


def test_health_needs_no_token(world):
    assert world["client"].get("/health").json() == {"status": "ok"}


def test_the_api_and_the_cli_give_the_same_answers(world):
    c, cli, h = world["client"], world["cli"], auth(world["tokens"]["viewer"])
    assert c.get("/api/v1/accounts?size=0", headers=h).json() == json.loads(cli("accounts", "--json").output)
    assert c.get("/api/v1/accounts/alice", headers=h).json() == json.loads(cli("account", "show", "alice",
                                                                               "--json").output)
    assert c.get("/api/v1/accounts/alice/history", headers=h).json() == json.loads(cli("history", "alice",
                                                                                       "--json").output)
    assert c.get("/api/v1/windows", headers=h).json() == json.loads(cli("windows", "--json").output)
    assert c.get("/api/v1/windows/1", headers=h).json() == json.loads(cli("window", "show", "1", "--json").output)


def test_lists_are_paged_and_searched_by_the_database(world):
    c, h = world["client"], auth(world["tokens"]["viewer"])
    page = c.get("/api/v1/accounts?size=1&page=2", headers=h).json()
    assert (page["total"], page["page"], [a["account"] for a in page["accounts"]]) == (2, 2, ["bob"])
    found = c.get("/api/v1/accounts?search=ali", headers=h).json()
    assert (found["total"], [a["account"] for a in found["accounts"]]) == (1, ["alice"])
    assert found["accounts"][0]["value"] == "1000.00" and found["accounts"][0]["cash"] == "0.00"


def test_accounts_page_on_by_cursor(world):
    c, h = world["client"], auth(world["tokens"]["viewer"])
    first = c.get("/api/v1/accounts?size=1", headers=h).json()
    assert ([a["account"] for a in first["accounts"]], first["next"], first["total"], first["total_exact"]) == \
        (["alice"], "alice", 2, True)
    second = c.get(f"/api/v1/accounts?size=1&after={first['next']}", headers=h).json()
    assert ([a["account"] for a in second["accounts"]], second["next"]) == (["bob"], None)
    assert c.get("/api/v1/accounts?size=1&after=" + "x" * 101, headers=h).status_code == 422


def test_events_honour_the_idempotency_key_and_are_audited(world):
    c, h = world["client"], auth(world["tokens"]["operator"])
    body = {"account": "alice", "kind": "deposit", "amount": "1,250.50"}
    first = c.post("/api/v1/events", json=body, headers={**h, "Idempotency-Key": "bank-77"})
    again = c.post("/api/v1/events", json=body, headers={**h, "Idempotency-Key": "bank-77"})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["event"] == again.json()["event"] and first.json()["amount"] == "1250.50"
    other = c.post("/api/v1/events", json={**body, "amount": "9"}, headers={**h, "Idempotency-Key": "bank-77"})
    assert other.status_code == 422 and "already used for a different request" in other.json()["detail"]
    cancel = c.post(f"/api/v1/events/{first.json()['event']}/cancel", headers=h)
    assert cancel.json() == {"event": first.json()["event"], "status": "canceled"}
    log = c.get("/api/v1/audit", headers=auth(world["tokens"]["admin"])).json()["audit"]
    assert [(x["token"], x["action"], x["outcome"][:7]) for x in log[:4]] == [
        ("operator-token", "cancel", "ok"), ("operator-token", "record deposit", "refused"),
        ("operator-token", "record deposit", "ok"), ("operator-token", "record deposit", "ok")]
    assert log[3]["arguments"]["idempotency_key"] == "bank-77"
    cli_audit = json.loads(world["cli"]("audit", "--json").output)["audit"]
    assert cli_audit == log


@pytest.mark.parametrize("body, field, says", [
    ({"account": "alice", "kind": "deposit", "amount": "10,50"}, "amount", "commas only separate thousands"),
    ({"account": "alice", "kind": "deposit"}, "amount", "a deposit needs an amount"),
    ({"account": "alice", "kind": "transfer", "amount": "5"}, "kind", "Input should be"),
    ({"kind": "deposit", "amount": "5"}, "account", "Field required"),
    ({"account": "nobody", "kind": "deposit", "amount": "5"}, None, "no account named 'nobody'"),
])
def test_mistakes_are_problem_details_naming_the_field(world, body, field, says):
    r = world["client"].post("/api/v1/events", json=body, headers=auth(world["tokens"]["operator"]))
    p = r.json()
    assert r.status_code in (404, 422) and r.headers["content-type"].startswith("application/problem+json")
    assert says in p["detail"] and p["instance"] == "/api/v1/events"
    if field:
        assert field in {e["field"] for e in p["errors"]}
    assert world["led"].events(status="pending") == []


def test_repeated_failed_logins_are_slowed_down(world):
    c = world["client"]
    for _ in range(MAX_FAILURES):
        assert c.get("/api/v1/accounts", headers=auth("pies_wrong")).status_code == 401
    r = c.get("/api/v1/accounts", headers=auth(world["tokens"]["viewer"]))   # even a good token waits
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_tokens_are_shown_once_stored_as_hashes_and_revocable(world):
    c, h = world["client"], auth(world["tokens"]["admin"])
    made = c.post("/api/v1/tokens", json={"name": "feed", "role": "operator"}, headers=h).json()
    assert made["token"].startswith("pies_")
    listed = c.get("/api/v1/tokens", headers=h).json()["tokens"]
    assert made["token"] not in json.dumps(listed) and any(t["name"] == "feed" for t in listed)
    with world["led"].tx() as s:
        from sqlalchemy import text
        assert all(made["token"] not in json.dumps(list(map(str, row)))
                   for row in s.execute(text("select * from api_tokens")))
    assert c.get("/api/v1/accounts", headers=auth(made["token"])).status_code == 200
    assert c.delete("/api/v1/tokens/feed", headers=h).status_code == 200
    assert c.get("/api/v1/accounts", headers=auth(made["token"])).status_code == 401


def test_policy_plan_then_apply_with_the_planned_hash(world, tmp_path):
    c, h = world["client"], auth(world["tokens"]["analyst"])
    (tmp_path / "core.pie").write_text('pie "Core" { VTI 100% }\n')
    plan = c.post("/api/v1/policies/plan", json={"file": "core.pie"}, headers=h).json()
    assert plan["trades"] and {x["symbol"] for a in plan["accounts"] for x in a["liquidations"]} == {"BND", "TIP"}
    stale = c.post("/api/v1/policies/apply", json={"file": "core.pie", "sha256": "0" * 64}, headers=h)
    assert stale.status_code == 409 and stale.json()["errors"][0]["field"] == "sha256"
    done = c.post("/api/v1/policies/apply", json={"file": "core.pie", "sha256": plan["sha256"]}, headers=h).json()
    assert any("liquidation alice" in q for q in done["queued"])
    other = c.post("/api/v1/policies/plan", json={"file": "/etc/passwd"}, headers=h)
    assert other.status_code == 422 and "not one of the policy files" in other.json()["detail"]


def test_metrics_speak_prometheus(world):
    text = world["client"].get("/metrics", headers=auth(world["tokens"]["viewer"])).text
    assert 'pies_window_orders{broker="main"} 3.0' in text
    assert 'pies_window_problems{broker="main"} 0.0' in text
    assert 'pies_window_step_seconds{broker="main",step="planned"}' in text
    assert "pies_last_successful_window_timestamp_seconds" in text and "pies_pending_events 0.0" in text


def test_a_window_run_through_the_api_is_the_clis_window(world, monkeypatch):
    monkeypatch.setenv("PIES_NOW", "2026-11-24T15:00:00+00:00")       # the day the fixture's window ran
    c, h = world["client"], auth(world["tokens"]["operator"])
    again = c.post("/api/v1/windows/run", headers=h).json()
    assert again["already_closed"] and again["id"] == 1
    assert again["report"] == json.loads(world["cli"]("window", "run", "--json").output)
    wrong = c.post("/api/v1/windows/run?name=typo", headers=h)
    assert wrong.status_code == 404 and "no window named 'typo'" in wrong.json()["detail"]


def test_a_window_report_is_read_page_by_page(world):
    c, h = world["client"], auth(world["tokens"]["viewer"])
    whole = c.get("/api/v1/windows/1", headers=h).json()["report"]
    first = c.get("/api/v1/windows/1?page=1&size=1", headers=h).json()["report"]
    assert (first["page"], first["size"], first["accounts"]) == (1, 1, whole["accounts"][:1])
    assert first["account_count"] == whole["account_count"] == len(whole["accounts"]) == 1
    assert c.get("/api/v1/windows/1?page=2&size=1", headers=h).json()["report"]["accounts"] == []
    assert c.get("/api/v1/windows/1?page=0", headers=h).status_code == 422
