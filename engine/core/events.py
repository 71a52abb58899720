"""What can happen to an account in a window. Amounts are integer cents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class Deposit:
    cents: int
    ref: str | None = None      # the ledger's event id, carried into the plan's explanation


@dataclass(frozen=True, slots=True)
class Dividend:
    cents: int
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Withdrawal:
    cents: int
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Rebalance:
    path: str = ""              # "" is the whole portfolio; else a nested pie, e.g. "Pie 1"
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class TargetChange:
    """The account now follows new targets. Liquidations follow from the holdings; the rules
    decide whether anything else trades (M1: nothing)."""

    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Proceeds:
    """Cash already in the account from a corporate action on the slice at `path` (a cash
    merger, a redemption): invested like a liquidation's proceeds, in the slice's parent
    pie (or the whole portfolio, by the `on removal` rule)."""

    cents: int
    path: str
    ref: str | None = None


Event = Union[Deposit, Dividend, Withdrawal, Rebalance, TargetChange, Proceeds]
CashEvent = (Deposit, Dividend, Withdrawal)
