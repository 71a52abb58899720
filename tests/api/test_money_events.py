"""Money events cannot merge silently: without an Idempotency-Key every deposit,
withdrawal and dividend is a new event; a key is one request (the same body again is that
event, another body is refused); a dividend above the sanity bound is refused in one line
and writes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from config.settings import load
from engine.shell.api import Limiter, create_app

from api_helpers import auth

PRICES = {"VTI": Decimal("250"), "BND": Decimal("72.5"), "TIP": Decimal("110")}


def pending(world, name: str = "alice") -> list[dict]:
    return world["client"].get(f"/api/v1/accounts/{name}", headers=auth(world["tokens"]["viewer"])).json()["pending"]


@pytest.mark.parametrize("kind, amount", [("dividend", "12.34"), ("deposit", "10"), ("withdrawal", "5")])
def test_without_a_key_the_same_amount_twice_is_two_events(world, kind, amount):
    c, h = world["client"], auth(world["tokens"]["operator"])
    body = {"account": "alice", "kind": kind, "amount": amount}
    first, second = c.post("/api/v1/events", json=body, headers=h), c.post("/api/v1/events", json=body, headers=h)
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json()["created"] and second.json()["created"]
    assert first.json()["event"] != second.json()["event"]
    mine = [e for e in pending(world) if e["kind"] == kind]
    assert len(mine) == 2 and {e["amount"] for e in mine} == {str(Decimal(amount).quantize(Decimal("0.01")))}


def test_a_key_is_one_request_another_body_under_it_is_refused(world):
    c, h = world["client"], auth(world["tokens"]["operator"])
    body = {"account": "alice", "kind": "dividend", "amount": "12.34"}
    first = c.post("/api/v1/events", json=body, headers={**h, "Idempotency-Key": "div-ref-1"})
    again = c.post("/api/v1/events", json=body, headers={**h, "Idempotency-Key": "div-ref-1"})
    assert (first.status_code, again.status_code) == (201, 200) and again.json()["event"] == first.json()["event"]
    for other in ({**body, "amount": "12.35"}, {**body, "account": "bob"}, {**body, "kind": "deposit"}):
        r = c.post("/api/v1/events", json=other, headers={**h, "Idempotency-Key": "div-ref-1"})
        assert r.status_code == 422 and "already used for a different request" in r.json()["detail"], r.text
    assert len([e for e in pending(world) if e["kind"] == "dividend"]) == 1
    assert pending(world, "bob") == []


def test_a_dividend_above_the_bound_is_refused_in_one_line_and_writes_nothing(world):
    c, h = world["client"], auth(world["tokens"]["operator"])
    r = c.post("/api/v1/events", json={"account": "alice", "kind": "dividend", "amount": "1,000,000,000"}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    detail = r.json()["detail"]
    assert "\n" not in detail and "dividend of $1000000000.00 for 'alice' is more than $100000.00" in detail
    assert "max_dividend" in detail
    assert pending(world) == []
    ok = c.post("/api/v1/events", json={"account": "alice", "kind": "dividend", "amount": "100,000"}, headers=h)
    assert ok.status_code == 201                         # the bound itself is allowed


def test_the_bound_is_a_setting(world, tmp_path):
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(settings_file.read_text() + '[events]\nmax_dividend = "50"\n')
    app = create_app(load(env=world["env"]), ledger=world["led"],
                     live_prices=lambda symbols: {s: PRICES[s] for s in symbols}, limiter=Limiter())
    c, h = TestClient(app), auth(world["tokens"]["operator"])
    r = c.post("/api/v1/events", json={"account": "alice", "kind": "dividend", "amount": "50.01"}, headers=h)
    assert r.status_code == 422 and "more than $50.00" in r.json()["detail"]
    assert c.post("/api/v1/events", json={"account": "alice", "kind": "dividend", "amount": "50"},
                  headers=h).status_code == 201
