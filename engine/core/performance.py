"""An account's performance over a period, from the ledger's window history: its value
after every closed window of its broker account, the flows (deposits credited, withdrawals
paid), the dividends, and the time- and money-weighted returns of that curve. Pure: the
rows come in (adapters/ledger/history.py reads them), the figures go out; the return
arithmetic is engine/core/metrics.py's, the one the backtest uses (docs/performance.md).

A point is a closed window: the account's holdings after it are the sum of its
allocations so far (fills and crosses), valued at that window's prices (a symbol the
window did not price keeps its last price); its cash is the window's `cash_after` when the
account was in it, else the cash it had. Deposits are flows only when the plan was made
(a refused plan credits none); dividends are returns, never flows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Mapping, Sequence

from engine.core import metrics
from engine.core.drift import slice_values
from engine.core.errors import Refused
from engine.core.lots import Lot, Realized

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class AccountLine:
    """The account's row of one window (window_accounts), in cents."""

    planned: bool
    deposits: int
    dividends: int
    withdrawn: int
    cash_after: int


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One closed window of the account's broker account, with the account's part in it."""

    window_id: int
    day: date
    prices: Mapping[str, Decimal]
    moves: tuple[tuple[str, str, Decimal], ...] = ()     # the account's allocations: (path, symbol, shares)
    line: AccountLine | None = None                      # None: the account had no row in it


@dataclass(frozen=True, slots=True)
class Point:
    day: date
    window_id: int
    value: int          # cents: cash + holdings at the window's prices
    flow: int           # deposits credited - withdrawals paid
    dividends: int


@dataclass(frozen=True, slots=True)
class Performance:
    start: date | None              # the first point's day (None: no window in the period)
    end: date | None
    start_value: int                # the value before the first point (after the window before it)
    end_value: int
    cash: int                       # at the end
    deposits: int
    withdrawals: int
    dividends: int
    twr: float | None
    mwr: float | None
    points: tuple[Point, ...]
    holdings: Mapping[str, tuple[str, Decimal]]     # path -> (symbol, shares) at the end
    prices: Mapping[str, Decimal]                   # the last price of every symbol seen, at the end

    @property
    def flows(self) -> int:
        return self.deposits - self.withdrawals

    @property
    def market_value(self) -> int:
        """The holdings' part of the end value."""
        return self.end_value - self.cash


class _State:
    def __init__(self) -> None:
        self.held: dict[str, tuple[str, Decimal]] = {}
        self.cash = 0
        self.prices: dict[str, Decimal] = {}
        self.active = False          # seen in a window yet

    def apply(self, w: WindowRow) -> tuple[int, int]:
        """The window's changes; returns its (flow, dividends)."""
        self.prices.update(w.prices)
        for path, symbol, shares in w.moves:
            s, q = self.held.get(path, (symbol, ZERO))
            q += shares
            if q:
                self.held[path] = (s, q)
            else:
                self.held.pop(path, None)
        if w.moves or w.line is not None:
            self.active = True
        if w.line is None:
            return 0, 0
        self.cash = w.line.cash_after
        return (w.line.deposits if w.line.planned else 0) - w.line.withdrawn, w.line.dividends

    def value(self, w: WindowRow) -> int:
        missing = sorted({s for s, _ in self.held.values()} - set(self.prices))
        if missing:
            raise Refused(f"window {w.window_id} ({w.day}) has no price for {', '.join(missing)}")
        return self.cash + sum(slice_values(self.held, self.prices).values())


def performance(windows: Sequence[WindowRow], start: date | None = None, end: date | None = None) -> Performance:
    """The account over the windows of [start, end] (both inclusive; open ends: its whole
    history). `windows`: every closed window of its broker account up to `end` at least, in
    (day, id) order. The start value is the account's value after the last window before
    `start` (0 before its first window), which is invested at that window's day."""
    if start is not None and end is not None and start > end:
        raise Refused(f"--from {start} is after --to {end}")
    st = _State()
    start_value, first_day = 0, None
    points: list[Point] = []
    deposits = withdrawals = 0
    for w in windows:
        if end is not None and w.day > end:
            break
        flow, dividends = st.apply(w)
        if start is not None and w.day < start:
            start_value, first_day = st.value(w), w.day
            continue
        if not st.active:
            continue                 # before the account's first window: nothing to measure
        points.append(Point(w.day, w.window_id, st.value(w), flow, dividends))
        if w.line is not None:
            deposits += w.line.deposits if w.line.planned else 0
            withdrawals += w.line.withdrawn
    if not points:
        return Performance(None, None, start_value, start_value, st.cash, 0, 0, 0, None, None, (), dict(st.held),
                           dict(st.prices))
    first = first_day if first_day is not None else points[0].day
    r = metrics.returns(start_value, first, [p.day for p in points], [p.value for p in points],
                        [p.flow for p in points])
    return Performance(points[0].day, points[-1].day, start_value, points[-1].value, st.cash, deposits, withdrawals,
                       sum(p.dividends for p in points), r.twr, r.mwr, tuple(points), dict(st.held),
                       dict(st.prices))


def basis_at(open_lots: Sequence[Lot], realized: Sequence[Realized], end: date | None) -> int:
    """The cost basis (cents) of what the account held after the windows up to `end`:
    its open lots bought by then, and the basis of the rows sold after `end` from lots
    acquired by then (None: today's open lots). A wash adjustment made after `end` is
    counted as if made before it (docs/performance.md)."""
    if end is None:
        return sum(x.basis for x in open_lots)
    return sum(x.basis for x in open_lots if x.bought <= end) + \
        sum(r.basis for r in realized if r.sold > end and r.acquired <= end)
