"""Return and risk arithmetic over a value curve with external flows: one place for it,
used by `pies backtest` and by the account performance command. Pure.

Conventions (docs/backtest.md), chosen so that figures compare with other tools:
- daily return r_t = V_t / (V_{t-1} + F_t) - 1, V the value at the close after the window,
  F_t the day's external flow (deposits - withdrawals), V_0 the start value;
- twr = prod(1 + r_t) - 1; cagr = (1 + twr) ** (365.25 / calendar days) - 1, calendar days
  = last date - first date + 1;
- volatility = stdev(r, sample) * sqrt(252); sharpe = mean(r) / stdev(r) * sqrt(252) (no
  risk-free rate); sortino = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(252);
- max_drawdown = min_t (W_t / max_{s<=t} W_s - 1) on W_t = prod_{s<=t}(1 + r_s), W_0 = 1;
  calmar = cagr / |max_drawdown|;
- mwr: the annual rate at which the start value (at the first date), every flow (on its
  date) and the final value (at the last date) net to zero, in years of 365.25 days;
- turnover = (bought + sold) / 2 / mean daily value / years; cash_drag = mean(cash / value).
Ratios are floats (money stays integer cents); a ratio with a zero denominator is None.

`returns` is the pair every caller reports (twr and mwr of one curve): the backtest's
`compute` and the account performance (engine/core/performance.py) both call it, so the two
can never count a flow or a start value differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Sequence

YEAR_DAYS = 365.25
TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class Metrics:
    twr: float
    cagr: float | None
    mwr: float | None
    volatility: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    calmar: float | None
    turnover: float | None
    cash_drag: float | None

    def as_dict(self) -> dict[str, float | None]:
        """Every metric, a value past what a float holds (a typo in a price file) as None."""
        return {k: v if v is None or math.isfinite(v) else None for k in self.__slots__ for v in (getattr(self, k),)}


def daily_returns(start: int, values: Sequence[int], flows: Sequence[int]) -> list[float]:
    """r_t against the previous close plus the day's flow (0 when that base is not positive)."""
    out: list[float] = []
    prev = start
    for v, f in zip(values, flows):
        base = prev + f
        out.append(v / base - 1 if base > 0 else 0.0)
        prev = v
    return out


def twr(returns: Sequence[float]) -> float:
    w = 1.0
    for r in returns:
        w *= 1 + r
    return w - 1


def calendar_days(first: date, last: date) -> int:
    return (last - first).days + 1


def cagr(total: float, days: int) -> float | None:
    if days <= 0 or 1 + total < 0:
        return None
    try:
        return (1 + total) ** (YEAR_DAYS / days) - 1
    except OverflowError:         # a 1000-fold gain in two days: no annual figure
        return None


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def stdev(returns: Sequence[float]) -> float | None:
    """The sample standard deviation (n - 1), None below two returns."""
    n = len(returns)
    if n < 2:
        return None
    m = _mean(returns)
    return math.sqrt(sum((r - m) ** 2 for r in returns) / (n - 1))


def volatility(returns: Sequence[float]) -> float | None:
    s = stdev(returns)
    return None if s is None else s * math.sqrt(TRADING_DAYS)


def sharpe(returns: Sequence[float]) -> float | None:
    s = stdev(returns)
    return None if not s else _mean(returns) / s * math.sqrt(TRADING_DAYS)


def sortino(returns: Sequence[float]) -> float | None:
    if not returns:
        return None
    downside = math.sqrt(_mean([min(r, 0.0) ** 2 for r in returns]))
    return None if not downside else _mean(returns) / downside * math.sqrt(TRADING_DAYS)


def max_drawdown(returns: Sequence[float]) -> float:
    return min(drawdowns(returns), default=0.0)


def drawdowns(returns: Sequence[float]) -> list[float]:
    """W_t / max_{s<=t} W_s - 1 for every day (the chart's lower panel)."""
    w = peak = 1.0
    out = []
    for r in returns:
        w *= 1 + r
        peak = max(peak, w)
        out.append(w / peak - 1)
    return out


def calmar(growth: float | None, drawdown: float) -> float | None:
    return None if growth is None or not drawdown else growth / abs(drawdown)


def mwr(start: int, first: date, dated_flows: Sequence[tuple[date, int]], final: int, last: date) -> float | None:
    """The money-weighted (internal) annual rate, by bisection on the net present value.
    The investor pays the start value and each deposit and receives each withdrawal and the
    final value. None when no rate in (-100%, +1e6%) nets them to zero."""
    cash = [(0.0, -float(start))] + [((d - first).days / YEAR_DAYS, -float(f)) for d, f in dated_flows if f]
    cash.append(((last - first).days / YEAR_DAYS, float(final)))

    last_sign = next((math.copysign(1.0, c) for t, c in sorted(cash, reverse=True) if c), 1.0)

    def npv(rate: float) -> float:
        g = math.log1p(rate)
        try:
            return sum(c * math.exp(-g * t) for t, c in cash)
        except OverflowError:     # a rate near -100% over decades: the latest amount outweighs all
            return math.copysign(math.inf, last_sign)

    lo, hi = -0.999999, 10_000.0
    f_lo, f_hi = npv(lo), npv(hi)
    if f_lo == 0:
        return lo
    if f_lo * f_hi > 0:
        return None
    for _ in range(200):
        mid = (lo + hi) / 2
        f_mid = npv(mid)
        if f_mid == 0 or hi - lo < 1e-12:
            return mid
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return (lo + hi) / 2


def turnover(bought: int, sold: int, values: Sequence[int], days: int) -> float | None:
    avg = _mean(values) if values else 0
    years = days / YEAR_DAYS
    return None if not avg or years <= 0 else (bought + sold) / 2 / avg / years


def cash_drag(cash: Sequence[int], values: Sequence[int]) -> float | None:
    if not values:
        return None
    return _mean([c / v if v > 0 else 0.0 for c, v in zip(cash, values)])


@dataclass(frozen=True, slots=True)
class Returns:
    daily: tuple[float, ...]       # r_t of every curve point
    twr: float                     # over the whole curve, not annualized
    mwr: float | None              # annual


def returns(start: int, first: date, dates: Sequence[date], values: Sequence[int], flows: Sequence[int]) -> Returns:
    """The time- and money-weighted return of a curve: `start` the value at `first`, then
    each point's value after its flow (cents). The one place both are computed."""
    rs = daily_returns(start, values, flows)
    return Returns(tuple(rs), twr(rs), mwr(start, first, list(zip(dates, flows)), values[-1], dates[-1]))


def compute(start: int, dates: Sequence[date], values: Sequence[int], flows: Sequence[int],
            cash: Sequence[int], bought: int = 0, sold: int = 0) -> Metrics:
    """Every metric of a curve: dates, values, flows and cash per day, in cents."""
    if not dates:
        raise ValueError("a curve needs at least one day")
    ret = returns(start, dates[0], dates, values, flows)
    rs = list(ret.daily)
    days = calendar_days(dates[0], dates[-1])
    total = ret.twr
    growth = cagr(total, days)
    dd = max_drawdown(rs)
    return Metrics(
        twr=total, cagr=growth, mwr=ret.mwr,
        volatility=volatility(rs), sharpe=sharpe(rs), sortino=sortino(rs),
        max_drawdown=dd, calmar=calmar(growth, dd),
        turnover=turnover(bought, sold, values, days), cash_drag=cash_drag(cash, values))
