"""What an attacker on the network cannot do: walk around the failed-login limit with
X-Forwarded-For, grow the limiter without bound, lock out other clients' valid tokens
behind a proxy, send a body of any size, or have it echoed back or stored whole. Names
no route can reach are refused at every door; unknown routes answer in problem details."""

from __future__ import annotations

import csv
import dataclasses
import json
import tracemalloc

import pytest
from fastapi.testclient import TestClient

from adapters.ledger.access import Access
from config.settings import load
from engine.shell.api import create_app
from engine.shell.guards import CAPACITY, MAX_FAILURES, WINDOW, Limiter

from api_helpers import PRICES, auth

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PROXY = ("10.0.0.7", 40000)


def app_with(world, **changes):
    settings = dataclasses.replace(load(env=world["env"]), **changes)
    return create_app(settings, ledger=world["led"], live_prices=lambda symbols: {s: PRICES[s] for s in symbols},
                      limiter=Limiter())


def test_x_forwarded_for_from_an_untrusted_peer_changes_nothing(world):
    c = world["client"]                           # no [api] trusted_proxies: the header is ignored
    for i in range(MAX_FAILURES):
        r = c.get("/api/v1/accounts", headers={**auth("pies_wrong"), "X-Forwarded-For": f"198.51.100.{i}"})
        assert r.status_code == 401
    for forwarded in ("203.0.113.50", "1.2.3.4, 5.6.7.8", ""):
        r = c.get("/api/v1/accounts", headers={**auth(world["tokens"]["viewer"]), "X-Forwarded-For": forwarded})
        assert r.status_code == 429, forwarded         # a new header value is no new client


def test_behind_a_trusted_proxy_one_clients_failures_lock_out_only_that_client(world):
    c = TestClient(app_with(world, api_trusted_proxies=("10.0.0.0/8",)), client=PROXY)
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    for _ in range(MAX_FAILURES):
        assert c.get("/api/v1/accounts", headers={**auth("pies_guess"), **attacker}).status_code == 401
    assert c.get("/api/v1/accounts", headers={**auth(world["tokens"]["viewer"]), **attacker}).status_code == 429
    # What the attacker writes left of its own address proves nothing: the proxy appends the peer.
    spoofed = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    assert c.get("/api/v1/accounts", headers={**auth(world["tokens"]["viewer"]), **spoofed}).status_code == 429
    # Another client behind the same proxy, with a valid token, gets in.
    operator = {"X-Forwarded-For": "198.51.100.7"}
    assert c.get("/api/v1/accounts", headers={**auth(world["tokens"]["viewer"]), **operator}).status_code == 200
    # A hop through a second trusted proxy is skipped to reach the client.
    chained = {"X-Forwarded-For": "198.51.100.8, 10.1.2.3"}
    assert c.get("/api/v1/accounts", headers={**auth(world["tokens"]["viewer"]), **chained}).status_code == 200
    # And the console's sign-in counts the same client.
    assert c.post("/console/login", data={"token": world["tokens"]["viewer"]}, headers=attacker).status_code == 429


