"""The window core's types: frozen values, integer cents, 9-decimal shares, enums for
what happened and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from rules.model import Pie, RuleSet

ZERO = Decimal(0)


class Kind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    DIVIDEND = "dividend"
    REBALANCE = "rebalance"
    TARGET_CHANGE = "target_change"
    LIQUIDATION = "liquidation"
    CLOSE = "close"                      # sell everything, withdraw all cash, then the account is closed
    CORPORATE_ACTION = "corporate_action"  # applied before planning; its cash (if any) invested in the parent pie


class Outcome(StrEnum):
    """What became of an event at the end of a window."""

    DONE = "done"
    PAID_IN_PART = "paid_in_part"       # a withdrawal: the sells came in short
    RETRY = "retry"                     # pending again for the next window (a liquidation not finished)
    REJECTED = "rejected"

    @property
    def status(self) -> str:
        """The ledger's event status for this outcome."""
        return {"done": "done", "paid_in_part": "done", "retry": "pending", "rejected": "rejected"}[self.value]


class Cause(StrEnum):
    """Why an event or an account did not simply go through."""

    PLAN_REFUSED = "plan_refused"             # the planner refused this event (its message says why)
    ACCOUNT_REFUSED = "account_refused"       # the planner refused the whole account
    SELLS_SHORT = "sells_short"               # sells raised less than the withdrawal asked
    LIQUIDATION_UNFINISHED = "liquidation_unfinished"
    CREDITED_AS_CASH = "credited_as_cash"     # a dividend of a refused account
    CLOSING = "closing"                       # the account is closing: the event has nothing to do
    HOUSE_TOO_POOR = "house_too_poor"         # a recurring deposit the house cannot fund


class Phase(StrEnum):
    SELL = "sell"
    BUY = "buy"


@dataclass(frozen=True, slots=True)
class WindowEvent:
    id: int
    account_id: int
    kind: Kind
    cents: int | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Holding:
    path: str
    symbol: str
    shares: Decimal


@dataclass(frozen=True, slots=True)
class AccountState:
    """One account as the window plans it."""

    id: int
    name: str
    cash: int
    pie: Pie
    rules: RuleSet
    holdings: tuple[Holding, ...]
    events: tuple[WindowEvent, ...] = ()
    last_rebalanced: date | None = None
    # `avoid wash-sales`: symbol -> the day its owner last sold it at a loss (within 30 days);
    # deposits, dividends and rebalances do not buy these this window.
    blocked: tuple[tuple[str, date], ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()   # renamed symbols: (the policy's, the current)


@dataclass(frozen=True, slots=True)
class EventOutcome:
    event_id: int
    outcome: Outcome
    cause: Cause | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SliceTrade:
    """A slice trade an account's plan asks for (signed cents: + buy, - sell)."""

    path: str
    symbol: str
    cents: int
    sell_all: bool
    events: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class HeldBack:
    """A buy `avoid wash-sales` held back: the cents the plan would have bought of the
    symbol, which its owner sold at a loss on `sold`."""

    symbol: str
    cents: int
    sold: date

    def describe(self) -> str:
        return f"buy of ${self.cents // 100}.{self.cents % 100:02d} {self.symbol} held back: sold at a loss on " \
               f"{self.sold} (avoid wash-sales)"


@dataclass(frozen=True, slots=True)
class AccountPlan:
    account_id: int
    planned: bool                     # False: the whole account was refused (reason says why)
    reason: str | None
    cash_before: int
    deposits: int
    dividends: int
    withdrawals: int                  # asked, of the events that were planned
    rebalanced: bool                  # the whole portfolio (sets last_rebalanced)
    trades: tuple[SliceTrade, ...]
    decided: tuple[EventOutcome, ...]          # outcomes known at planning (events set aside)
    liquidating: tuple[tuple[int, str], ...]   # (liquidation event, path) this plan sells in full
    closing: bool = False                      # sells everything; settlement withdraws all cash
    held_back: tuple[HeldBack, ...] = ()       # buys `avoid wash-sales` kept from this plan

    @property
    def worth_recording(self) -> bool:
        return bool(self.trades or self.decided or not self.planned or self.deposits or self.dividends
                    or self.withdrawals or self.rebalanced or self.liquidating or self.closing or self.held_back)

    @property
    def note(self) -> str | None:
        """What the window keeps in the account's row: why it was refused, or which buys
        were held back and why (the report shows it as `held_back`)."""
        if not self.planned:
            return self.reason
        return "; ".join(h.describe() for h in self.held_back) or None


@dataclass(frozen=True, slots=True)
class Intent:
    """A slice trade as stored for the window: `amount` after deferral and scaling."""

    id: int
    account_id: int
    path: str
    symbol: str
    planned: int
    amount: int
    sell_all: bool

    @property
    def whole(self) -> bool:
        """The whole holding goes: a sell of everything, not cut by deferral."""
        return self.sell_all and self.amount == self.planned and self.amount < 0


@dataclass(frozen=True, slots=True)
class OrderPlan:
    symbol: str
    side: str                          # buy | sell
    phase: Phase
    notional: int | None               # cents
    qty: Decimal | None


@dataclass(frozen=True, slots=True)
class FillReport:
    """One part of an order's fill, as the broker reported it."""

    qty: Decimal
    cents: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class Move:
    """Shares and dollars one slice (or the house, path = symbol) got from one symbol's
    order or cross: shares + received, - delivered; cents + paid, - received."""

    account_id: int
    path: str
    symbol: str
    shares: Decimal
    cents: int


@dataclass(frozen=True, slots=True)
class CashLine:
    """An account's cash in a window, from its plan."""

    account_id: int
    planned: bool
    reason: str | None
    cash_before: int
    deposits: int
    dividends: int
    withdrawals: int
    rebalanced: bool = False
