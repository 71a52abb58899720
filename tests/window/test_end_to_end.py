"""Several trading days on the simulated broker, many accounts, every event kind; after
every window the ledger must agree with the broker and with the engine's own plans."""

from __future__ import annotations

import random
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from sqlalchemy import select

from adapters.broker.simulated import SimulatedBroker, SimulatedConfig
from adapters.ledger.schema import Account, Event
from adapters.ledger.store import Ledger
from adapters.ledger.window_repo import check_invariants
from engine.core import events as ev
from engine.core.planner import plan
from engine.shell.window import WindowOptions, WindowRunner
from rules.library import find_rules
from engine.shell import policies

NY = __import__("zoneinfo").ZoneInfo("America/New_York")
PRICES = {"VTI": "250.00", "VXUS": "60.25", "BND": "72.50", "TIP": "110.10", "AAPL": "172.78", "MSFT": "415.00",
          "NVDA": "131.31"}
POLICY_1 = '''
pie "Growth" { VTI 40% VXUS 20% pie "Bonds" 40% { BND 70% TIP 30% } }
pie "Tech" equal { AAPL MSFT NVDA }
rules "drifty" extends "m1" { when drift > 5% rebalance }
'''
# Day 3: TIP to 0% (a held slice liquidated into Bonds), VXUS removed (into Growth).
POLICY_2 = '''
pie "Growth" { VTI 60% pie "Bonds" 40% { BND 100% TIP 0% } }
pie "Tech" equal { AAPL MSFT NVDA }
rules "drifty" extends "m1" { when drift > 5% rebalance }
'''
# Day 4: the held nested pie "Bonds" removed entirely.
POLICY_3 = '''
pie "Growth" { VTI 70% VXUS 30% }
pie "Tech" equal { AAPL MSFT NVDA }
rules "drifty" extends "m1" { when drift > 5% rebalance }
'''


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 23, 9, 35, tzinfo=NY)

    def __call__(self):
        return self.now


@pytest.fixture
def world(db_url, tmp_path):
    clock = Clock()
    (tmp_path / "prices.csv").write_text("".join(f"{s},{p}\n" for s, p in PRICES.items()))
    broker = SimulatedBroker(SimulatedConfig(state_file=tmp_path / "broker.json", prices_file=tmp_path / "prices.csv",
                                             starting_cash=Decimal("1000000.00"),
                                             dividends={"VTI": Decimal("0.91"), "AAPL": Decimal("0.25")},
                                             dividend_day=24), now=clock, sleep=lambda s: None)
    led = Ledger(db_url)
    led.ensure_house("main", broker.balance().cash, {})
    policy = tmp_path / "policy.pie"
    policy.write_text(POLICY_1)
    yield led, broker, clock, policy
    led.dispose()


def expected_plans(led: Ledger, wid_events: dict, prices: dict, day: date) -> dict:
    """What the engine says each account with events should end with (cents per path, cash)."""
    out = {}
    for name, evs in wid_events.items():
        acct, pie, policy = policies.policy_of(led, name)
        values = led.values(name, prices)
        p = plan(pie, values, evs, find_rules(acct.rules, policy), cash=int(acct.cash * 100), min_order=0,
                 as_of=day, last_rebalanced=acct.last_rebalanced)
        out[name] = (dict(p.holdings_after), p.cash_after)
    return out


def pending_as_engine_events(led: Ledger) -> dict[str, list]:
    out: dict[str, list] = {}
    for e, name in led.events(status="pending"):
        conv = {"deposit": lambda: ev.Deposit(int(e.amount * 100)), "withdrawal": lambda: ev.Withdrawal(int(e.amount * 100)),
                "dividend": lambda: ev.Dividend(int(e.amount * 100)), "rebalance": lambda: ev.Rebalance(e.path or ""),
                "target_change": lambda: ev.TargetChange(), "liquidation": lambda: None}[e.kind]()
        out.setdefault(name, [])
        if conv is not None:
            out[name].append(conv)
    return out


