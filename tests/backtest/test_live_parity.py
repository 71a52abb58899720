"""The backtest trades as live windows do: the same account, prices, deposits and dividends
run day by day through WindowRunner on the simulated broker and a ledger end every day with
the same holdings (to the 9-decimal share) and the same cash (to the cent)."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import rules
from adapters.broker.simulated import SimulatedBroker, SimulatedConfig
from adapters.ledger.store import Ledger
from engine.core.backtest import CorporateAction, PriceDay, Recurring, Spec, simulate
from engine.shell.window import WindowOptions, WindowRunner

NY = ZoneInfo("America/New_York")
POLICY = '''pie "Sixty" { AAA 60% pie "Bonds" 40% { BBB 70% CCC 30% } }
rules "drifty" extends "m1" { when drift > 2% rebalance }
'''
DIVIDEND = {"AAA": Decimal("0.37")}


def history() -> list[PriceDay]:
    """Weekdays from 2026-01-26 to 2026-03-06, seeded random walks (2-decimal closes)."""
    rng = random.Random(22)
    price = {"AAA": Decimal("187.31"), "BBB": Decimal("72.45"), "CCC": Decimal("109.99")}
    out, d = [], date(2026, 1, 26)
    while d <= date(2026, 3, 6):
        if d.weekday() < 5:
            out.append(PriceDay(d, dict(price)))
            price = {s: max(Decimal("1.00"), (p * (1 + Decimal(rng.randint(-400, 400)) / 10_000)).quantize(Decimal("0.01")))
                     for s, p in price.items()}
        d += timedelta(days=1)
    return out


def test_monthly_deposits_trade_exactly_as_live_windows_do(db_url, tmp_path):
    same_as_live(db_url, tmp_path, "m1")


def test_drift_rebalances_and_withdrawals_trade_exactly_as_live_windows_do(tmp_path):
    """Sells by quantity, crosses, buys scaled to what the sells brought, skipped orders,
    weekly withdrawals (on the deposits' days too: both planned together) (SQLite only: the
    m1 case runs on both databases)."""
    same_as_live(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, "drifty", withdraw=40_000)


def same_as_live(db_url, tmp_path, rule_set, withdraw=None):
    (tmp_path / "policy.pie").write_text(POLICY)
    days = history()
    led = Ledger(db_url)
    cfg = dict(state_file=tmp_path / "broker.json", prices_file=tmp_path / "prices.csv",
               starting_cash=Decimal("1000000.00"), dividends=DIVIDEND, dividend_day=15)
    (tmp_path / "prices.csv").write_text("".join(f"{s},{p}\n" for s, p in days[0].closes.items()))
    first = datetime.combine(days[0].day, time(9, 0), NY)
    led.ensure_house("main", SimulatedBroker(SimulatedConfig(**cfg), now=lambda: first).balance().cash, {})
    led.add_account("ann", "Sixty", tmp_path / "policy.pie", rules=rule_set)
    # The sim pays its dividend on the first weekday on or after the 15th: the backtest's actions.
    paid = sorted({min(d.day for d in days if d.day.month == m and d.day.day >= 15) for m in (1, 2, 3)
                   if any(d.day.month == m and d.day.day >= 15 for d in days)})
    actions = [CorporateAction(day, s, "dividend", v) for day in paid for s, v in DIVIDEND.items()]
    policy = rules.compile_file(tmp_path / "policy.pie")
    spec = Spec(policy.pies["Sixty"], rules.find_rules(rule_set, policy), days[0].day, days[-1].day,
                start_cents=500_000, deposit=Recurring("monthly", 25_000),
                withdraw=Recurring("weekly", withdraw) if withdraw else None, min_order=100)
    simulated = list(simulate(spec, days, actions))
    assert len(simulated) == len(days) == 30
    prev = None
    traded_days = 0
    for pd, bt in zip(days, simulated):
        (tmp_path / "prices.csv").write_text("".join(f"{s},{p}\n" for s, p in pd.closes.items()))
        now = datetime.combine(pd.day, time(10, 0), NY)
        broker = SimulatedBroker(SimulatedConfig(**cfg), now=lambda: now, sleep=lambda s: None)
        if prev is None:
            led.deposit("ann", "5000.00", key="start")
        else:
            if pd.day.month != prev.month:
                led.deposit("ann", "250.00", key=f"dep-{pd.day}")
            if withdraw and pd.day.isocalendar()[:2] != prev.isocalendar()[:2]:
                led.withdraw("ann", f"{withdraw / 100:.2f}", pd.closes, key=f"wd-{pd.day}")
        report = WindowRunner(led, broker, "main", WindowOptions(min_order_cents=100, settle_timeout=1)).run(pd.day)
        assert report["problems"] == []
        live = {path: shares for path, (_, shares) in led.holdings("ann").items() if shares}
        cash = next(a.cash for a in led.accounts() if a.name == "ann")
        assert {p: q for p, _, q in bt.holdings} == live, pd.day
        assert bt.cash == int(cash * 100), pd.day
        traded_days += bool(bt.fills)
        prev = pd.day
    assert sum(d.dividends for d in simulated) > 0          # a dividend arrived and was planned
    if withdraw:
        assert sum(d.withdrawn for d in simulated) == 5 * withdraw      # five Mondays after the first day
        assert any(d.deposited and d.withdrawn for d in simulated)       # both on one day
    assert traded_days >= 3
    led.dispose()
