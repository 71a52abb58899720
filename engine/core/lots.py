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

    @property
    def gain(self) -> int:
        return self.proceeds - self.basis + self.wash_sale_disallowed
