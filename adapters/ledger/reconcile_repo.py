"""Reconciliation's rows: the ledger's side of the comparison with the broker, which of the
broker's orders are pies's own, and operators' acceptances of breaks. Rows in, rows out:
what a break means is engine/core/reconcile.py's to decide.

The functions take an open session, so the window's step (window_repo.StepTx) and a
query outside any window (`Reconciliations`, for the service) read the same rows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.core.broker_view import BrokerAdjustment, total
from engine.core.money import cents
from engine.core.orders import CashActivity
from engine.core.reconcile import Accepted, LedgerSide

from .schema import Account, CorporateActionRow, Event, Holding, Order, ReconciliationAccept, Window
from .store import Ledger

ZERO = Decimal(0)
KEEP = 1000                     # acceptances read per broker account, newest first
CHUNK = 5_000


def of_broker(s: Session, q, broker: str):
    """`q` over the holdings kept to `broker`'s accounts: joined to the accounts only when the
    ledger has accounts of another broker account (a join per holding is a third of a pass
    over them at a million accounts)."""
    if s.scalar(select(Account.id).where(Account.broker != broker).limit(1)) is None:
        return q
    return q.join(Account, Holding.account_id == Account.id).where(Account.broker == broker)


def ledger_side(s: Session, broker: str) -> LedgerSide:
    """Shares per symbol of the accounts and of the house, their cash, and the dividends
    owed to accounts and not settled yet (recorded by hand, or collected by a window that
    has not closed)."""
    s.flush()
    accounts: dict[str, Decimal] = {}
    house: dict[str, Decimal] = {}
    if s.bind.dialect.name == "sqlite":       # shares are exact text there: sum here
        for is_house, symbol, shares in s.execute(
                select(Account.is_house, Holding.symbol, Holding.shares)
                .join(Account, Holding.account_id == Account.id).where(Account.broker == broker)):
            side = house if is_house else accounts
            side[symbol] = side.get(symbol, ZERO) + Decimal(shares)
    else:
        # NUMERIC sums exactly in the database. Every holding per symbol (of_broker), then the
        # house's (a few rows by its account id) taken off: one pass over the holdings.
        sums = of_broker(s, select(Holding.symbol, func.sum(Holding.shares)), broker)
        everyone = {sym: Decimal(t) for sym, t in s.execute(sums.group_by(Holding.symbol))}
        homes = select(Account.id).where(Account.broker == broker, Account.is_house.is_(True)).scalar_subquery()
        for sym, t in s.execute(select(Holding.symbol, func.sum(Holding.shares))
                                .where(Holding.account_id.in_(homes)).group_by(Holding.symbol)):
            house[sym] = Decimal(t)
        accounts = {sym: t - house.get(sym, ZERO) for sym, t in everyone.items()}
    cash = {bool(h): Decimal(c or 0) for h, c in s.execute(
        select(Account.is_house, func.sum(Account.cash)).where(Account.broker == broker).group_by(Account.is_house))} \
        if s.bind.dialect.name != "sqlite" else _cash_in_python(s, broker)
    owed = s.scalars(select(Event.amount).join(Account, Event.account_id == Account.id)
                     .where(Account.broker == broker, Account.is_house.is_(False), Event.kind == "dividend",
                            Event.status.in_(("pending", "planned"))))
    return LedgerSide({k: v for k, v in accounts.items() if v}, {k: v for k, v in house.items() if v},
                      cents(cash.get(False, ZERO)), cents(cash.get(True, ZERO)),
                      cents(sum((a for a in owed if a is not None), ZERO)), broker_adjustment(s, broker))


def broker_adjustment(s: Session, broker: str) -> BrokerAdjustment:
    """The standing adjustment of the actions this ledger applied that the broker does not
    apply itself (kept in each action's summary, `broker_adjustment`; broker_view.py)."""
    return total(BrokerAdjustment.of_json(doc.get("broker_adjustment")) for doc in s.scalars(
        select(CorporateActionRow.summary).where(CorporateActionRow.broker == broker)
        .order_by(CorporateActionRow.effective, CorporateActionRow.action_id)) if doc)


def _cash_in_python(s: Session, broker: str) -> dict[bool, Decimal]:
    out: dict[bool, Decimal] = {}
    for h, c in s.execute(select(Account.is_house, Account.cash).where(Account.broker == broker)):
        out[bool(h)] = out.get(bool(h), ZERO) + c
    return out


def uncollected(s: Session, activities: Iterable[CashActivity]) -> list[CashActivity]:
    """Broker dividends the ledger has not split yet (the house's event key records each
    one once), by day and id."""
    divs = sorted((a for a in activities if a.kind == "dividend"), key=lambda a: (a.day, a.id))
    keys = [f"div:{a.id}:house" for a in divs]
    known: set[str] = set()
    for k in range(0, len(keys), CHUNK):
        known.update(s.scalars(select(Event.key).where(Event.key.in_(keys[k:k + CHUNK]))))
    return [a for a, key in zip(divs, keys) if key not in known]


def order_windows(s: Session, client_order_ids: Iterable[str]) -> dict[str, str]:
    """client order id -> the step of the window that made it, for the ids that are pies's."""
    ids = sorted(set(client_order_ids))
    out: dict[str, str] = {}
    for k in range(0, len(ids), CHUNK):
        out.update({coid: step for coid, step in s.execute(
            select(Order.client_order_id, Window.step).join(Window, Order.window_id == Window.id)
            .where(Order.client_order_id.in_(ids[k:k + CHUNK])))})
    return out


def acceptances(s: Session, broker: str) -> list[Accepted]:
    return [Accepted(a.id, a.symbol, a.difference, a.reason) for a in s.scalars(
        select(ReconciliationAccept).where(ReconciliationAccept.broker == broker)
        .order_by(ReconciliationAccept.id.desc()).limit(KEEP))]


class Reconciliations:
    """The same reads outside a window, and the acceptances' writes (for the service)."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def side(self, broker: str) -> LedgerSide:
        with self.ledger.tx() as s:
            return ledger_side(s, broker)

    def order_windows(self, client_order_ids: Iterable[str]) -> dict[str, str]:
        with self.ledger.tx() as s:
            return order_windows(s, client_order_ids)

    def uncollected(self, activities: Iterable[CashActivity]) -> list[CashActivity]:
        with self.ledger.tx() as s:
            return uncollected(s, activities)

    def accepted(self, broker: str) -> list[Accepted]:
        with self.ledger.tx() as s:
            return acceptances(s, broker)

    def accept(self, broker: str, lines: Sequence[tuple[str, Decimal]], reason: str, by: str) -> list[int]:
        """Record the acceptance of each (line, difference), all in one transaction."""
        with self.ledger.tx() as s:
            rows = [ReconciliationAccept(broker=broker, symbol=sym, difference=d, reason=reason, accepted_by=by)
                    for sym, d in lines]
            s.add_all(rows)
            s.flush()
            return [r.id for r in rows]

    def log(self, broker: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.ledger.tx() as s:
            return [{"id": a.id, "symbol": a.symbol, "difference": str(a.difference), "reason": a.reason,
                     "by": a.accepted_by, "at": a.accepted_at.isoformat()}
                    for a in s.scalars(select(ReconciliationAccept).where(ReconciliationAccept.broker == broker)
                                       .order_by(ReconciliationAccept.id.desc()).limit(limit))]
