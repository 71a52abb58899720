"""The performance core over hand-made window histories: the curve, the flows, and the
returns by the metrics module the backtest uses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from engine.core import metrics
from engine.core.errors import Refused
from engine.core.performance import AccountLine, WindowRow, performance


def w(wid, day, prices, moves=(), line=None):
    return WindowRow(wid, date(2026, 3, day), {k: D(v) for k, v in prices.items()}, tuple(moves), line)


def line(deposits=0, dividends=0, withdrawn=0, cash_after=0, planned=True):
    return AccountLine(planned, deposits, dividends, withdrawn, cash_after)


# 10 shares at 100 for a 1,000 deposit; the price goes to 110; 1,100 more buys 10 at 110;
# the price falls back to 100: the time-weighted return is 0 (+10%, then -9.09%), the
# money-weighted is negative (more money was in for the fall).
HISTORY = [
    w(1, 2, {"AAA": "100"}, [("AAA", "AAA", D("10"))], line(deposits=100_000)),
    w(2, 3, {"AAA": "110"}),
    w(3, 4, {"AAA": "110"}, [("AAA", "AAA", D("10"))], line(deposits=110_000)),
    w(4, 5, {"AAA": "100"}),
]


def test_the_curve_counts_deposits_as_flows_and_values_at_each_windows_prices():
    p = performance(HISTORY)
    assert [(x.value, x.flow) for x in p.points] == [(100_000, 100_000), (110_000, 0), (220_000, 110_000),
                                                     (200_000, 0)]
    assert (p.start_value, p.end_value, p.deposits, p.withdrawals, p.dividends) == (0, 200_000, 210_000, 0, 0)
    assert p.twr == pytest.approx(0.0, abs=1e-12)
    assert p.mwr is not None and p.mwr < -0.5          # -20,000 over three days, annualized


def test_the_money_weighted_rate_nets_the_flows_and_the_end_value_to_zero():
    p = performance(HISTORY)
    g = 1 + p.mwr
    npv = -100_000 - 110_000 * g ** (-2 / 365.25) + 200_000 * g ** (-3 / 365.25)
    assert npv == pytest.approx(0, abs=1e-3)


def test_the_returns_are_the_backtests_own_arithmetic():
    p = performance(HISTORY)
    m = metrics.compute(0, [x.day for x in p.points], [x.value for x in p.points], [x.flow for x in p.points],
                        [0] * 4)
    assert (p.twr, p.mwr) == (m.twr, m.mwr)


def test_from_starts_at_the_value_after_the_window_before_it():
    p = performance(HISTORY, start=date(2026, 3, 4))
    assert p.start_value == 110_000 and [x.window_id for x in p.points] == [3, 4]
    assert p.twr == pytest.approx(200_000 / 220_000 - 1)
    assert p.deposits == 110_000


def test_to_ends_the_curve_and_dividends_are_returns_not_flows():
    hist = [HISTORY[0], w(2, 3, {"AAA": "100"}, (), line(dividends=500, cash_after=500)), HISTORY[2]]
    p = performance(hist, end=date(2026, 3, 3))
    assert [x.value for x in p.points] == [100_000, 100_500]
    assert (p.dividends, p.flows) == (500, 100_000)
    assert p.twr == pytest.approx(0.005)


def test_withdrawals_paid_are_outflows_and_a_refused_plan_credits_no_deposit():
    hist = [HISTORY[0],
            w(2, 3, {"AAA": "100"}, [("AAA", "AAA", D("-2"))], line(withdrawn=20_000, cash_after=0)),
            w(3, 4, {"AAA": "100"}, (), line(deposits=5_000, planned=False, cash_after=0))]
    p = performance(hist)
    assert [x.flow for x in p.points] == [100_000, -20_000, 0]
    assert (p.withdrawals, p.deposits) == (20_000, 100_000)
    assert p.twr == pytest.approx(0.0, abs=1e-12)


def test_a_symbol_the_window_did_not_price_keeps_its_last_price():
    hist = [HISTORY[0], w(2, 3, {"BBB": "5"})]
    assert performance(hist).points[-1].value == 100_000


def test_windows_before_the_accounts_first_are_not_points():
    hist = [w(9, 1, {"AAA": "90"})] + HISTORY
    assert [x.window_id for x in performance(hist).points] == [1, 2, 3, 4]


def test_an_empty_period_has_no_returns_and_a_reversed_one_is_refused():
    p = performance(HISTORY, start=date(2026, 4, 1))
    assert (p.points, p.twr, p.mwr, p.start_value) == ((), None, None, 200_000)
    with pytest.raises(Refused, match="--from 2026-03-05 is after --to 2026-03-04"):
        performance(HISTORY, start=date(2026, 3, 5), end=date(2026, 3, 4))
