"""The end of a window in money: each account's cash, the house's, withdrawals paid (in
part, with the reason, when the sells came in short), and every event's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping, Sequence

from engine.core.money import fmt, market_cents

from .model import ZERO, CashLine, Cause, EventOutcome, Holding, Kind, Move, Outcome, WindowEvent


@dataclass(frozen=True, slots=True)
class AccountSettlement:
    account_id: int
    cash: int                  # after the window
    withdrawn: int             # paid out
    advance: int               # what the house had to cover (sells short after crossing buys)


@dataclass(frozen=True, slots=True)
class Settlement:
    accounts: tuple[AccountSettlement, ...]     # in account order
    house_cash: int
    outcomes: tuple[EventOutcome, ...]          # in event order
    sweeps: tuple[Move, ...] = ()               # dust of closed accounts, to the house (no cash)


def house_own_trades(spent: Mapping[int, int], house_id: int) -> int:
    """The house's cash change from its own trades in a window (residue shares it took or
    gave, crossed shares nobody asked for): what it received less what it paid."""
    return -spent.get(house_id, 0)


def settle(lines: Sequence[CashLine], events: Sequence[WindowEvent], spent: Mapping[int, int], *,
           house_id: int, house_cash: int, liquidating: Mapping[int, tuple[int, str]],
           held_after: Mapping[tuple[int, str], Decimal],
           remaining: Mapping[int, Sequence[Holding]] | None = None,
           prices: Mapping[str, Decimal] | None = None) -> Settlement:
    """`events` are the window's events still open (planned); `liquidating` maps a
    liquidation event to the (account, path) its plan sold in full, and `held_after` gives
    the shares those slices hold after allocation; `remaining` what a closing account still
    holds after allocation. A close withdraws all the account's cash and is done when what
    is left is worth less than a cent at `prices` (that dust goes to the house, in
    `sweeps`); else it is retried next window. Deposits come out of the house's cash,
    withdrawals go back to it; an account never ends below zero: if it would (its sells
    filled short after it already crossed buys), the house advances the difference."""
    house = house_cash + house_own_trades(spent, house_id)
    by_account: dict[int, list[WindowEvent]] = {}
    for e in sorted(events, key=lambda e: e.id):
        by_account.setdefault(e.account_id, []).append(e)
    settled: list[AccountSettlement] = []
    outcomes: list[EventOutcome] = []
    sweeps: list[Move] = []
    seen: set[int] = set()
    for line in sorted(lines, key=lambda x: x.account_id):
        aid = line.account_id
        seen.add(aid)
        mine = by_account.get(aid, [])
        if not line.planned:
            for e in mine:
                if e.kind == Kind.DIVIDEND:
                    outcomes.append(EventOutcome(e.id, Outcome.DONE, Cause.CREDITED_AS_CASH,
                                                 "credited as cash; the account's plan was refused"))
            settled.append(AccountSettlement(aid, line.cash_before + line.dividends, 0, 0))
            continue
        cash = line.cash_before + line.deposits + line.dividends - spent.get(aid, 0)
        closing = any(e.kind == Kind.CLOSE for e in mine)
        paid = max(cash, 0) if closing else min(line.withdrawals, max(cash, 0))
        cash -= paid
        advance = 0
        if cash < 0:
            advance, cash = -cash, 0
        house += paid - line.deposits - advance
        settled.append(AccountSettlement(aid, cash, paid, advance))
        left = paid
        for e in mine:
            if e.kind == Kind.WITHDRAWAL:
                asked = e.cents or 0
                got = min(asked, left)
                left -= got
                if got < asked:
                    outcomes.append(EventOutcome(e.id, Outcome.PAID_IN_PART, Cause.SELLS_SHORT,
                                                 f"paid ${fmt(got)} of ${fmt(asked)}: sells came in short"))
                    continue
            if e.kind == Kind.CLOSE:
                rest = [h for h in (remaining or {}).get(aid, ()) if h.shares > 0]
                worth = [h for h in rest if market_cents(h.shares * (prices or {}).get(h.symbol, ZERO)) > 0
                         or h.symbol not in (prices or {})]
                if worth:
                    outcomes.append(EventOutcome(e.id, Outcome.RETRY, Cause.LIQUIDATION_UNFINISHED,
                                                 f"still holds {', '.join(h.path for h in worth)} (a sell was "
                                                 f"skipped, deferred or short); closed once sold"))
                    continue
                sweeps.extend(m for h in sorted(rest, key=lambda h: h.path)
                              for m in (Move(aid, h.path, h.symbol, -h.shares, 0),
                                        Move(house_id, h.symbol, h.symbol, h.shares, 0)))
            if e.id in liquidating:
                key = liquidating[e.id]
                still = held_after.get(key, ZERO)
                if still > 0:
                    outcomes.append(EventOutcome(e.id, Outcome.RETRY, Cause.LIQUIDATION_UNFINISHED,
                                                 f"{key[1]} still holds {still} shares (sell skipped, deferred or "
                                                 f"short); liquidated again next window"))
                    continue
            outcomes.append(EventOutcome(e.id, Outcome.DONE))
    for aid, mine in sorted(by_account.items()):
        if aid not in seen:       # events of accounts that had nothing to trade
            outcomes.extend(EventOutcome(e.id, Outcome.DONE) for e in mine)
    return Settlement(tuple(settled), house, tuple(sorted(outcomes, key=lambda o: o.event_id)), tuple(sweeps))
