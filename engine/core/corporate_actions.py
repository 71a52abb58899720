"""Corporate actions as the core sees them: one frozen value per action, whatever the
source (Alpaca's corporate-actions API, the simulated broker's actions file). The pure
decisions that apply an action to holdings, cash and lots live beside it
(docs/corporate-actions.md).

Rates are exact `Decimal`s as the source wrote them (never through float): an account's
new shares are `shares * new_rate / old_rate`, merger or lieu cash is `shares * cash_rate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum


class ActionKind(StrEnum):
    """Alpaca's kinds (the keys of `GET /v1/corporate-actions`, singular)."""

    FORWARD_SPLIT = "forward_split"
    REVERSE_SPLIT = "reverse_split"
    UNIT_SPLIT = "unit_split"
    STOCK_DIVIDEND = "stock_dividend"
    CASH_DIVIDEND = "cash_dividend"            # recorded as dividend events, not applied here
    SPIN_OFF = "spin_off"
    CASH_MERGER = "cash_merger"
    STOCK_MERGER = "stock_merger"
    STOCK_AND_CASH_MERGER = "stock_and_cash_merger"
    REDEMPTION = "redemption"
    NAME_CHANGE = "name_change"
    WORTHLESS_REMOVAL = "worthless_removal"
    RIGHTS_DISTRIBUTION = "rights_distribution"  # not handled: stops a window that holds the symbol


@dataclass(frozen=True, slots=True)
class CorporateAction:
    """One action on `symbol`. `new_symbol` is the symbol shares arrive in (a rename's new
    name, a merger's acquirer, a spin-off's new company, a unit split's new unit); None when
    shares stay in `symbol`. `source_keeps` says whether `symbol` survives (a spin-off, a
    unit split's old unit) or is gone (a rename, a merger, a removal)."""

    id: str                              # the source's id: an action is applied once per id
    kind: ActionKind
    symbol: str
    effective: date                      # the day it takes effect, before that day's first window
    new_symbol: str | None = None
    old_rate: Decimal = Decimal(1)       # for every old_rate shares held ...
    new_rate: Decimal = Decimal(0)       # ... new_rate shares arrive (of new_symbol or symbol)
    cash_rate: Decimal = Decimal(0)      # dollars per share held (merger cash, redemption)
    source_keeps: bool = False
    # Dollars per share of `symbol` after the action paid for the fraction of a share the
    # broker does not issue (a split, reverse split or stock dividend); 0: no cash in lieu,
    # fractions stay (Alpaca's fractional positions). See corporate_moves.lieu_fraction.
    lieu_price: Decimal = Decimal(0)
