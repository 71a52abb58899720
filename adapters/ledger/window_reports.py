"""A window's report as the ledger keeps it: the stored summary with each account's lines,
read back from the window tables (all of them, or a page). Read by the window repository
and by the ledger's window queries alike, so neither imports the other.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.window.report import AccountLine, EventLine, TradeLine, account_reports

from . import bulk
from .schema import Account, Allocation, Event, Intent as IntentRow, Window, WindowAccount


def cents(d: Decimal) -> int:
    return int(d.scaleb(2))


def dollars(c: int) -> Decimal:
    return Decimal(c).scaleb(-2)


def report_accounts(s: Session, wid: int, page: int | None = None, size: int = 100) -> list[dict]:
    """A window's report lines per account, in account order, read from the ledger's window
    tables: all of them, or page `page` (from 1) of `size` accounts."""
    q = select(WindowAccount.account_id, Account.name, WindowAccount.status, WindowAccount.reason,
               WindowAccount.cash_after, WindowAccount.withdrawn, WindowAccount.advance) \
        .join(Account, WindowAccount.account_id == Account.id) \
        .where(WindowAccount.window_id == wid).order_by(WindowAccount.account_id)
    if page is not None:
        q = q.offset((page - 1) * size).limit(size)
    lines = [AccountLine(aid, name, status == "planned", reason, None if cash is None else cents(cash),
                         None if withdrawn is None else cents(withdrawn), None if advance is None else cents(advance))
             for aid, name, status, reason, cash, withdrawn, advance in bulk.fetch(s, q)]
    ids = None if page is None else [x.account_id for x in lines]
    events: dict[int, list[EventLine]] = defaultdict(list)
    for i, aid, kind, amount, path, status, reason in bulk.fetch(s, select(
            Event.id, Event.account_id, Event.kind, Event.amount, Event.path, Event.status, Event.reason)
            .where(Event.window_id == wid, *_only(s, Event.account_id, ids)).order_by(Event.id)):
        events[aid].append(EventLine(i, kind, amount, path, status, reason))
    trades: dict[int, list[TradeLine]] = defaultdict(list)
    for aid, path, shares, amount in bulk.fetch(s, select(
            Allocation.account_id, Allocation.path, Allocation.shares, Allocation.amount)
            .where(Allocation.window_id == wid, *_only(s, Allocation.account_id, ids))
            .order_by(Allocation.path, Allocation.id)):
        trades[aid].append(TradeLine(path, shares, amount))
    deferred: dict[int, list] = defaultdict(list)
    for aid, path, planned, amount in bulk.fetch(s, select(
            IntentRow.account_id, IntentRow.path, IntentRow.planned, IntentRow.amount)
            .where(IntentRow.window_id == wid, IntentRow.planned != IntentRow.amount,
                   *_only(s, IntentRow.account_id, ids))
            .order_by(IntentRow.symbol, IntentRow.id)):
        deferred[aid].append((path, planned - amount))
    return [a.to_json() for a in account_reports(lines, events, trades, deferred)]


def _only(s: Session, column, ids: Sequence[int] | None) -> tuple:
    """No condition when `ids` is None, else `column` among `ids`."""
    return () if ids is None else (bulk.id_in(s, column, ids),)


def full_report(s: Session, w: Window, page: int | None = None, size: int = 100) -> dict | None:
    """A window's stored report with its accounts' lines (a closed window's, read from the
    tables; windows closed before migration 0007 kept them in the document): all of them,
    or one page of `size` accounts (`page` and `size` are then in the report)."""
    if w.report is None or w.closed_at is None:
        return w.report
    stored = w.report.get("accounts")
    if page is None:
        return w.report if stored is not None else {**w.report, "accounts": report_accounts(s, w.id)}
    if stored is not None:
        return {"account_count": len(stored), **w.report, "accounts": stored[(page - 1) * size:page * size],
                "page": page, "size": size}
    return {**w.report, "accounts": report_accounts(s, w.id, page, size), "page": page, "size": size}
