"""An order's fill reports (it may fill in several parts) and the internal crosses of its
symbol, split back across the slices that asked, with the house taking the residue."""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Mapping, Sequence

from engine.core import fills

from .model import ZERO, FillReport, Intent, Move, OrderPlan, Phase
from .netting import wants


def total_fill(reports: Sequence[FillReport], planning_price: Decimal) -> tuple[Decimal, int, Decimal]:
    """All parts of a fill together: shares, cents and the broker's average price weighted
    by shares (the planning price when nothing filled)."""
    qty = sum((f.qty for f in reports), ZERO)
    cents = sum(f.cents for f in reports)
    if not qty:
        return ZERO, cents, planning_price
    if len(reports) == 1:
        return qty, cents, reports[0].price
    return qty, cents, sum((f.qty * f.price for f in reports), ZERO) / qty


def allocate_symbol(symbol: str, intents: Sequence[Intent], order: OrderPlan | None, reports: Sequence[FillReport],
                    planning_price: Decimal, held: Mapping[tuple[int, str], Decimal], house_id: int) -> tuple[Move, ...]:
    """The moves of one symbol: one per slice that traded, and one for the house when it
    takes a share residue or pays for shares nobody asked for (path = the symbol)."""
    ws = wants(intents, held)
    if not ws:
        return ()
    n = fills.Net(symbol, order.side if order else None, order.notional if order else None,
                  order.qty if order else None, tuple(ws), (), planning_price)
    qty, cents, price = total_fill(reports, planning_price)
    sp = fills.split(n, filled_qty=qty, filled_cents=cents, price=price)
    by_id = {r.id: r for r in intents}
    moves = [Move(by_id[s.key].account_id, by_id[s.key].path, symbol, s.shares, s.cents) for s in sp.shares]
    if sp.house_shares or sp.house_cents:
        moves.append(Move(house_id, symbol, symbol, sp.house_shares, -sp.house_cents))
    return tuple(moves)


def new_fill(stored: Sequence[FillReport], filled_qty: Decimal, filled_cents: int,
             avg_price: Decimal | None) -> FillReport | None:
    """The part of a broker's cumulative fill (`filled_qty` shares for `filled_cents`, at
    `avg_price` on average) that `stored` does not hold yet, or None. The first part keeps
    the broker's average price; a later part's price is its own cents over its shares."""
    qty = sum((f.qty for f in stored), ZERO)
    if filled_qty <= qty:
        return None
    shares, cents = filled_qty - qty, filled_cents - sum(f.cents for f in stored)
    price = avg_price if not stored else (Decimal(cents).scaleb(-2) / shares).quantize(fills.NANO)
    return FillReport(shares, cents, price or ZERO)


def phase_of_symbols(symbols: Iterable[str], orders: Iterable[tuple[str, Phase, str]]) -> dict[str, Phase]:
    """Each intent symbol's phase, from the window's orders (symbol, phase, status): its
    order's; with no order it crossed in full, in the sell phase, or in the buy phase when
    scaling re-netted its buy order away (the order is dropped)."""
    orders = list(orders)
    live = {sym: phase for sym, phase, status in orders if status != "dropped"}
    dropped = {sym for sym, _, status in orders if status == "dropped"}
    return {sym: live.get(sym, Phase.BUY if sym in dropped else Phase.SELL) for sym in sorted(set(symbols))}


def shares_after(held: Mapping[tuple[int, str], Decimal], moves: Sequence[Move]) -> dict[tuple[int, str], tuple[str, Decimal]]:
    """(account, path) -> (symbol, shares after the moves), for every slice a move touched."""
    out: dict[tuple[int, str], tuple[str, Decimal]] = {}
    for m in moves:
        key = (m.account_id, m.path)
        symbol, before = out.get(key, (m.symbol, held.get(key, ZERO)))
        out[key] = (symbol, before + m.shares)
    return out


def spent(moves: Sequence[Move]) -> dict[int, int]:
    """Net cents each account paid (+) or received (-) through these moves."""
    out: dict[int, int] = {}
    for m in moves:
        out[m.account_id] = out.get(m.account_id, 0) + m.cents
    return out
