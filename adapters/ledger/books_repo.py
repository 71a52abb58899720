"""The books' SQL (docs/books.md): lots and realized rows in and out, in bulk, and who owns
which account. Rows in, rows out: which lots a sale consumes and what a wash sale moves is
engine.core.books' to decide.

The functions take the caller's session (a window shard's transaction, the migration's
replay); `BooksRepository` wraps them for readers (the service layer, the commands).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from engine.core.books import WASH_DAYS, Booking
from engine.core.lots import Lot, Realized
from engine.core.money import cents, dollars

from . import bulk
from .schema import Account, LotRow, RealizedRow
from .store import Ledger

CHUNK = 5_000
_LOT = (LotRow.id, LotRow.account_id, LotRow.symbol, LotRow.bought, LotRow.acquired, LotRow.shares, LotRow.basis,
        LotRow.wash_adjustment, LotRow.replaced)
_REALIZED = (RealizedRow.id, RealizedRow.account_id, RealizedRow.lot_id, RealizedRow.symbol, RealizedRow.acquired,
             RealizedRow.sold, RealizedRow.shares, RealizedRow.proceeds, RealizedRow.basis,
             RealizedRow.wash_sale_disallowed, RealizedRow.washed)


# A pair's lots are found among its account's open lots (one index scan per account, not
# one per pair: an account that sells sells several symbols, and each scan reads all of
# the account's open lots to find a symbol's), kept by "account:symbol" keys in a hashed
# subquery (an `= ANY` over the keys is scanned linearly once psycopg prepares the query).
# Basis and adjustment come as whole cents in text (two places times 100; 28 digits fit
# NUMERIC(38, 0) where a 64-bit integer could overflow): a sale reads some 400,000 lots at
# a million accounts, and cents are what the core takes.
_BY_PAIRS = text("""
    SELECT l.id, l.account_id, l.symbol, l.bought, l.acquired, l.shares,
           CAST(CAST(l.basis * 100 AS NUMERIC(38, 0)) AS TEXT),
           CAST(CAST(l.wash_adjustment * 100 AS NUMERIC(38, 0)) AS TEXT), l.replaced
    FROM lots l
    WHERE l.account_id = ANY(CAST(:a AS integer[])) AND NOT l.closed
      AND CAST(l.account_id AS text) || ':' || l.symbol IN (SELECT unnest(CAST(:k AS text[])))""")


def _lot(r, money: Callable[[Any], int] = cents) -> Lot:
    """A lot from its row; `money` turns the row's basis and adjustment into cents (`int`
    where the query gives cents already)."""
    i, aid, sym, bought, acquired, shares, basis, wash, replaced = r
    return Lot(i, aid, sym, bought, acquired, shares, money(basis), money(wash), replaced)


def _realized(r) -> Realized:
    i, aid, lot, sym, acquired, sold, shares, proceeds, basis, wash, washed = r
    return Realized(i, aid, lot, sym, acquired, sold, shares, cents(proceeds), cents(basis), cents(wash), washed)


def owner_expr():
    """An account's owner for wash sales: its `owner`, or itself."""
    return func.coalesce(Account.owner, Account.name)


def load_lots(s: Session, account_ids: Iterable[int], symbols: Iterable[str] | None = None, *,
              bought_since: date | None = None) -> list[Lot]:
    """Open lots of these accounts (only of `symbols`, only bought on or after
    `bought_since`, when given), by account, symbol and id."""
    ids = sorted(set(account_ids))
    wanted = None if symbols is None else sorted(set(symbols))
    out: list[Lot] = []
    for k in range(0, len(ids), CHUNK):
        q = select(*_LOT).where(bulk.id_in(s, LotRow.account_id, ids[k:k + CHUNK]), LotRow.closed.is_(False))
        if wanted is not None:
            q = q.where(LotRow.symbol.in_(wanted))
        if bought_since is not None:
            q = q.where(LotRow.bought >= bought_since)
        out.extend(_lot(r) for r in bulk.fetch(s, q.order_by(LotRow.account_id, LotRow.symbol, LotRow.id)))
    return out


