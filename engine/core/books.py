"""A window's books (docs/books.md): the lots its allocations open, the lots its sales
consume, the realized rows, and the wash sales among one owner's accounts. Pure: the
window's shell loads one shard of owners' trades, lots and recent realized rows, calls
`book`, and persists the answer.

An account's buys and sells of one symbol in one window are netted first (`net_trades`):
a symbol held in two slices shares one set of lots, so a cross between two slices of one
account, or a sell of one slice and a buy of another, is no trade for the books.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from itertools import groupby
from operator import attrgetter
from typing import Iterable, Mapping, Sequence

from .lots import Consumption, Lot, LotMethod, Realized, consume, divide_half_even, nano, part_of

WASH_DAYS = 30
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Trade:
    """An account's net trade of one symbol in one window, as the books see it."""

    account_id: int
    symbol: str
    shares: Decimal          # + bought, - sold
    cents: int               # + paid, - received


def net_trades(moves: Iterable[tuple[int, str, Decimal, int]]) -> list[Trade]:
    """(account, symbol, shares, cents) allocation rows summed per account and symbol; those
    whose shares net to zero trade nothing (their cents, if any, are cash only)."""
    sums: dict[tuple[int, str], list] = {}
    for aid, sym, sh, c in moves:
        x = sums.get((aid, sym))
        if x is None:
            sums[(aid, sym)] = [sh, c]
        else:
            x[0] += sh
            x[1] += c
    return [Trade(aid, sym, sh, c) for (aid, sym), (sh, c) in sorted(sums.items()) if sh != 0]


@dataclass(frozen=True, slots=True)
class Booking:
    new_lots: tuple[Lot, ...]            # id 0; the shell inserts them in this order
    changed_lots: tuple[Lot, ...]        # existing lots after the window (shares 0: closed)
    new_realized: tuple[Realized, ...]   # id 0, in order; lot_id names an existing lot
    changed_realized: tuple[Realized, ...]   # earlier rows a replacement bought now adjusted


def _with_id(x: Lot, i: int) -> Lot:
    """`replace(x, id=i)`, a few times faster (every new lot goes through it twice)."""
    return Lot(i, x.account_id, x.symbol, x.bought, x.acquired, x.shares, x.basis, x.wash_adjustment, x.replaced)


def within_wash(a: date, b: date) -> bool:
    return abs((a - b).days) <= WASH_DAYS


class _Books:
    """One window's working set: lots by a key (existing: their id; new: -1, -2, ...)."""

    def __init__(self, lots: Sequence[Lot], realized: Sequence[Realized]):
        self.lots: dict[int, Lot] = {lot.id: lot for lot in lots}
        self.held: dict[tuple[int, str], list[int]] = defaultdict(list)     # (account, symbol) -> keys
        for lot in lots:
            self.held[(lot.account_id, lot.symbol)].append(lot.id)
        self.changed: set[int] = set()
        self.new_keys: list[int] = []
        self.realized: dict[int, Realized] = {r.id: r for r in realized}
        self.rows_of: dict[tuple[int, str], list[int]] = defaultdict(list)   # (account, symbol) -> row ids
        for r in realized:
            self.rows_of[(r.account_id, r.symbol)].append(r.id)
        self.changed_realized: set[int] = set()
        self.new_realized: list[Realized] = []

    def add(self, lot: Lot) -> int:
        return self.open(lot.account_id, lot.symbol, lot.bought, lot.acquired, lot.shares, lot.basis,
                         lot.wash_adjustment, lot.replaced)

    def open(self, account_id: int, symbol: str, bought: date, acquired: date, shares: Decimal, basis: int,
             wash_adjustment: int = 0, replaced: Decimal = ZERO) -> int:
        """A new lot under the next key (a window's buys open one each: built once, here)."""
        key = -(len(self.new_keys) + 1)
        self.new_keys.append(key)
        self.lots[key] = Lot(key, account_id, symbol, bought, acquired, shares, basis, wash_adjustment, replaced)
        self.held[(account_id, symbol)].append(key)
        return key

    def put(self, lot: Lot) -> None:
        self.lots[lot.id] = lot
        if lot.id > 0:
            self.changed.add(lot.id)

    def of(self, account_id: int, symbol: str) -> list[Lot]:
        return [self.lots[k] for k in self.held.get((account_id, symbol), ())]

    def candidates(self, accounts: set[int], symbol: str, day: date, excluded: set[int]) -> list[Lot]:
        """Open lots of an owner's accounts that may replace a loss sold on `day`: the same
        symbol bought within 30 days, not sold in that sale, not a replacement already;
        earliest bought first (existing lots before this window's, then by id)."""
        found = [lot for aid in accounts for lot in self.of(aid, symbol)
                 if lot.shares > 0 and lot.replaced < lot.shares and lot.id not in excluded
                 and within_wash(lot.bought, day)]
        return sorted(found, key=lambda lot: (lot.bought, lot.id < 0, abs(lot.id)))

    def wash(self, row: Realized, candidates: Sequence[Lot]) -> Realized:
        """Disallow `row`'s loss to the extent of `candidates`' shares, in their order: each
        replacement takes its shares' part of the loss (cumulative half-even, so a whole
        replacement disallows exactly the whole loss) into its basis, and the sold lot's
        acquisition as its own. A replacement with more shares than needed is split."""
        loss = row.basis - row.proceeds
        for c in candidates:
            need = row.shares - row.washed
            if loss <= 0 or need <= 0:
                break
            c = self.lots[c.id]
            free = c.shares - c.replaced
            if free <= 0:
                continue
            take = min(free, need)
            washed = row.washed + take
            total = divide_half_even(loss * nano(washed), nano(row.shares))
            inc = total - row.wash_sale_disallowed
            row = replace(row, washed=washed, wash_sale_disallowed=total)
            if take == c.shares:
                self.put(replace(c, basis=c.basis + inc, wash_adjustment=c.wash_adjustment + inc,
                                 acquired=row.acquired, replaced=c.shares))
            else:
                basis = part_of(c.basis, take, c.shares)
                wash = part_of(c.wash_adjustment, take, c.shares)
                self.put(replace(c, shares=c.shares - take, basis=c.basis - basis,
                                 wash_adjustment=c.wash_adjustment - wash, replaced=min(c.replaced, c.shares - take)))
                self.add(replace(c, shares=take, basis=basis + inc, wash_adjustment=wash + inc,
                                 acquired=row.acquired, replaced=take))
        return row


