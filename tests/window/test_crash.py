"""Kill the window (SIGKILL) at every step, start it again: it must end with exactly the
ledger and broker an uninterrupted run gives, and no order placed twice."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.ledger.schema import Account, Event, Holding, LotRow, Order, RealizedRow
from adapters.ledger.store import Ledger
from config.settings import load
from engine.shell.window import STEPS
from engine.shell.wiring import open_broker

from day_one import POLICY, PRICES, day_one, kill_then_resume, run_window

POINTS = [s for s in STEPS if s != "opened"] + ["submit:before-call", "submit:after-call", "shard:booked:0", "booked"]


def scenario(root: Path, db_url: str) -> dict[str, str]:
    """Accounts funded on day 1, then day 2's events recorded (not yet traded)."""
    root.mkdir()
    (root / "policy.pie").write_text(POLICY)
    (root / "prices.csv").write_text(PRICES)
    (root / "settings.toml").write_text(
        f'[broker.simulated]\nprices_file = "{root / "prices.csv"}"\nstarting_cash = "500000.00"\n'
        f'[policies]\nfiles = ["{root / "policy.pie"}"]\n')
    env = {"PIES_CONFIG": str(root / "settings.toml"), "PIES_DATABASE_URL": db_url, "PIES_DATA_DIR": str(root / "data"),
           "PIES_NOW": "2026-11-24T15:00:00+00:00"}      # day 2 is today for `window run`
    settings = load(env=env)
    led = Ledger(db_url)
    prices = day_one(led, open_broker(settings), root / "policy.pie")
    led.deposit("a0", "500", key="k2-0")
    led.withdraw("a1", "300", prices, key="k2-1")
    led.withdraw("a3", "1000", prices, key="k2-3")
    led.rebalance("a5", "Bonds", key="k2-5")
    led.deposit("a6", "0.50", key="k2-6")            # too small alone: deferred or crossed
    led.dispose()
    return env


def snapshot(env: dict[str, str]) -> dict:
    led = Ledger(env["PIES_DATABASE_URL"], upgrade=False)
    try:
        with led.tx() as s:
            names = {a.id: a.name for a in s.scalars(select(Account))}
            out = {
                "cash": {a.name: str(a.cash) for a in s.scalars(select(Account))},
                "holdings": sorted((names[h.account_id], h.path, str(h.shares)) for h in s.scalars(select(Holding))),
                "events": sorted((names[e.account_id], e.key, e.status, e.reason or "") for e in s.scalars(select(Event))),
                "orders": sorted((o.symbol, o.side, str(o.notional), str(o.qty), o.status, str(o.filled_qty))
                                 for o in s.scalars(select(Order))),
                "lots": books_snapshot(s, names)[0],
                "realized": books_snapshot(s, names)[1],
            }
    finally:
        led.dispose()
    state = json.loads((Path(env["PIES_DATA_DIR"]) / "simulated-broker.json").read_text())
    out["broker"] = {"cash": state["cash"], "positions": state["positions"],
                     "orders": sorted((o["symbol"], o["side"], o["notional"], o["qty"]) for o in state["orders"].values())}
    return out


def books_snapshot(s, names: dict[int, str]) -> tuple[list, list]:
    """Lots and realized rows as comparable values (ids aside: shards may commit in any
    order, and a lot is named by what it is)."""
    lots = {x.id: x for x in s.scalars(select(LotRow))}
    return (sorted((names[x.account_id], x.symbol, str(x.bought), str(x.acquired), str(x.shares), str(x.basis),
                    str(x.wash_adjustment), str(x.replaced), x.closed) for x in lots.values()),
            sorted((names[r.account_id], r.symbol, str(lots[r.lot_id].bought), str(r.acquired), str(r.sold),
                    str(r.shares), str(r.proceeds), str(r.basis), str(r.wash_sale_disallowed), str(r.washed))
                   for r in s.scalars(select(RealizedRow))))


def lots_match_holdings(s) -> list[str]:
    """Per account and symbol, the open lots' shares against the holdings' (house aside)."""
    held: dict = {}
    for h in s.scalars(select(Holding).join(Account, Holding.account_id == Account.id).where(Account.is_house.is_(False))):
        held[(h.account_id, h.symbol)] = held.get((h.account_id, h.symbol), 0) + h.shares
    lots: dict = {}
    for x in s.scalars(select(LotRow).where(LotRow.closed.is_(False))):
        lots[(x.account_id, x.symbol)] = lots.get((x.account_id, x.symbol), 0) + x.shares
    return [f"{k}: lots {lots.get(k, 0)} holdings {held.get(k, 0)}" for k in sorted(set(held) | set(lots))
            if lots.get(k, 0) != held.get(k, 0)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    env = scenario(root / "s", f"sqlite:///{root / 'ref.db'}")
    r = run_window(env)
    assert r.returncode == 0, r.stderr[-3000:]
    snap = snapshot(env)
    assert snap["lots"] and snap["realized"], "the scenario buys and sells: it has lots and realized rows"
    led = Ledger(env["PIES_DATABASE_URL"], upgrade=False)
    with led.tx() as s:
        assert lots_match_holdings(s) == []
    led.dispose()
    return snap


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_any_step_resumes_to_the_same_end(point, reference, tmp_path):
    env = scenario(tmp_path / "s", f"sqlite:///{tmp_path / 'crash.db'}")
    kill_then_resume(env, point)
    assert snapshot(env) == reference


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("point", ["planned", "submit:after-call", "sells_allocated"])
def test_a_crash_resumes_on_postgresql_too(point, reference, db_url, tmp_path):
    env = scenario(tmp_path / "s", db_url)
    assert run_window(env, crash_at=point).returncode == -signal.SIGKILL
    assert run_window(env).returncode == 0
    assert snapshot(env) == reference


@pytest.mark.parametrize("seed", ["1", "4242"])
def test_the_same_window_under_another_hash_seed_ends_the_same(seed, reference, tmp_path):
    """No set or dict order decides who gets a cent: another PYTHONHASHSEED, the same ledger."""
    env = scenario(tmp_path / "s", f"sqlite:///{tmp_path / 'seed.db'}")
    r = run_window({**env, "PYTHONHASHSEED": seed})
    assert r.returncode == 0, r.stderr[-3000:]
    assert snapshot(env) == reference
