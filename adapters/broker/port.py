"""The broker port: what a trading window needs from a broker, in the domain's own types.

Every adapter (simulated, Alpaca) implements `Broker`; the window runner cannot tell them
apart. Money and quantities are exact `Decimal`s; no SDK object crosses this line. Errors
are grouped by what the caller must do (the freqtrade habit): `RetryLater`, `OrderRejected`
(skip this order and report it), `StopTrading` (alert a person).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Protocol, Sequence, runtime_checkable

from engine.core import errors
from engine.core.corporate_actions import ActionKind, CorporateAction  # noqa: F401
# The values that cross the port live in the core (the ledger stores them too, and must not
# import a broker adapter to do so); their old names here stay.
from engine.core.orders import (CENT, MAX_CLIENT_ORDER_ID, QTY, TERMINAL, CashActivity, OrderRequest,  # noqa: F401
                                OrderState, client_order_id)

MIN_NOTIONAL = Decimal("1")           # Alpaca's smallest fractional/notional order


# --- errors, by what the caller must do ---------------------------------------------------

class BrokerError(errors.BrokerUnavailable):
    """Base of every broker failure. The message is safe to log (no secrets)."""


class RetryLater(BrokerError):
    """Transient: rate limit, timeout, 5xx. Nothing is known to have happened; try again."""


class OrderRejected(BrokerError):
    """This order cannot be placed (rejected, not fractionable, insufficient buying power).
    Skip it, report it, go on with the others."""

    def __init__(self, message: str, *, client_order_id: str | None = None, symbol: str | None = None):
        super().__init__(message)
        self.client_order_id = client_order_id
        self.symbol = symbol


class StopTrading(BrokerError, errors.StopTrading):
    """A person must act: bad credentials, live trading not allowed, account blocked."""


class OrderNotFound(BrokerError):
    """No order has this client order id."""


# --- values -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Clock:
    now: datetime                       # timezone-aware
    is_open: bool
    next_open: datetime
    next_close: datetime


@dataclass(frozen=True, slots=True)
class MarketDay:
    day: date
    open: datetime                      # timezone-aware, America/New_York
    close: datetime                     # early closes included


@dataclass(frozen=True, slots=True)
class Asset:
    symbol: str
    tradable: bool
    fractionable: bool
    note: str = ""                      # why it is not tradable ("inactive at Alpaca", ...)


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: Decimal
    market_value: Decimal


@dataclass(frozen=True, slots=True)
class Balance:
    cash: Decimal
    buying_power: Decimal
    equity: Decimal


# --- the port -----------------------------------------------------------------------------

@runtime_checkable
class Broker(Protocol):
    name: str
    # Does the broker apply corporate actions to its own positions and cash? Alpaca's paper
    # accounts do not (Alpaca-API #181): the ledger then keeps a standing adjustment
    # (engine/core/broker_view.py; docs/corporate-actions.md).
    applies_corporate_actions: bool

    def clock(self) -> Clock: ...

    def market_day(self, day: date) -> MarketDay | None:
        """The session on `day`, or None when the market is closed all day."""

    def assets(self, symbols: Sequence[str]) -> dict[str, Asset]:
        """Tradable and fractionable as of today (refreshed each trading day); a symbol the
        broker does not list is not tradable, with a note saying so."""

    def request_seconds(self, requests: int) -> float:
        """About how long `requests` more requests take under the broker's rate limit
        (0 when there is none or they fit now): what the window says before a long phase."""

    def latest_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]: ...

    def submit(self, order: OrderRequest) -> OrderState:
        """Place an order. Submitting a client order id that already exists returns that
        order and never creates a second one."""

    def order(self, client_order_id: str) -> OrderState:
        """Raises OrderNotFound when there is none."""

    def cancel(self, client_order_id: str) -> OrderState:
        """Cancel what is not filled yet (a partial fill keeps its filled part); the latest state."""

    def wait(self, client_order_ids: Sequence[str], timeout: float) -> dict[str, OrderState]:
        """Poll until every order is terminal or `timeout` seconds pass; latest states."""

    def orders_since(self, since: datetime) -> list[OrderState]:
        """Every order submitted since `since` (for reconciliation after a restart)."""

    def positions(self) -> dict[str, Position]: ...

    def balance(self) -> Balance: ...

    def cash_activities(self, since: datetime) -> list[CashActivity]: ...

    def corporate_actions(self, symbols: Sequence[str], start: date, end: date) -> list[CorporateAction]:
        """The actions on `symbols` that take effect from `start` to `end` (both included),
        in effective-date then id order. One pies does not apply comes back as
        RIGHTS_DISTRIBUTION (the window stops if it holds the symbol); one the adapter cannot
        even express raises StopTrading naming it (docs/brokers.md)."""


# --- shared rules of both adapters --------------------------------------------------------

def check_minimum(order: OrderRequest) -> None:
    """Notional orders below the broker's $1 minimum are never sent (the engine defers them)."""
    if order.notional is not None and order.notional < MIN_NOTIONAL:
        raise OrderRejected(f"{order.symbol}: ${order.notional} is below the ${MIN_NOTIONAL} minimum order",
                            client_order_id=order.client_order_id, symbol=order.symbol)


def whole_shares(order: OrderRequest, price: Decimal) -> tuple[OrderRequest, str]:
    """A not-fractionable symbol trades in whole shares; the remainder stays cash.

    Returns the whole-share order and a note saying what happened; raises OrderRejected
    when not even one share fits.
    """
    if order.qty is not None:
        shares = order.qty.to_integral_value(rounding=ROUND_DOWN)
        left = f"{order.qty - shares} shares"
    else:
        assert order.notional is not None
        shares = (order.notional / price).to_integral_value(rounding=ROUND_DOWN)
        left = f"${(order.notional - shares * price).quantize(CENT)}"
    if shares < 1:
        raise OrderRejected(f"{order.symbol} is not fractionable and the order is less than one share",
                            client_order_id=order.client_order_id, symbol=order.symbol)
    note = f"{order.symbol} is not fractionable: {shares} whole shares, {left} left as cash"
    return OrderRequest(order.client_order_id, order.symbol, order.side, qty=shares), note


def follow_replacements(chain: Sequence[OrderState]) -> OrderState:
    """One order as pies knows it (its client order id) from the chain of orders the broker
    replaced it with, oldest first: the last one's status and broker id (a cancel reaches
    the live order), the fills of all of them. A part filled before a replacement is
    summed exactly; the average price over the parts is rounded to 9 decimals."""
    first, last = chain[0], chain[-1]
    if len(chain) == 1:
        return first
    note = "; ".join(x for x in (first.note, f"replaced by broker order {last.broker_id}") if x)
    if not any(s.filled_qty for s in chain[:-1]):
        return OrderState(first.client_order_id, last.broker_id, first.symbol, first.side, last.status,
                          last.notional, last.qty, last.filled_qty, last.filled_avg_price, note)
    qty = sum((s.filled_qty for s in chain), Decimal(0))
    value = sum((s.filled_qty * s.filled_avg_price for s in chain if s.filled_avg_price), Decimal(0))
    paid = sum((s.filled_notional for s in chain), Decimal(0))
    avg = (value / qty).quantize(QTY) if qty else None
    # A filled notional order moves its notional (OrderState.filled_notional): the sum of the parts'.
    notional = paid if last.status == "filled" and last.notional is not None else first.notional
    return OrderState(first.client_order_id, last.broker_id, first.symbol, first.side, last.status,
                      notional, first.qty, qty, avg, note)
