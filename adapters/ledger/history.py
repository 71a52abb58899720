"""An account's window history read back for its performance (engine/core/performance.py):
every closed window of its broker account with that window's prices, the account's
allocations in it and its window row. Rows in, rows out; in one read transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from engine.core.money import cents
from engine.core.performance import AccountLine, WindowRow

from .schema import Account, Allocation, Window, WindowAccount
from .store import Ledger


def account_windows(ledger: Ledger, name: str, end: date | None = None) -> tuple[Account, list[WindowRow]]:
    """The account (NotFound naming it when there is none) and the closed windows of its
    broker account up to `end`, from the first one the account took part in, in (day, id)
    order."""
    with ledger.read() as s:
        acct = ledger._account(s, name)
        moves: dict[int, list[tuple[str, str, Decimal]]] = defaultdict(list)
        for wid, path, symbol, shares in s.execute(
                select(Allocation.window_id, Allocation.path, Allocation.symbol, Allocation.shares)
                .where(Allocation.account_id == acct.id).order_by(Allocation.id)):
            moves[wid].append((path, symbol, shares))
        lines = {wid: AccountLine(status == "planned", cents(dep), cents(div), cents(paid or 0),
                                  cents(after))
                 for wid, status, dep, div, paid, after in s.execute(
                     select(WindowAccount.window_id, WindowAccount.status, WindowAccount.deposits,
                            WindowAccount.dividends, WindowAccount.withdrawn, WindowAccount.cash_after)
                     .where(WindowAccount.account_id == acct.id, WindowAccount.cash_after.is_not(None)))}
        mine = set(moves) | set(lines)
        if not mine:
            return acct, []
        q = select(Window.id, Window.trading_date, Window.prices).where(
            Window.broker == acct.broker, Window.step == "closed", Window.id >= min(mine)
        ).order_by(Window.trading_date, Window.id)
        if end is not None:
            q = q.where(Window.trading_date <= end)
        rows = [WindowRow(wid, day, {k: Decimal(v) for k, v in (prices or {}).items()},
                          tuple(moves.get(wid, ())), lines.get(wid)) for wid, day, prices in s.execute(q)]
        s.expunge(acct)
        return acct, rows


def account_names(ledger: Ledger, ids: list[int]) -> dict[int, str]:
    """account id -> name."""
    with ledger.read() as s:
        return {i: n for i, n in s.execute(select(Account.id, Account.name).where(Account.id.in_(sorted(set(ids)))))}
