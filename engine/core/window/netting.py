"""The accounts' slice trades of each symbol netted into at most one broker order per
symbol (engine/core/fills.py does the arithmetic of one symbol)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping, Sequence

from engine.core import fills

from .model import ZERO, Intent, OrderPlan, Phase


@dataclass(frozen=True, slots=True)
class Netting:
    orders: tuple[OrderPlan, ...]            # in symbol order
    amounts: Mapping[int, int]               # intent id -> cents after deferral (changed ones only)


def wants(intents: Sequence[Intent], held: Mapping[tuple[int, str], Decimal],
          amounts: Mapping[int, int] | None = None) -> list[fills.Want]:
    """The per-symbol arithmetic's view of intents, with their current amounts, in account
    and slice order (not id order: ids depend on which shard wrote its rows first)."""
    out = []
    for r in sorted(intents, key=lambda r: (r.account_id, r.path)):
        amount = amounts.get(r.id, r.amount) if amounts else r.amount
        if not amount:
            continue
        whole = r.sell_all and amount == r.planned and amount < 0
        out.append(fills.Want(r.id, amount, whole, held.get((r.account_id, r.path), ZERO) if amount < 0 else ZERO))
    return out


def net_symbols(by_symbol: Mapping[str, Sequence[Intent]], held: Mapping[tuple[int, str], Decimal],
                prices: Mapping[str, Decimal], min_order: int, phase: Phase | None = None,
                amounts: Mapping[int, int] | None = None) -> Netting:
    """Net each symbol's intents. A net below `min_order` is not sent: the larger side
    shrinks by it (the change is in `amounts`) and the rest crosses. An order's phase is its
    side unless given (a buy-phase re-net after scaling keeps sells crossing in it)."""
    orders: list[OrderPlan] = []
    changed: dict[int, int] = {}
    for symbol in sorted(by_symbol):
        rows = by_symbol[symbol]
        n = fills.net(symbol, wants(rows, held, amounts), min_order, prices.get(symbol))
        current = {r.id: (amounts or {}).get(r.id, r.amount) for r in rows}
        for key, c in n.deferred:
            changed[key] = current[key] - c
        if n.side is not None:
            orders.append(OrderPlan(symbol, n.side, phase or Phase(n.side), n.notional, n.qty))
    return Netting(tuple(orders), changed)