def load_realized(s: Session, account_ids: Iterable[int], *, year: int | None = None,
                  since: date | None = None, symbols: Iterable[str] | None = None) -> list[Realized]:
    """Realized rows of these accounts (sold in `year`, or on or after `since`, and only of
    `symbols`, when given), by sale date and id."""
    ids = sorted(set(account_ids))
    out: list[Realized] = []
    for k in range(0, len(ids), CHUNK):
        q = select(*_REALIZED).where(bulk.id_in(s, RealizedRow.account_id, ids[k:k + CHUNK]))
        if year is not None:
            q = q.where(RealizedRow.sold.between(date(year, 1, 1), date(year, 12, 31)))
        if since is not None:
            q = q.where(RealizedRow.sold >= since)
        if symbols is not None:
            q = q.where(RealizedRow.symbol.in_(sorted(set(symbols))))
        out.extend(_realized(r) for r in bulk.fetch(s, q))
    return sorted(out, key=lambda r: (r.sold, r.id))


def _lots_by_pairs(s: Session, pairs: Iterable[tuple[int, str]], bought_since: date | None = None) -> dict[int, Lot]:
    """id -> open lot of these (account, symbol) pairs (only bought on or after
    `bought_since`, when given)."""
    pairs = sorted(set(pairs))
    if not pairs:
        return {}
    if bulk.on_postgres(s):
        sql = _BY_PAIRS if bought_since is None else text(_BY_PAIRS.text + " AND l.bought >= :since")
        found = {}
        for k in range(0, len(pairs), CHUNK):
            part = pairs[k:k + CHUNK]
            params = {"a": sorted({a for a, _ in part}), "k": [f"{a}:{sym}" for a, sym in part]}
            if bought_since is not None:
                params["since"] = bought_since
            for r in bulk.fetch(s, sql.bindparams(**params)):     # straight from the driver
                found[r[0]] = _lot(r, int)
        return found
    wanted = set(pairs)        # by the accounts' ids and the symbols, the pairs kept here
    return {x.id: x for x in load_lots(s, {aid for aid, _ in pairs}, {sym for _, sym in pairs},
                                       bought_since=bought_since)
            if (x.account_id, x.symbol) in wanted}


def lots_for_sales(s: Session, sales: Iterable[tuple[int, str]], owners: Mapping[int, str],
                   day: date) -> list[Lot]:
    """The open lots a window's sales on `day` need: every lot of each selling (account,
    symbol), and the lots that the other accounts of a selling owner (`owners`: the accounts
    of owners with several -> owner; an account absent is alone) bought in the 30 days
    before in the symbols that owner sold (replacements). A buyer's older lots are not
    read: a buy opens a lot and needs none; nor are the lots of owners who sell nothing."""
    sales = set(sales)
    if not sales:
        return []
    members: dict[str, list[int]] = {}
    for aid, who in owners.items():
        members.setdefault(who, []).append(aid)
    others = {(other, sym) for aid, sym in sales if aid in owners for other in members[owners[aid]]} - sales
    found = _lots_by_pairs(s, sales)
    for i, x in _lots_by_pairs(s, others, day - timedelta(days=WASH_DAYS)).items():
        found.setdefault(i, x)
    return [found[i] for i in sorted(found)]


def washable(s: Session, account_ids: Iterable[int], day: date, symbols: Iterable[str]) -> list[Realized]:
    """The rows a buy on `day` may still wash: sold in the 30 days before it."""
    return load_realized(s, account_ids, since=day - timedelta(days=WASH_DAYS), symbols=symbols)


def owners_of(s: Session, account_ids: Iterable[int]) -> dict[int, str]:
    """account id -> owner."""
    ids = sorted(set(account_ids))
    out: dict[int, str] = {}
    for k in range(0, len(ids), CHUNK):
        out.update({aid: who for aid, who in s.execute(select(Account.id, owner_expr())
                                                        .where(bulk.id_in(s, Account.id, ids[k:k + CHUNK])))})
    return out


