"""A window killed (SIGKILL) at any point around its corporate actions ends the same as an
uninterrupted one: each action applied once, the same ledger, the same broker."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from adapters.broker.simulated import SimulatedBroker, SimulatedConfig
from adapters.ledger.schema import Account, CorporateActionRow, Event, Holding, Order
from adapters.ledger.store import Ledger
from engine.shell import policies
from engine.shell.window import WindowOptions, WindowRunner

from day_one import kill_then_resume, run_window

NY = ZoneInfo("America/New_York")
POLICY = 'pie "Growth" { VTI 40% VXUS 20% pie "Bonds" 40% { BND 70% TIP 30% } }\n'
PRICES = "VTI,250.00\nVXUS,60.25\nBND,72.50\nTIP,110.10\nKD,20.00\nTIPX,110.10\n"
DAY1, DAY2 = date(2026, 11, 23), date(2026, 11, 24)
ACTIONS = {"corporate_actions": {
    "forward_splits": [{"id": "fs-vti", "symbol": "VTI", "cusip": "1", "new_rate": 2, "old_rate": 1,
                        "process_date": "2026-11-24", "ex_date": "2026-11-24"}],
    "cash_mergers": [{"id": "cm-vxus", "acquiree_symbol": "VXUS", "acquiree_cusip": "c", "rate": "61.03",
                      "process_date": "2026-11-24", "effective_date": "2026-11-24"}],
    "name_changes": [{"id": "nc-tip", "old_symbol": "TIP", "old_cusip": "a", "new_symbol": "TIPX",
                      "new_cusip": "b", "process_date": "2026-11-24"}],
    "spin_offs": [{"id": "so-bnd", "source_symbol": "BND", "source_cusip": "a", "source_rate": 3,
                   "new_symbol": "KD", "new_cusip": "b", "new_rate": 1, "process_date": "2026-11-24",
                   "ex_date": "2026-11-24"}]}, "next_page_token": None}
POINTS = ["actions:read", "actions:applying", "actions:applied", "collected", "planned", "sells_submitted",
          "buys_submitted", "closed"]


def scenario(root: Path, db_url: str) -> dict[str, str]:
    root.mkdir()
    (root / "policy.pie").write_text(POLICY)
    (root / "prices.csv").write_text(PRICES)
    (root / "actions.json").write_text(json.dumps(ACTIONS))
    (root / "settings.toml").write_text(
        f'[broker.simulated]\nprices_file = "{root / "prices.csv"}"\nstarting_cash = "500000.00"\n'
        f'corporate_actions_file = "{root / "actions.json"}"\n[policies]\nfiles = ["{root / "policy.pie"}"]\n')
    env = {"PIES_CONFIG": str(root / "settings.toml"), "PIES_DATABASE_URL": db_url, "PIES_DATA_DIR": str(root / "data"),
           "PIES_NOW": "2026-11-24T15:00:00+00:00"}
    led = Ledger(db_url)
    broker = SimulatedBroker(SimulatedConfig(state_file=root / "data" / "simulated-broker.json",
                                             prices_file=root / "prices.csv", starting_cash=Decimal("500000.00"),
                                             corporate_actions_file=root / "actions.json"),
                             now=lambda: datetime.combine(DAY1, time(10, 0), NY), sleep=lambda s: None)
    led.ensure_house("main", broker.balance().cash, {})
    for i in range(6):
        policies.add_account(led, f"a{i}", "Growth", root / "policy.pie")
        led.deposit(f"a{i}", f"{1000 + 137 * i}.{i:02d}", key=f"k1-{i}")
    WindowRunner(led, broker, "main", WindowOptions(settle_timeout=1)).run(DAY1)
    led.deposit("a0", "500", key="k2-0")
    led.dispose()
    return env


def snapshot(env: dict[str, str]) -> dict:
    led = Ledger(env["PIES_DATABASE_URL"], upgrade=False)
    try:
        with led.tx() as s:
            names = {a.id: a.name for a in s.scalars(select(Account))}
            out = {
                "cash": {a.name: str(a.cash) for a in s.scalars(select(Account))},
                "holdings": sorted((names[h.account_id], h.path, h.symbol, str(h.shares))
                                   for h in s.scalars(select(Holding))),
                "events": sorted((names[e.account_id], e.key, e.kind, str(e.amount), e.status, e.reason or "")
                                 for e in s.scalars(select(Event))),
                "orders": sorted((o.symbol, o.side, str(o.notional), str(o.qty), o.status)
                                 for o in s.scalars(select(Order))),
                "actions": sorted((r.action_id, json.dumps(r.summary, sort_keys=True))
                                  for r in s.scalars(select(CorporateActionRow))),
            }
    finally:
        led.dispose()
    state = json.loads((Path(env["PIES_DATA_DIR"]) / "simulated-broker.json").read_text())
    out["broker"] = {"cash": state["cash"], "positions": state["positions"], "applied": state["actions_applied"],
                     "orders": sorted((o["symbol"], o["side"], o["notional"], o["qty"]) for o in state["orders"].values())}
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    env = scenario(root / "s", f"sqlite:///{root / 'ref.db'}")
    r = run_window(env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ledger agrees with the broker" in r.stdout
    snap = snapshot(env)
    assert [a for a, _ in snap["actions"]] == ["cm-vxus", "fs-vti", "nc-tip", "so-bnd"]
    held = [(name, sym) for name, _, sym, _ in snap["holdings"] if sym in ("VXUS", "KD")]
    assert all(not name.startswith("a") for name, _ in held), held     # only the house's residue KD
    return snap


@pytest.mark.parametrize("point", POINTS)
def test_a_window_killed_around_its_corporate_actions_ends_the_same(point, reference, tmp_path):
    env = scenario(tmp_path / "s", f"sqlite:///{tmp_path / 'crash.db'}")
    kill_then_resume(env, point)
    assert snapshot(env) == reference
