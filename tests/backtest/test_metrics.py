"""The metrics module on cases with known answers, and its edges (no answer is None, never
an exception or a non-finite number)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from engine.core import metrics as mx


def test_known_answers():
    # One year of 365.25 days is not a whole number of days: take 4 years = 1461 days.
    first, last = date(2020, 1, 1), date(2024, 1, 1)
    assert (last - first).days == 1461
    assert mx.mwr(10_000, first, [], 14_641, last) == pytest.approx(0.10, abs=1e-9)      # 1.1^4
    # A deposit halfway does not change the rate when it earns the same.
    mid = first + timedelta(days=730)
    final = 14_641 + 5_000 * 1.1 ** ((last - mid).days / 365.25)
    assert mx.mwr(10_000, first, [(mid, 5_000)], final, last) == pytest.approx(0.10, abs=1e-9)
    rs = mx.daily_returns(100, [110, 99, 108.9], [0, 0, 0])
    assert rs == pytest.approx([0.1, -0.1, 0.1])
    assert mx.twr(rs) == pytest.approx(1.1 * 0.9 * 1.1 - 1)
    assert mx.max_drawdown(rs) == pytest.approx(-0.1)
    assert mx.drawdowns(rs) == pytest.approx([0, -0.1, -0.01])
    # A flow is not a return: 100 -> deposit 50 -> 150 is 0%.
    assert mx.daily_returns(100, [150], [50]) == [0.0]
    assert mx.cagr(0.21, 731) == pytest.approx(1.21 ** (365.25 / 731) - 1)
    assert mx.turnover(500, 500, [1000, 1000], 365) == pytest.approx(0.5 * 365.25 / 365)


def test_edges_are_none_not_errors():
    m = mx.compute(100, [date(2020, 1, 1), date(2020, 1, 2)], [100, 10 ** 9], [0, 0], [0, 0])
    assert m.cagr is None and m.calmar is None                  # no drawdown; a gain past any float power
    assert all(v is None or math.isfinite(v) for v in m.as_dict().values())
    flat = mx.compute(100, [date(2020, 1, 1)], [100], [0], [100])
    assert flat.twr == 0 and flat.volatility is None and flat.sharpe is None and flat.sortino is None
    assert flat.cash_drag == 1.0
    years = (date(2020, 1, 1) - date(1950, 1, 1)).days / 365.25
    assert mx.mwr(100, date(1950, 1, 1), [], 1, date(2020, 1, 1)) == pytest.approx(0.01 ** (1 / years) - 1, rel=1e-6)
    assert mx.daily_returns(100, [0, 5], [-100, 0]) == [0.0, 0.0]          # all withdrawn: nothing to earn on