def shared_owners(s: Session) -> dict[int, str]:
    """Every account of an owner with several accounts -> that owner: the accounts whose
    owner is set, and those their owner names (an account with none set owns itself).
    Every other account is alone. Empty, at the cost of one index lookup, while nobody
    has set an owner."""
    named = sorted(set(s.scalars(select(Account.owner).where(Account.owner.is_not(None)).distinct())))
    return accounts_of_owners(s, named) if named else {}


def accounts_of_owners(s: Session, owners: Sequence[str]) -> dict[int, str]:
    """Every account of these owners (house accounts never own anything) -> its owner."""
    out: dict[int, str] = {}
    wanted = sorted(set(owners))
    for k in range(0, len(wanted), CHUNK):
        part = wanted[k:k + CHUNK]
        # Two index lookups (owner, then name) rather than one OR the planner scans for.
        out.update({aid: who for aid, who in s.execute(select(Account.id, Account.owner).where(
            Account.is_house.is_(False), bulk.text_in(s, Account.owner, part)))})
        out.update({aid: name for aid, name in s.execute(select(Account.id, Account.name).where(
            Account.is_house.is_(False), bulk.text_in(s, Account.name, part), Account.owner.is_(None)))})
    return out


def save_booking(s: Session, booking: Booking, window_id: int | None) -> None:
    """A window's books: new lots (in the core's order, so ids follow it), lots changed
    (closed at zero shares), new realized rows, earlier rows a replacement adjusted."""
    bulk.insert_rows(s, LotRow.__table__,
                     ("account_id", "symbol", "bought", "acquired", "shares", "basis", "wash_adjustment",
                      "replaced", "window_id", "closed"),
                     ((x.account_id, x.symbol, x.bought, x.acquired, x.shares, dollars(x.basis),
                       dollars(x.wash_adjustment), x.replaced, window_id, x.shares == 0) for x in booking.new_lots))
    bulk.update_rows(s, LotRow.__table__, ("id",),
                     ("acquired", "shares", "basis", "wash_adjustment", "replaced", "closed"),
                     ((x.id, x.acquired, x.shares, dollars(x.basis), dollars(x.wash_adjustment), x.replaced,
                       x.shares == 0) for x in booking.changed_lots))
    bulk.insert_rows(s, RealizedRow.__table__,
                     ("account_id", "lot_id", "symbol", "acquired", "sold", "shares", "proceeds", "basis",
                      "wash_sale_disallowed", "washed", "window_id"),
                     ((r.account_id, r.lot_id, r.symbol, r.acquired, r.sold, r.shares, dollars(r.proceeds),
                       dollars(r.basis), dollars(r.wash_sale_disallowed), r.washed, window_id)
                      for r in booking.new_realized))
    bulk.update_rows(s, RealizedRow.__table__, ("id",), ("wash_sale_disallowed", "washed"),
                     ((r.id, dollars(r.wash_sale_disallowed), r.washed) for r in booking.changed_realized))


class BooksRepository:
    """The books as readers see them (the service layer's queries)."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def lots(self, account_ids: Iterable[int]) -> list[Lot]:
        """Open lots of these accounts, by account, symbol and id."""
        with self.ledger.read() as s:
            return load_lots(s, account_ids)

    def realized(self, account_ids: Iterable[int], year: int | None = None) -> list[Realized]:
        """Realized rows of these accounts (sold in `year` when given), by sale date and id."""
        with self.ledger.read() as s:
            return load_realized(s, account_ids, year=year)

    def owner_accounts(self, owner: str) -> list[int]:
        """The ids of the accounts `owner` owns (an account with no owner set owns itself)."""
        with self.ledger.read() as s:
            return sorted(accounts_of_owners(s, [owner]))

    def owner_of(self, account_id: int) -> str:
        with self.ledger.read() as s:
            return owners_of(s, [account_id])[account_id]