def run_day(led, broker, clock, day: date, *, check_plans: bool = True) -> dict:
    clock.now = datetime.combine(day, time(9, 35), NY)
    prices = {s: Decimal(p) for s, p in PRICES.items()}
    expected = expected_plans(led, pending_as_engine_events(led), prices, day) if check_plans else {}
    report = WindowRunner(led, broker, "main", WindowOptions(min_order_cents=100, settle_timeout=1)).run(day)
    assert report["problems"] == []
    bal = broker.balance()
    assert check_invariants(led, "main", {s: p.qty for s, p in broker.positions().items()}, bal.cash) == []
    for name, (after, cash_after) in expected.items():
        values = led.values(name, prices)
        acct = next(a for a in led.accounts() if a.name == name)
        deferred = {d["slice"] for a in report["accounts"] if a["account"] == name
                    for d in a.get("deferred_or_scaled", [])}
        for path, cents in after.items():
            if path in deferred:
                continue
            # Shares are rounded down to 9 decimals: at most a cent off at these prices.
            assert abs(values.get(path, 0) - cents) <= 1, (name, path, values.get(path), cents)
        if not deferred:
            assert abs(int(acct.cash * 100) - cash_after) <= len(after), (name, acct.cash, cash_after)
    return report


def test_several_days_every_event_kind(world):
    led, broker, clock, policy = world
    rng = random.Random(5)
    names = [f"acct{i:02d}" for i in range(24)]
    for i, n in enumerate(names):
        policies.add_account(led, n, "Growth" if i % 3 else "Tech", policy, rules="drifty" if i % 7 == 0 else "m1")
    # Day 1 (Monday): first deposits.
    for n in names:
        led.deposit(n, f"{rng.randint(100, 5000)}.{rng.randint(0, 99):02d}", key=f"first-{n}")
    r1 = run_day(led, broker, clock, date(2026, 11, 23))
    assert sum(len(a["trades"]) for a in r1["accounts"]) > 0
    # Day 2 (Tuesday, dividend day): deposits, withdrawals, whole and nested rebalances.
    for n in names[:8]:
        led.deposit(n, "250.00", key=f"d2-{n}")
    prices = {s: Decimal(p) for s, p in PRICES.items()}
    for n in names[8:14]:
        led.withdraw(n, "75.50", prices, key=f"w2-{n}")
    led.rebalance(names[1], "", key="r-whole")
    led.rebalance(names[2], "Bonds", key="r-nested")
    r2 = run_day(led, broker, clock, date(2026, 11, 24), check_plans=False)   # dividends arrive at collect
    kinds = {(e.kind, e.status) for e, _ in led.events()}
    assert ("dividend", "done") in kinds and ("withdrawal", "done") in kinds
    assert all(a["status"] == "done" for a in r2["accounts"])
    # Day 3: a target change: TIP to 0% and VXUS removed; both liquidated, nothing else trades.
    policy.write_text(POLICY_2)
    _, queued = policies.apply_file(led, policy)
    assert any("liquidation" in q and "Bonds/TIP" in q for q in queued)
    assert any("liquidation" in q and "VXUS" in q for q in queued)
    run_day(led, broker, clock, date(2026, 11, 25))
    for n in names:
        held = led.holdings(n)
        assert not held.get("Bonds/TIP", ("", 0))[1] and not held.get("VXUS", ("", 0))[1]
    # Day 4 is Thanksgiving in real life; the simulated calendar has no holidays here.
    # Day 4: the held nested pie "Bonds" goes; its value flows into Growth.
    growth = names[1]                      # a Growth account: asks to rebalance "Bonds" ...
    led.rebalance(growth, "Bonds", key="r-gone")
    led.deposit(growth, "10.00", key="d-with-gone")
    policy.write_text(POLICY_3)            # ... which the new version removes
    policies.apply_file(led, policy)
    r4 = run_day(led, broker, clock, date(2026, 11, 26), check_plans=False)
    for n in names:
        assert not any(path.startswith("Bonds/") and q for path, (_, q) in led.holdings(n).items())
    mine = {e.key: (e.status, e.reason or "") for e, _ in led.events(growth)}
    assert mine["r-gone"][0] == "rejected" and "cannot rebalance 'Bonds'" in mine["r-gone"][1]
    assert mine["d-with-gone"] == ("done", "")          # the rest of the account's events went ahead
    assert next(a for a in r4["accounts"] if a["account"] == growth)["status"] == "done"
    # Day 5: more deposits into the new shape.
    for n in names[::2]:
        led.deposit(n, "99.99", key=f"d5-{n}")
    run_day(led, broker, clock, date(2026, 11, 27))
    with led.tx() as s:
        assert not s.scalars(select(Event).where(Event.status.in_(("pending", "planned")))).all()
        house = s.scalars(select(Account).where(Account.is_house.is_(True))).one()
        assert house.cash >= 0
