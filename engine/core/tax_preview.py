"""The tax preview of a plan (docs/books.md): the realized gain, short- and long-term, that
the sells a plan would make are estimated to realize, at the given prices, consuming the
account's lots by its method exactly as the window's books would (engine/core/lots.consume).
Pure: lots and sells in, figures out; nothing is booked. Wash sales are not estimated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Iterable, Mapping, Sequence

from engine.core.lots import Lot, LotMethod, Realized, consume, part_of
from engine.core.money import cents

ZERO = Decimal(0)
NINE = Decimal("0.000000001")


@dataclass(frozen=True, slots=True)
class Sale:
    symbol: str
    shares: Decimal
    proceeds: int        # cents


@dataclass(frozen=True, slots=True)
class TaxPreview:
    short: int
    long: int
    rows: tuple[Realized, ...] = ()

    @property
    def total(self) -> int:
        return self.short + self.long

    def __add__(self, other: "TaxPreview") -> "TaxPreview":
        return TaxPreview(self.short + other.short, self.long + other.long, self.rows + other.rows)


NONE = TaxPreview(0, 0)


def sales_of(trades: Iterable[tuple[str, str, int, bool]], held: Mapping[str, Decimal],
             prices: Mapping[str, Decimal]) -> list[Sale]:
    """One account's planned slice trades (path, symbol, signed cents, the whole holding)
    as its net sale per symbol: a whole holding sells the slice's shares (`held`), a dollar
    sell the shares its cents buy at the price (down to 9 places), buys of the symbol in
    other slices net against them. Symbols bought on net are no sale."""
    shares: dict[str, Decimal] = {}
    for path, symbol, c, whole in trades:
        if symbol not in prices:
            continue
        q = held.get(path, ZERO) if whole and c < 0 else (Decimal(abs(c)) / 100 / prices[symbol]).quantize(
            NINE, rounding=ROUND_DOWN)
        shares[symbol] = shares.get(symbol, ZERO) + (q if c < 0 else -q)
    return [Sale(s, q, cents(q * prices[s], ROUND_HALF_EVEN)) for s, q in sorted(shares.items()) if q > 0]


def preview(sales: Sequence[Sale], lots: Sequence[Lot], day: date, method: str | LotMethod) -> TaxPreview:
    """The gains the sales would realize on `day`, each consuming the account's open lots
    of its symbol by `method` (shares beyond the lots are sold without a lot: no gain)."""
    out = NONE
    for sale in sales:
        mine = [x for x in lots if x.symbol == sale.symbol]
        held = sum((x.shares for x in mine), ZERO)
        if not held:
            continue
        take = min(sale.shares, held)
        proceeds = sale.proceeds if take == sale.shares else part_of(sale.proceeds, take, sale.shares)
        rows = consume(mine, take, proceeds, day, LotMethod(method)).realized
        out = out + TaxPreview(sum(r.gain for r in rows if r.term == "short"),
                               sum(r.gain for r in rows if r.term == "long"), tuple(rows))
    return out
