"""Tax lots as the core sees them (docs/books.md): what an account paid for the shares of a
symbol it holds, bought when. The decisions over them (which lots a sale consumes, wash
sales, realized gains) are pure functions beside these values.

Lots are per account and symbol, not per slice. Shares are 9-decimal `Decimal`s, money is
integer cents; `basis` includes any wash-sale adjustment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Sequence


class LotMethod(StrEnum):
    TAX_MIN = "tax-min"
    FIFO = "fifo"
    LIFO = "lifo"
    HIFO = "hifo"


@dataclass(frozen=True, slots=True)
class Lot:
    id: int
    account_id: int
    symbol: str
    bought: date                 # the trading date of the buy (the wash-sale window counts from it)
    acquired: date               # the holding period's start (a wash sale moves it back)
    shares: Decimal              # open shares
    basis: int                   # cents, wash adjustment included
    wash_adjustment: int = 0     # cents of disallowed loss added to the basis
    replaced: Decimal = Decimal(0)   # shares already a wash sale's replacement (used once)


@dataclass(frozen=True, slots=True)
class Realized:
    """One consumed lot's part of a sale (a Form 8949 row)."""

    id: int
    account_id: int
    lot_id: int
    symbol: str
    acquired: date
    sold: date
    shares: Decimal
    proceeds: int                # cents
    basis: int                   # cents
    wash_sale_disallowed: int = 0
    washed: Decimal = Decimal(0)     # shares of the loss that replacements have matched

    @property
    def gain(self) -> int:
        return self.proceeds - self.basis + self.wash_sale_disallowed

    @property
    def term(self) -> str:
        return "long" if is_long_term(self.acquired, self.sold) else "short"


def is_long_term(acquired: date, sold: date) -> bool:
    """Held more than one year: acquired 2025-03-10 is long-term when sold 2026-03-11 or
    later (a 29 February acquisition's anniversary is 28 February)."""
    try:
        anniversary = acquired.replace(year=acquired.year + 1)
    except ValueError:
        anniversary = acquired.replace(year=acquired.year + 1, day=28)
    return sold > anniversary


# --- which lots a sale consumes -------------------------------------------------------------

def divide_half_even(num: int, den: int) -> int:
    """num / den (den > 0) to a whole number, half to even, exactly."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2):
        q += 1
    return q


def half_even(value: Fraction) -> int:
    """An exact fraction of cents to whole cents, half to even."""
    return divide_half_even(value.numerator, value.denominator)


def nano(shares: Decimal) -> int:
    """Shares as whole billionths (they have 9 places at most): exact integer arithmetic."""
    return int(shares.scaleb(9))


def part_of(cents: int, shares: Decimal, of: Decimal) -> int:
    """`cents × shares / of`, half-even to the cent (what a part of a lot carries)."""
    return cents if shares == of else divide_half_even(cents * nano(shares), nano(of))


class _Ratio:
    """n / d (d > 0) compared exactly by cross-multiplication: a sort key that costs less
    than a Fraction (no gcd), for the per-share comparisons of a sale's lots."""

    __slots__ = ("n", "d")

    def __init__(self, n: int, d: int):
        self.n, self.d = n, d

    def __eq__(self, other: "_Ratio") -> bool:           # type: ignore[override]
        return self.n * other.d == other.n * self.d

    def __lt__(self, other: "_Ratio") -> bool:
        return self.n * other.d < other.n * self.d

    __hash__ = None      # type: ignore[assignment]


def _category(long: bool, gain_sign: int) -> int:
    """tax-min's six groups, in the order the issue gives them."""
    if gain_sign < 0:
        return 2 if long else 1
    if gain_sign == 0:
        return 4 if long else 3
    return 5 if long else 6


def consumption_order(lots: Sequence[Lot], method: LotMethod, pn: int, pd: int, sold: date) -> list[Lot]:
    """The open lots in the order a sale at pn / pd (pd > 0) cents per billionth of a share
    on `sold` consumes them. Ties: earlier acquired first, then lower lot id (every key
    below ends so). Per-share values are compared exactly, cross-multiplied (so the price
    need not be in lowest terms: a sale passes its cents and its billionths as they are)."""
    open_ = [lot for lot in lots if lot.shares > 0]
    if len(open_) < 2:
        return open_
    if method == LotMethod.FIFO:
        key = lambda lot: (lot.acquired, lot.id)                                   # noqa: E731
    elif method == LotMethod.LIFO:
        key = lambda lot: (-lot.acquired.toordinal(), lot.id)                     # noqa: E731
    elif method == LotMethod.HIFO:
        key = lambda lot: (_Ratio(-lot.basis, nano(lot.shares)), lot.acquired, lot.id)   # noqa: E731
    else:
        def key(lot: Lot):
            # gain per share = price - basis / shares; ascending gain within a group is
            # descending basis per share (the price is the same for every lot).
            n = nano(lot.shares)
            diff = pn * n - lot.basis * pd
            sign = (diff > 0) - (diff < 0)
            return (_category(is_long_term(lot.acquired, sold), sign), _Ratio(-lot.basis, n), lot.acquired, lot.id)
    return sorted(open_, key=key)


@dataclass(frozen=True, slots=True)
class Consumption:
    realized: tuple[Realized, ...]     # one row per consumed lot, in consumption order (id 0: new)
    lots: tuple[Lot, ...]              # the consumed lots after the sale (shares 0: closed)


def consume(lots: Sequence[Lot], shares: Decimal, proceeds: int, sold: date,
            method: LotMethod = LotMethod.TAX_MIN) -> Consumption:
    """A sale of `shares` of one account's symbol for `proceeds` cents on `sold`: the lots
    it consumes (`lots`: that account's open lots of that symbol), each giving up
    `basis × sold / held` half-even (a whole lot all of it), and the proceeds split over
    them by shares, the last lot taking the remainder. Shares beyond the lots' (which the
    books never let happen) are sold without a lot, and their share of the proceeds with them."""
    if shares <= 0:
        return Consumption((), ())
    left = shares
    taken: list[tuple[Lot, Decimal]] = []
    for lot in consumption_order(lots, method, proceeds, nano(shares), sold):
        if left <= 0:
            break
        take = min(lot.shares, left)
        taken.append((lot, take))
        left -= take
    covered = shares - left
    share_of = proceeds if left == 0 else part_of(proceeds, covered, shares)
    realized, after = [], []
    given = 0
    for k, (lot, take) in enumerate(taken):
        basis = part_of(lot.basis, take, lot.shares)
        wash = part_of(lot.wash_adjustment, take, lot.shares)
        got = share_of - given if k == len(taken) - 1 else divide_half_even(share_of * nano(take), nano(covered))
        given += got
        realized.append(Realized(0, lot.account_id, lot.id, lot.symbol, lot.acquired, sold, take, got, basis))
        rest = lot.shares - take
        # Lot(...) rather than dataclasses.replace: a few times faster, and every sale's lots go through it.
        after.append(Lot(lot.id, lot.account_id, lot.symbol, lot.bought, lot.acquired, rest, lot.basis - basis,
                         lot.wash_adjustment - wash, min(lot.replaced, rest)))
    return Consumption(tuple(realized), tuple(after))