_by_account = attrgetter("account_id")
_by_pair = attrgetter("account_id", "symbol")


def _book_group(b: _Books, day: date, mine: set[int], sym: str, ts: Sequence[Trade],
                methods: Mapping[int, LotMethod]) -> None:
    """One owner's trades of one symbol (`mine`: the owner's accounts; `ts` by account):
    buys open lots; earlier losses still unmatched take them as replacements (earliest
    sale first); then each sale consumes its account's lots and each of its rows at a loss
    is washed by the owner's lots bought within 30 days (this window's included)."""
    bought: set[int] = set()
    for t in ts:
        if t.shares > 0:
            bought.add(b.open(t.account_id, sym, day, day, t.shares, max(t.cents, 0)))
    if bought and b.rows_of:
        earlier = sorted((r for aid in mine for r in (b.realized[i] for i in b.rows_of.get((aid, sym), ()))
                          if r.sold < day and within_wash(r.sold, day) and r.washed < r.shares
                          and r.basis > r.proceeds), key=lambda r: (r.sold, r.id))
        for r in earlier:
            washed = b.wash(r, sorted((lot for aid in mine for lot in b.of(aid, sym) if lot.id < 0),
                                      key=lambda lot: -lot.id))
            if washed != r:
                b.realized[r.id] = washed
                b.changed_realized.add(r.id)
    if len(bought) == len(ts):
        return                            # buys only: nothing sold, nothing to wash
    sales: list[tuple[Realized, set[int]]] = []
    for t in ts:
        if t.shares >= 0:
            continue
        held = [lot for lot in b.of(t.account_id, sym) if lot.shares > 0]
        c: Consumption = consume(held, -t.shares, max(-t.cents, 0), day,
                                 methods.get(t.account_id, LotMethod.TAX_MIN))
        for lot in c.lots:
            b.put(lot)
        sold_here = {lot.id for lot in c.lots}
        sales.extend((row, sold_here) for row in c.realized)
    # Every sale has consumed its lots before any loss is washed, so the lots a wash
    # splits are never consumed in the same window (a new lot has no id to name yet).
    for row, sold_here in sales:
        if row.basis > row.proceeds:
            row = b.wash(row, b.candidates(mine, sym, day, sold_here))
        b.new_realized.append(row)


def book(day: date, trades: Sequence[Trade], lots: Sequence[Lot], realized: Sequence[Realized],
         methods: Mapping[int, LotMethod], owners: Mapping[int, str]) -> Booking:
    """The books of one window's trades on `day` for a set of whole owners.

    `lots`: the open lots of every selling account in the symbols it sells, and those of
    every account of the owners bought in the 30 days before `day` in the symbols sold
    (more may be given; they are left alone); `realized`: their rows sold in the 30 days
    before `day` in the symbols bought (older ones cannot be washed by a buy now);
    `methods`: each selling account's lot method (tax-min when absent); `owners`: every
    account's owner (an account absent is its own owner, whatever the others' owners are
    called: the window passes only the accounts of owners with several).

    Per owner and symbol: this window's buys open lots; then earlier losses still
    unmatched take this window's buys as replacements (earliest sale first); then each
    sale (accounts in id order) consumes its account's lots and each of its rows at a loss
    is washed by the owner's lots bought within 30 days (this window's included)."""
    b = _Books(lots, realized)
    # Owners named in `owners` come first (by name, then symbol), then the accounts alone
    # (by id, then symbol): an owner's accounts are one unit, an account alone its own.
    members: dict[str, set[int]] = defaultdict(set)
    for aid, who in owners.items():
        members[who].add(aid)
    shared: dict[tuple[str, str], list[Trade]] = defaultdict(list)
    alone: list[Trade] = []
    for t in trades:
        if t.account_id in owners:
            shared[(owners[t.account_id], t.symbol)].append(t)
        else:
            alone.append(t)
    for (who, sym), ts in sorted(shared.items()):
        _book_group(b, day, members[who], sym, sorted(ts, key=_by_account), methods)
    alone.sort(key=_by_pair)                  # stable: one pair's trades keep their order
    for (aid, sym), run in groupby(alone, key=_by_pair):
        ts = list(run)
        if len(ts) == 1 and ts[0].shares > 0 and (aid, sym) not in b.rows_of:
            b.open(aid, sym, day, day, ts[0].shares, max(ts[0].cents, 0))   # a buy, no loss to wash: a lot
        else:
            _book_group(b, day, {aid}, sym, ts, methods)
    return Booking(tuple(_with_id(b.lots[k], 0) for k in b.new_keys),
                   tuple(b.lots[k] for k in sorted(b.changed)),
                   tuple(b.new_realized),
                   tuple(b.realized[k] for k in sorted(b.changed_realized)))
