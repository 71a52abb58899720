"""Unrealized gain per symbol from the open lots (docs/books.md): what the shares are worth
less what they cost, and the part of it in lots held more than a year. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Mapping, Sequence

from engine.core.lots import Lot, half_even, is_long_term
from engine.core.money import cents

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SymbolGain:
    symbol: str
    shares: Decimal      # in the open lots
    value: int           # cents: the account's holdings of it (as the account page values them)
    basis: int           # cents: the open lots', wash adjustments included
    long_term: int       # cents of the gain in lots held more than a year on `today`

    @property
    def gain(self) -> int:
        return self.value - self.basis

    @property
    def long_term_bp(self) -> int | None:
        """The long-term part of the gain in basis points of it (None when there is no gain)."""
        return None if not self.gain else half_even(Fraction(self.long_term * 10_000, self.gain))


def unrealized_by_symbol(lots: Sequence[Lot], values: Mapping[str, int], prices: Mapping[str, Decimal],
                         today: date) -> list[SymbolGain]:
    """Per symbol held or in a lot, by symbol: `values` the holdings' cents per symbol;
    a long-term lot's gain is its shares at `prices` (to the cent) less its basis."""
    out = []
    for sym in sorted(set(values) | {x.symbol for x in lots}):
        mine = [x for x in lots if x.symbol == sym]
        long_term = sum(cents(x.shares * prices[sym], ROUND_HALF_EVEN) - x.basis for x in mine
                        if sym in prices and is_long_term(x.acquired, today))
        out.append(SymbolGain(sym, sum((x.shares for x in mine), ZERO), values.get(sym, 0),
                              sum(x.basis for x in mine), long_term))
    return out
