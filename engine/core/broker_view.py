"""The broker's positions and cash as pies compares them, at a broker that does not apply
corporate actions itself (Alpaca's paper accounts, Alpaca-API #181; docs/corporate-actions.md).

There the ledger applies each action alone and records what the broker *should* have done
to its side: a standing adjustment per symbol (shares) and for cash (cents). Every later
comparison (reconciliation, the corporate-action check, the close's conservation) adds
the adjustment to what the broker reports, so that like is compared with like.

Why a fixed difference and not a ratio: at such a broker the market price does split, so
every later fill (notional or quantity) is in post-split shares already; only the shares
it held on the action's day were never converted. The adjustment is exactly those:
`broker_after(position) - position` on that day, where the position is the ledger's total
(accounts + house), equal to the broker's by conservation when the action is applied.

Pure: frozen values in, frozen values out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Mapping

from .corporate_actions import CorporateAction
from .corporate_moves import broker_after

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class BrokerAdjustment:
    """What the broker should hold beyond what it reports: shares per symbol (either sign)
    and cash in cents."""

    shares: Mapping[str, Decimal] = field(default_factory=dict)
    cents: int = 0

    def __bool__(self) -> bool:
        return bool(self.cents) or any(self.shares.values())

    def plus(self, other: "BrokerAdjustment") -> "BrokerAdjustment":
        out = dict(self.shares)
        for s, q in other.shares.items():
            out[s] = out.get(s, ZERO) + q
        return BrokerAdjustment({s: q for s, q in sorted(out.items()) if q}, self.cents + other.cents)

    def to_json(self) -> dict:
        return {"shares": {s: str(q) for s, q in sorted(self.shares.items()) if q}, "cents": self.cents}

    @classmethod
    def of_json(cls, doc: Mapping | None) -> "BrokerAdjustment":
        doc = doc or {}
        return cls({s: Decimal(q) for s, q in (doc.get("shares") or {}).items()}, int(doc.get("cents") or 0))


def total(adjustments: Iterable[BrokerAdjustment]) -> BrokerAdjustment:
    out = BrokerAdjustment()
    for a in adjustments:
        out = out.plus(a)
    return out


def not_applied(a: CorporateAction, held: Mapping[str, Decimal]) -> BrokerAdjustment:
    """The adjustment an action leaves at a broker that does not apply it: what the broker
    would hold after it (by the one rule, `broker_after`) minus what it holds, for the
    ledger's totals `held` (accounts + house per symbol) just before the action."""
    before = {s: q for s, q in held.items() if q}
    after, cash = broker_after(a, before, 0)
    moved = {s: after.get(s, ZERO) - before.get(s, ZERO) for s in sorted(set(before) | set(after))}
    return BrokerAdjustment({s: q for s, q in moved.items() if q}, cash)


def seen(positions: Mapping[str, Decimal], cash_cents: int,
         adjustment: BrokerAdjustment) -> tuple[dict[str, Decimal], int]:
    """The broker's positions and cash as pies compares them: what it reports plus the
    standing adjustment. A symbol whose sum is zero is left out, like a closed position."""
    out = dict(positions)
    for s, q in adjustment.shares.items():
        out[s] = out.get(s, ZERO) + q
    return {s: q for s, q in out.items() if q}, cash_cents + adjustment.cents