def test_wrong_tokens_with_one_prefix_are_limited_across_addresses_but_valid_tokens_are_not(world):
    c = TestClient(app_with(world, api_trusted_proxies=("10.0.0.0/8",)), client=PROXY)
    valid = world["tokens"]["viewer"]
    near = valid[:9] + "x" * 20                   # guesses at one token, from many addresses
    for i in range(MAX_FAILURES):
        r = c.get("/api/v1/accounts", headers={**auth(near + str(i)), "X-Forwarded-For": f"203.0.113.{i}"})
        assert r.status_code == 401
    r = c.get("/api/v1/accounts", headers={**auth(near), "X-Forwarded-For": "203.0.113.200"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # The token itself is not locked out by guesses at it, from any client.
    r = c.get("/api/v1/accounts", headers={**auth(valid), "X-Forwarded-For": "198.51.100.1"})
    assert r.status_code == 200


def test_the_limiter_forgets_and_stays_bounded(db_url):         # db_url: the module's mark; no ledger here
    now = [0.0]
    limits = Limiter(lambda: now[0])
    tracemalloc.start()
    for i in range(40_000):                          # 40,000 addresses, each one wrong token
        limits.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"pies_{i:04x}guess")
        now[0] += 0.001
    size, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"limiter after 40,000 addresses: {len(limits)} keys, {size / 1e6:.1f} MB (peak {peak / 1e6:.1f} MB)")
    assert len(limits) <= CAPACITY and size < 8_000_000
    # A client locked out a moment ago stays locked out while others keep failing below the cap.
    for _ in range(MAX_FAILURES):
        limits.failed("192.0.2.1")
    for i in range(1000):
        limits.failed(f"192.0.3.{i % 250}")
    assert limits.wait("192.0.2.1") > 0
    # After the window every address is forgotten.
    now[0] += WINDOW + 1
    assert limits.wait("192.0.2.1") == 0
    limits.failed("192.0.2.2")
    assert len(limits) == 1


