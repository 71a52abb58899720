"""Reconciliation's loop: read the broker, hand the ledger's side and the broker's to the
core (engine/core/reconcile.py), return its verdict. The window (before planning and
after closing) and `pies reconcile` (through the service) call this one function, so
they cannot explain a break differently (docs/reconciliation.md).

The broker is asked for its positions and cash; only when a line breaks is it asked
further (its recent orders, cash activities and the corporate actions on the symbols that
break), so an agreeing window costs two calls.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Callable, Sequence

from adapters.broker.port import Broker
from engine.core.money import cents
from engine.core.orders import CashActivity
from engine.core.reconcile import CASH, Accepted, LedgerSide, Reconciliation, Tolerance, reconcile

Call = Callable[[str, Callable[[], Any]], Any]


def _plain(what: str, fn: Callable[[], Any]) -> Any:
    return fn()


def compare(broker: Broker, side: LedgerSide, *, since: datetime, start: date, end: date,
            order_windows: Callable[[list[str]], dict[str, str]],
            uncollected: Callable[[list[CashActivity]], list[CashActivity]],
            accepted: Sequence[Accepted] = (), tolerance: Tolerance = Tolerance(),
            call: Call = _plain) -> Reconciliation:
    """The ledger's `side` against the broker now. `since`: where the broker's orders and
    cash activities are read from; `start`..`end`: the days whose corporate actions count;
    `order_windows`: client order id -> its window's step, for the ids that are pies's;
    `uncollected`: the dividend activities the ledger has not recorded; `call` wraps each
    broker call (the window's retries)."""
    positions = {s: p.qty for s, p in call("positions", broker.positions).items()}
    cash = cents(call("balance", broker.balance).cash)
    first = reconcile(side, positions, cash, accepted=accepted, tolerance=tolerance)
    if not first.breaks:
        return first
    filled = [o for o in call("orders", lambda: broker.orders_since(since)) if o.filled_qty]
    steps = order_windows([o.client_order_id for o in filled])
    outside = [o for o in filled if o.client_order_id not in steps]
    unallocated = [o for o in filled if steps.get(o.client_order_id, "closed") != "closed"]
    dividends = uncollected([a for a in call("dividends", lambda: broker.cash_activities(since))
                             if a.kind == "dividend"])
    symbols = sorted(x.symbol for x in first.breaks if x.symbol != CASH)
    actions = call("corporate actions", lambda: broker.corporate_actions(symbols, start, end)) if symbols else []
    return reconcile(side, positions, cash, outside=outside, unallocated=unallocated, dividends=dividends,
                     actions=actions, accepted=accepted, tolerance=tolerance)


def summary(rec: Reconciliation) -> dict[str, Any]:
    """What a window's report keeps: whether the sides agree, whether trading waits, and
    only the lines that break (a broker account may hold thousands of symbols)."""
    return {"agrees": not rec.breaks, "waits": bool(rec.waits), "breaks": [x.to_json() for x in rec.breaks]}
