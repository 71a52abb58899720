"""Orders as the window and the broker port both speak of them: a request, the broker's
report on it, a cash movement the broker made, and the stable client order id. Plain frozen
values with their own checks; no I/O (adapters/broker/port.py re-exports them).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

CENT = Decimal("0.01")
QTY = Decimal("0.000000001")          # shares: 9 decimals
# Alpaca's closed statuses. done_for_day: a day order gets no more fills today (it expires
# at the close); replaced: closed in favour of another order, which the adapters follow
# (port.follow_replacements), so it is seen here only when there is nothing to follow.
TERMINAL = frozenset({"filled", "canceled", "expired", "rejected", "done_for_day", "replaced"})
MAX_CLIENT_ORDER_ID = 128             # Alpaca's limit


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A market day order for a notional amount or a share quantity (exactly one)."""

    client_order_id: str
    symbol: str
    side: str                           # "buy" | "sell"
    notional: Decimal | None = None     # dollars, whole cents
    qty: Decimal | None = None          # shares, up to 9 decimals

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be buy or sell, not {self.side!r}")
        if (self.notional is None) == (self.qty is None):
            raise ValueError("an order has a notional or a quantity, not both and not neither")
        if self.notional is not None and (self.notional <= 0 or self.notional != self.notional.quantize(CENT)):
            raise ValueError(f"notional {self.notional} must be positive whole cents")
        if self.qty is not None and (self.qty <= 0 or self.qty != self.qty.quantize(QTY)):
            raise ValueError(f"qty {self.qty} must be positive with at most 9 decimals")
        if not self.client_order_id or len(self.client_order_id) > MAX_CLIENT_ORDER_ID:
            raise ValueError(f"client order id must be 1-{MAX_CLIENT_ORDER_ID} characters")


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the broker says about an order (a report: broker truth, past tense)."""

    client_order_id: str
    broker_id: str
    symbol: str
    side: str
    status: str                         # new, accepted, partially_filled, filled, canceled, ...
    notional: Decimal | None
    qty: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    note: str = ""                      # e.g. "not fractionable: 3 whole shares, $12.34 left as cash"

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def filled_notional(self) -> Decimal:
        """Dollars that changed hands, to the cent (what the account pays or receives)."""
        if not self.filled_qty or self.filled_avg_price is None:
            return Decimal("0.00")
        if self.status == "filled" and self.notional is not None:
            return self.notional.quantize(CENT)      # a filled notional order moves its notional
        return (self.filled_qty * self.filled_avg_price).quantize(CENT)


@dataclass(frozen=True, slots=True)
class CashActivity:
    """A cash movement the broker made on its own, e.g. a dividend."""

    id: str
    kind: str                           # "dividend" | ...
    day: date
    symbol: str | None
    amount: Decimal                     # positive: cash came in


_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


def client_order_id(window: str, symbol: str, side: str) -> str:
    """Stable across restarts: the same window, symbol and side give the same id.

    Readable when short ("w42-AAPL-buy"); hashed to stay within the broker's limit when not.
    """
    raw = f"{_UNSAFE.sub('_', window)}-{_UNSAFE.sub('_', symbol)}-{side}"
    if len(raw) <= MAX_CLIENT_ORDER_ID:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:32]
    return f"{raw[:MAX_CLIENT_ORDER_ID - 33]}~{digest}"
