"""Windows read back: the list of windows, one window with its report (the stored summary
with each account's lines, read back from the window tables: all of them, or a page), its
step timings, each broker account's last good window and last prices, an account's
trades. The window repository (window_repo.py) writes windows as they run and reads a
report through here too, so neither imports the other; the store does not read windows.

The list, the timings, the prices and the trades use the Core tables alone (a command such
as `pies windows` never imports the ORM); a report's accounts are read inside an ORM
session, as the window repository reads them.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Sequence

from sqlalchemy import select

from engine.core.errors import NotFound
from engine.core.money import cents

from .tables import allocations, aware, windows as W

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    from .schema import Window
    from .store import Ledger


def windows(ledger: Ledger, limit: int = 30) -> list[dict]:
    """Windows newest first, with their report's counts."""
    with ledger.conn(read_only=True) as c:
        out = []
        for w in c.execute(select(W).order_by(W.c.trading_date.desc(), W.c.id.desc()).limit(limit)):
            r = w.report or {}
            out.append({"id": w.id, "broker": w.broker, "day": w.trading_date.isoformat(), "name": w.name,
                        "step": w.step, "opened_at": w.opened_at.isoformat(),
                        "closed_at": w.closed_at.isoformat() if w.closed_at else None,
                        "accounts": r.get("account_count", len(r.get("accounts", []))),
                        "orders": len(r.get("orders", [])),
                        "problems": len(r.get("problems", []))})
        return out


def window(ledger: Ledger, window_id: int, page: int | None = None, size: int = 100) -> dict:
    """A window with its report: every account's lines, or one page of `size` accounts."""
    from .schema import Window
    with ledger.tx() as s:
        w = s.get(Window, window_id)
        if w is None:
            raise NotFound(f"no window {window_id}")
        return _window_json(s, w, page, size)


def window_of(ledger: Ledger, broker: str, day, name: str) -> dict | None:
    """A broker account's window by its day and name, with its report (None: no such window)."""
    from .schema import Window
    with ledger.tx() as s:
        w = s.scalars(select(Window).where(Window.broker == broker, Window.trading_date == day,
                                           Window.name == name)).first()
        return None if w is None else _window_json(s, w)


def _window_json(s: Session, w: Window, page: int | None = None, size: int = 100) -> dict:
    return {"id": w.id, "broker": w.broker, "day": w.trading_date.isoformat(), "name": w.name, "step": w.step,
            "closed_at": w.closed_at.isoformat() if w.closed_at else None, "report": full_report(s, w, page, size)}


def step_timings(ledger: Ledger, window_id: int) -> dict[str, float]:
    """Seconds each step of a window took, read from its stored summary alone (never its
    accounts' lines: /metrics reads this at every scrape)."""
    with ledger.conn(read_only=True) as c:
        report = c.execute(select(W.c.report).where(W.c.id == window_id)).scalar()
        return dict((report or {}).get("timings", {}))


def last_good_windows(ledger: Ledger) -> dict:
    """Broker account -> when its last window closed without problems."""
    out: dict = {}
    with ledger.conn(read_only=True) as c:
        for broker, closed_at, report in c.execute(
                select(W.c.broker, W.c.closed_at, W.c.report).where(W.c.closed_at.is_not(None))
                .order_by(W.c.closed_at.desc()).limit(1000)):
            if broker not in out and not (report or {}).get("problems"):
                out[broker] = aware(closed_at)
    return out


def last_prices(ledger: Ledger, broker: str) -> dict[str, Decimal]:
    """The prices the broker account's latest priced window planned with."""
    with ledger.conn(read_only=True) as c:
        got = c.execute(select(W.c.prices).where(W.c.broker == broker, W.c.prices.is_not(None))
                        .order_by(W.c.trading_date.desc(), W.c.id.desc()).limit(1)).scalar()
        return {k: Decimal(v) for k, v in (got or {}).items()}


def open_window(c: Connection | Session, broker: str) -> int | None:
    """The id of a window of the broker account that has not closed (None: none is open)."""
    return c.execute(select(W.c.id).where(W.c.broker == broker, W.c.step != "closed").limit(1)).scalar()


def trades(ledger: Ledger, name: str) -> list[tuple]:
    """(trading date, window name, slice, symbol, shares, dollars) of an account, oldest first."""
    al = allocations
    with ledger.conn(read_only=True) as c:
        acct = ledger._account_row(c, name)
        q = (select(W.c.trading_date, W.c.name, al.c.path, al.c.symbol, al.c.shares, al.c.amount)
             .join(W, al.c.window_id == W.c.id).where(al.c.account_id == acct.id).order_by(al.c.id))
        return [tuple(r) for r in c.execute(q)]


def report_accounts(s: Session, wid: int, page: int | None = None, size: int = 100) -> list[dict]:
    """A window's report lines per account, in account order, read from the ledger's window
    tables: all of them, or page `page` (from 1) of `size` accounts."""
    from engine.core.window.report import AccountLine, EventLine, TradeLine, account_reports

    from . import bulk
    from .schema import Account, Allocation, Event, Intent as IntentRow, WindowAccount
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
    from . import bulk
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
