"""The books kept in memory across windows, the way the ledger keeps them: `book` for each
window, its answer applied (new lots and rows get the next ids). Tests use it to run whole
histories through the core and compare with a naive reading of the rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Mapping, Sequence

from engine.core.books import Booking, Trade, book
from engine.core.lots import Lot, LotMethod, Realized


class Books:
    def __init__(self, owners: Mapping[int, str] | None = None, methods: Mapping[int, LotMethod] | None = None):
        self.lots: dict[int, Lot] = {}
        self.realized: dict[int, Realized] = {}
        self.owners = dict(owners or {})
        self.methods = dict(methods or {})
        self.next_lot = 1
        self.next_row = 1
        self.last: Booking | None = None
        self.bought_cents = 0                # every buy's basis, as booked

    def open_lots(self, account_id: int | None = None, symbol: str | None = None) -> list[Lot]:
        return [x for x in self.lots.values() if x.shares > 0 and (account_id is None or x.account_id == account_id)
                and (symbol is None or x.symbol == symbol)]

    def window(self, day: date, trades: Sequence[Trade]) -> Booking:
        b = book(day, trades, self.open_lots(), list(self.realized.values()), self.methods, self.owners)
        for x in b.changed_lots:
            assert x.id in self.lots
            self.lots[x.id] = x
        for x in b.new_lots:
            self.lots[self.next_lot] = replace(x, id=self.next_lot)
            self.next_lot += 1
        for r in b.changed_realized:
            self.realized[r.id] = r
        for r in b.new_realized:
            self.realized[self.next_row] = replace(r, id=self.next_row)
            self.next_row += 1
        self.bought_cents += sum(max(t.cents, 0) for t in trades if t.shares > 0)
        self.last = b
        return b

    def buy(self, day: date, account: int, symbol: str, shares: str, cents: int) -> Booking:
        return self.window(day, [Trade(account, symbol, Decimal(shares), cents)])

    def sell(self, day: date, account: int, symbol: str, shares: str, cents: int) -> Booking:
        return self.window(day, [Trade(account, symbol, -Decimal(shares), -cents)])