def test_a_body_past_the_limit_gets_413_before_it_is_read(world):
    c, h = world["client"], auth(world["tokens"]["operator"])
    huge = json.dumps({"account": "alice", "kind": "deposit", "amount": "5", "pad": "x" * 100_000})
    r = c.post("/api/v1/events", content=huge, headers={**h, "content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["title"] == "request body too large" and len(r.text) < 500

    def chunks():                                    # no Content-Length: counted as it streams
        for _ in range(100):
            yield b"x" * 1024
    r = c.post("/api/v1/events", content=chunks(), headers={**h, "content-type": "application/json"})
    assert r.status_code == 413
    assert c.post("/console/login", data={"token": "x" * 70_000}).status_code == 413
    assert world["led"].events(status="pending") == []


def test_the_body_limit_is_a_setting(world, tmp_path):
    c = TestClient(app_with(world, api_max_body_bytes=1024))
    h = auth(world["tokens"]["operator"])
    small = {"account": "alice", "kind": "deposit", "amount": "5", "note": "x" * 800}
    assert c.post("/api/v1/events", json=small, headers=h).status_code == 201       # 0.9 KiB: read
    r = c.post("/api/v1/events", json={**small, "note": "x" * 1100}, headers=h)
    assert r.status_code == 413 and "max_body_kib" in r.json()["detail"]
    assert load(env=world["env"]).api_max_body_bytes == 64 * 1024                   # the default
    (tmp_path / "s.toml").write_text("[api]\nmax_body_kib = 1\n")
    assert load(tmp_path / "s.toml", env={}).api_max_body_bytes == 1024


def test_nothing_a_caller_sends_comes_back_or_is_stored_long(world):
    c, h = world["client"], auth(world["tokens"]["operator"])
    r = c.post("/api/v1/events", json={"account": "alice", "kind": "deposit", "amount": "9" * 50_000}, headers=h)
    assert r.status_code == 422 and "9" * 100 not in r.text and len(r.text) < 1000
    r = c.post("/api/v1/events", json=[{"x": "y" * 1000}] * 60, headers=h)
    assert r.status_code == 422 and len(r.text) < 10_000 and "y" * 100 not in r.text
    r = c.post("/api/v1/events", content=b"{" + b'"a":' * 10_000, headers={**h, "content-type": "application/json"})
    assert r.status_code == 422
    r = c.post("/api/v1/events", json={"account": "alice", "kind": "rebalance", "path": "Bonds/" + "z" * 990},
               headers=h)
    assert r.status_code in (404, 422) and len(r.text) < 3000
    (row,) = Access(world["led"]).audit_log(1)
    assert row["action"] == "record rebalance" and row["outcome"].startswith("refused")
    assert len(json.dumps(row["arguments"])) < 600 and "(996 characters)" in row["arguments"]["path"]


@pytest.mark.parametrize("name", ["a/b", "tab\there", "line\nbreak", "nul\x00", "rtl\u202eoverride", "no\u00a0break",
                                  "x" * 101])
def test_a_name_no_route_can_reach_is_refused_at_every_door(world, tmp_path, name):
    r = world["cli"]("account", "add", name, "--pie", "Core", code=2)
    assert "account name" in r.output and "Traceback" not in r.output
    h = auth(world["tokens"]["operator"])
    r = world["client"].post("/api/v1/accounts", json={"accounts": [{"name": "ok-one", "pie": "Core"},
                                                                     {"name": name, "pie": "Core"}]}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    with open(tmp_path / "accts.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("name", "pie"), ("ok-one", "Core"), (name, "Core")])
    r = world["cli"]("import", "accounts", str(tmp_path / "accts.csv"), code=2)
    assert "accts.csv:3:" in r.output
    names = {a.name for a in world["led"].accounts()}
    assert name not in names and "ok-one" not in names          # all or none


def test_keys_and_pie_names_follow_the_same_rule(world, tmp_path):
    h = auth(world["tokens"]["operator"])
    r = world["client"].post("/api/v1/events", json={"account": "alice", "kind": "deposit", "amount": "5"},
                             headers={**h, "Idempotency-Key": "bank\x07ref"})
    assert r.status_code == 422 and "control or invisible character" in r.json()["detail"]
    (tmp_path / "events.csv").write_text('account,kind,amount,key\nalice,deposit,5,"a\nb"\n')
    r = world["cli"]("import", "events", str(tmp_path / "events.csv"), code=2)
    assert "control or invisible character" in r.output
    (tmp_path / "bad.pie").write_text('pie "Core\u202e" { VTI 100% }\n')
    r = world["cli"]("check", str(tmp_path / "bad.pie"), code=1)
    assert "control or invisible character" in r.output + (r.stderr if hasattr(r, "stderr") else "")
    assert world["led"].events(status="pending") == []


def test_unknown_routes_answer_in_problem_details(world):
    c, h = world["client"], auth(world["tokens"]["viewer"])
    for path in ("/api/v1/accounts/a/b", "/api/v1/accounts/a/b/history", "/api/v1/nothing"):
        r = c.get(path, headers=h)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), path
        assert r.json()["status"] == 404
    r = c.put("/api/v1/accounts", headers=h)
    assert r.status_code == 405 and r.headers["content-type"].startswith("application/problem+json")
    r = c.get("/console/accounts/a/b", follow_redirects=False)
    assert r.status_code == 404 and "Not found" in r.text


def test_the_session_cookie_is_secure_behind_a_trusted_tls_proxy_only(world):
    token = world["tokens"]["viewer"]
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    behind = TestClient(app_with(world, api_trusted_proxies=("10.0.0.0/8",)), client=PROXY)
    r = behind.post("/console/login", data={"token": token}, headers=https, follow_redirects=False)
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
    r = world["client"].post("/console/login", data={"token": token}, headers=https, follow_redirects=False)
    assert r.status_code == 303 and "Secure" not in r.headers["set-cookie"]      # anyone can write the header


def test_backtest_uploads_have_their_own_larger_limit(world):
    from engine.shell.backtest.api import API_MAX_TEXT
    c, h = world["client"], auth(world["tokens"]["analyst"])
    body = {"policy": 'pie "P" { VTI 100% }', "pies": ["P"], "prices": "date,VTI\n" + "2020-01-0x,1\n" * 20_000,
            "from": "2020-01-02", "to": "2020-01-03"}
    r = c.post("/api/v1/backtests", json=body, headers=h)
    assert r.status_code == 422 and "larger" not in r.text   # read (240 KB); refused for what it says, not its size
    r = c.post("/api/v1/backtests", content=b"x" * (2 * API_MAX_TEXT + 1024 * 1024 + 1),
               headers={**h, "content-type": "application/json"})
    assert r.status_code == 413
    assert c.post("/api/v1/events", json={**body, "account": "alice"}, headers=h).status_code == 413
