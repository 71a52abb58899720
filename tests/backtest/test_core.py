"""The backtest's semantics on small histories whose every figure is computed by hand."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal as D

import pytest

import rules
from engine.core.backtest import BacktestError, CorporateAction, PriceDay, Recurring, Spec, run, simulate
from engine.core.money import market_cents
from rules.library import find_rules

POLICY = rules.compile_text('''
pie "One" { AAA 100% }
pie "Half" { AAA 50% BBB 50% }
pie "Sixty" { AAA 60% BBB 40% }
rules "hold" extends "m1" { on dividend hold-cash }
''')
NANO = D("0.000000001")


def days(start: date, rows: list[dict[str, str]]) -> list[PriceDay]:
    """Weekdays from `start`, one per row."""
    out, d = [], start
    for row in rows:
        while d.weekday() >= 5:
            d += timedelta(days=1)
        out.append(PriceDay(d, {s: D(p) for s, p in row.items()}))
        d += timedelta(days=1)
    return out


def spec(pie: str, rules_name: str = "m1", **kw) -> Spec:
    kw.setdefault("start", date(2024, 1, 1))
    kw.setdefault("end", date(2024, 12, 31))
    return Spec(POLICY.pies[pie], find_rules(rules_name, POLICY), **kw)


def test_a_single_security_without_flows_ends_at_start_times_last_over_first_price():
    history = days(date(2024, 1, 1), [{"AAA": p} for p in ("123.45", "130.10", "99.99", "140.07")])
    r = run(spec("One"), history)
    shares = (D(10_000) / D("123.45")).quantize(NANO, rounding=ROUND_DOWN)
    assert r.holdings == (("AAA", "AAA", shares),)
    assert str(shares) == "81.004455245"
    exact = D(10_000) * D("140.07") / D("123.45")                      # 11346.29...
    assert r.final_value == market_cents(exact) == 1134629
    assert r.curve[-1].cash == 0
    assert [p.flow for p in r.curve] == [0, 0, 0, 0]
    assert r.orders == 1 and r.skipped_orders == 0


def test_a_50_50_pie_with_every_month_rebalance_follows_the_hand_computed_path():
    history = [PriceDay(date(2024, 1, 1), {"AAA": D(100), "BBB": D(50)}),
               PriceDay(date(2024, 1, 2), {"AAA": D(110), "BBB": D(50)}),
               PriceDay(date(2024, 2, 1), {"AAA": D(120), "BBB": D(40)}),
               PriceDay(date(2024, 2, 2), {"AAA": D(100), "BBB": D(50)}),
               PriceDay(date(2024, 3, 1), {"AAA": D(100), "BBB": D(50)})]
    path = list(simulate(spec("Half", "monthly"), history))
    held = [{p: q for p, _, q in d.holdings} for d in path]
    # Jan 1: the deposit buys $5,000 of each: 50 and 100 shares. The calendar rebalance after
    # it trades nothing, and a live window marks a rebalance done only when it traded.
    assert held[0] == {"AAA": D(50), "BBB": D(100)} and path[0].value == 1_000_000
    # Jan 2: so January's rebalance runs now: 5,500 / 5,000 -> 5,250 each. AAA sells $250 by
    # quantity: ceil(250/110) to 9 decimals = 2.272727273 shares, filled for $250.00; BBB
    # buys $250 = 5 shares.
    assert held[1] == {"AAA": D("47.727272727"), "BBB": D(105)}
    assert path[1].value == 1_050_000 and path[1].cash == 0
    # Feb 1: AAA 5,727.27 (47.727272727 x 120), BBB 4,200: 9,927.27 -> AAA 4,963.64 (the odd
    # cent to the most overweight), BBB 4,963.63. AAA sells 763.63 = 6.363583334 shares (763.63
    # filled); BBB buys 763.63 = 19.09075 shares.
    assert held[2] == {"AAA": D("41.363689393"), "BBB": D("124.09075")}
    assert path[2].value == 992_727 and path[2].cash == 0
    # Feb 2: February's rebalance is done: nothing trades, whatever the drift.
    assert held[3] == held[2] and not path[3].fills
    assert path[3].value == 413_637 + 620_454                       # 4,136.3689393; 6,204.5375
    # Mar 1: 10,340.91 -> AAA 5,170.45, BBB 5,170.46: BBB sells 1,034.08 = 20.6816 shares, AAA
    # buys 1,034.08 = 10.3408 shares.
    assert held[4] == {"AAA": D("51.704489393"), "BBB": D("103.40915")}
    assert path[4].value == 1_034_091 and path[4].cash == 0
    assert [len(d.fills) for d in path] == [2, 2, 2, 0, 2]


def test_a_split_leaves_the_value_unchanged_that_day():
    history = days(date(2024, 1, 1), [{"AAA": "100"}, {"AAA": "50"}, {"AAA": "51"}])
    split = [CorporateAction(history[1].day, "AAA", "split", D(2))]
    path = list(simulate(spec("One"), history, split))
    assert path[0].value == path[1].value == 1_000_000
    assert path[1].holdings == (("AAA", "AAA", D(200)),)
    assert path[2].value == 1_020_000
    reverse = [CorporateAction(history[1].day, "AAA", "split", D("0.1"))]
    path = list(simulate(spec("One"), days(date(2024, 1, 1), [{"AAA": "100"}, {"AAA": "1000"}]), reverse))
    assert path[1].value == path[0].value and path[1].holdings == (("AAA", "AAA", D(10)),)


def test_dividends_are_credited_and_reinvested_per_the_rules():
    history = days(date(2024, 1, 1), [{"AAA": "100", "BBB": "50"}] * 3)
    pay = [CorporateAction(history[1].day, "AAA", "dividend", D("1.005"))]   # 60 shares: $60.30 (rounded down)
    r = run(spec("Sixty"), history, pay)
    assert r.dividends == 6030
    assert r.curve[1].value == 1_006_030 and r.curve[1].cash == 0             # bought underweight-first
    assert r.curve[1].flow == 0                                               # a return, not a flow
    held = {p: q for p, _, q in r.holdings}
    # Both slices sit on target (6,000 / 4,000), so both rise to one level: $36.18 of AAA
    # (0.3618 shares) and $24.12 of BBB (0.4824 shares).
    assert held == {"AAA": D("60.3618"), "BBB": D("80.4824")}
    kept = run(spec("Sixty", "hold"), history, pay)
    assert kept.dividends == 6030 and kept.curve[-1].cash == 6030                # held as cash
    assert {p: q for p, _, q in kept.holdings} == {"AAA": D(60), "BBB": D(80)}


def test_flows_fall_on_the_first_trading_day_of_each_period_after_the_start():
    history = [PriceDay(date(2024, 1, d), {"AAA": D(100)}) for d in (2, 3, 31)] + \
              [PriceDay(date(2024, 2, d), {"AAA": D(100)}) for d in (1, 2)] + [PriceDay(date(2024, 3, 4), {"AAA": D(100)})]
    r = run(spec("One", start=date(2024, 1, 2), deposit=Recurring("monthly", 50_000),
                 withdraw=Recurring("monthly", 20_000)), history)
    assert [(p.day.isoformat(), p.flow) for p in r.curve if p.flow] == [("2024-02-01", 30_000), ("2024-03-04", 30_000)]
    assert r.deposits == 100_000 and r.withdrawals == 40_000
    assert r.final_value == 1_060_000


def test_a_symbol_without_a_close_cannot_trade_and_is_valued_at_its_last_close():
    history = [PriceDay(date(2024, 1, 1), {"AAA": D(100), "BBB": D(50)}),
               PriceDay(date(2024, 1, 2), {"AAA": D(100)}),                       # BBB: no close
               PriceDay(date(2024, 1, 3), {"AAA": D(100), "BBB": D(50)})]
    path = list(simulate(spec("Half", deposit=Recurring("weekly", 10_000)), history))
    assert path[1].value == 1_000_000                     # BBB valued at 50
    r = run(spec("Half", deposit=Recurring("monthly", 10_000)), history)
    assert r.skipped_orders == 0
    history2 = history[:1] + [PriceDay(date(2024, 2, 1), {"AAA": D(100)})]
    path = list(simulate(spec("Half", deposit=Recurring("monthly", 10_000)), history2))
    # The $100 deposit goes half to BBB, which cannot trade: that order is skipped, its cash waits.
    assert path[1].skipped == 1 and path[1].cash == 5_000 and path[1].value == 1_010_000


def test_without_an_event_or_a_trigger_leftover_cash_waits_as_it_does_live():
    history = days(date(2024, 1, 1), [{"AAA": "100", "BBB": "50"}] * 3)
    r = run(spec("Half", min_order=600_000), history)        # both $5,000 orders are below the minimum
    assert r.skipped_orders == 2 and [p.cash for p in r.curve] == [1_000_000] * 3
    drifting = run(spec("Half", "drift-5", min_order=600_000), history)
    assert drifting.skipped_orders == 6                   # drift rules plan every day, as live


def test_bad_spans_and_missing_prices_are_refused_in_one_line():
    history = days(date(2024, 1, 1), [{"AAA": "100"}])
    with pytest.raises(BacktestError, match="after --to"):
        run(spec("One", start=date(2024, 2, 1), end=date(2024, 1, 1)), history)
    with pytest.raises(BacktestError, match="no price for BBB on or before the first day, 2024-01-01"):
        run(spec("Half"), history)
    with pytest.raises(BacktestError, match="no trading day"):
        run(spec("One", start=date(2025, 1, 1), end=date(2025, 2, 1)), history)
