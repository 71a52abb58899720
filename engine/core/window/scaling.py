"""Buys cut to the cash an account really has once its sells are in: a sell that filled
short (or at a lower price) must not leave the account paying for buys it cannot afford."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from engine.core.allocate import apportion

from .model import CashLine, Intent


@dataclass(frozen=True, slots=True)
class ScaleNote:
    account_id: int
    asked: int                # cents of buys planned
    spent: int                # cents the buys were cut to


@dataclass(frozen=True, slots=True)
class Scaling:
    amounts: Mapping[int, int]          # intent id -> new cents (changed ones only)
    notes: tuple[ScaleNote, ...]        # in account order


def scale_buys(lines: Sequence[CashLine], intents: Sequence[Intent], spent: Mapping[int, int]) -> Scaling:
    """`intents` are those of the buy-phase symbols; `spent` is what each account paid (+) or
    received (-) so far. An account may buy with its cash, deposits and dividends, less
    its withdrawals and what it already spent, plus the dollars its sells crossing these
    buys bring; when its buys ask more, they are cut pro rata (exact cents, largest
    remainder, ties to the earlier intent)."""
    buys: dict[int, list[Intent]] = {}
    crossed_in: dict[int, int] = {}
    for r in sorted(intents, key=lambda r: (r.account_id, r.path)):
        if r.amount > 0:
            buys.setdefault(r.account_id, []).append(r)
        elif r.amount < 0:
            crossed_in[r.account_id] = crossed_in.get(r.account_id, 0) - r.amount
    amounts: dict[int, int] = {}
    notes: list[ScaleNote] = []
    for line in sorted(lines, key=lambda x: x.account_id):
        mine = buys.get(line.account_id)
        if not line.planned or not mine:
            continue
        need = sum(r.amount for r in mine)
        avail = line.cash_before + line.deposits + line.dividends - line.withdrawals \
            - spent.get(line.account_id, 0) + crossed_in.get(line.account_id, 0)
        if need <= avail:
            continue
        budget = max(avail, 0)
        asked = [r.amount for r in mine]
        for r, c in zip(mine, apportion(budget, [budget * x for x in asked], need, range(len(mine)))):
            amounts[r.id] = c
        notes.append(ScaleNote(line.account_id, need, budget))
    return Scaling(amounts, tuple(notes))
