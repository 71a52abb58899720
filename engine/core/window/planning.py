"""One account's part of a window: the planner run on its events at the window's prices,
with events the planner refuses set aside one by one so that the rest go ahead."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Callable, Mapping, Sequence

from engine.core import events as ev
from engine.core.books import WASH_DAYS
from engine.core.lots import Realized
from engine.core.money import cents, fmt
from engine.core.planner import PlanError, Plan, plan

from .model import AccountPlan, AccountState, Cause, EventOutcome, HeldBack, Kind, Outcome, SliceTrade, WindowEvent

_CASH = {Kind.DEPOSIT: ev.Deposit, Kind.DIVIDEND: ev.Dividend, Kind.WITHDRAWAL: ev.Withdrawal}


def _engine_event(e: WindowEvent) -> ev.Event | None:
    ref = str(e.id)
    if e.kind in _CASH:
        return _CASH[e.kind](e.cents or 0, ref)
    if e.kind == Kind.REBALANCE:
        return ev.Rebalance(e.path or "", ref)
    if e.kind == Kind.TARGET_CHANGE:
        return ev.TargetChange(ref)
    if e.kind == Kind.CORPORATE_ACTION and e.cents:
        return ev.Proceeds(e.cents, e.path or "", ref)
    return None       # a liquidation needs no engine event: the planner sells what the pie dropped


def with_recent_losses(states: Sequence[AccountState], owners: Mapping[int, str], sales: Sequence[Realized],
                       day: date) -> list[AccountState]:
    """The states with `blocked` filled for accounts whose rules avoid wash sales: each
    symbol that any account of the same owner sold at a loss (proceeds below basis) in the
    30 days up to `day`, with the day of the latest such sale. `owners` maps every account
    named (planned ones and the rows' ones) to its owner."""
    since = day - timedelta(days=WASH_DAYS)
    lost: dict[str, dict[str, date]] = {}
    for r in sales:
        if r.proceeds < r.basis and since <= r.sold <= day and r.account_id in owners:
            mine = lost.setdefault(owners[r.account_id], {})
            mine[r.symbol] = max(mine.get(r.symbol, r.sold), r.sold)
    return [replace(a, blocked=tuple(sorted(lost.get(owners.get(a.id, ""), {}).items())))
            if a.rules.avoid_wash_sales else a for a in states]


def plan_account(a: AccountState, prices: Mapping[str, Decimal], as_of: date) -> AccountPlan:
    """The account's plan (the broker minimum applies after netting, so none here).

    An event the planner refuses is set aside with the planner's reason and the others are
    planned again. When several withdrawals together ask too much, they are taken in the
    order recorded and only those that no longer fit are refused. A refusal that names no
    event refuses the whole account; its dividends are still credited as cash."""
    events = sorted(a.events, key=lambda e: e.id)
    missing = sorted({h.symbol for h in a.holdings if h.shares and h.symbol not in prices})
    values = {h.path: cents(h.shares * prices[h.symbol], ROUND_HALF_EVEN) for h in a.holdings if h.shares and not missing}
    if any(e.kind == Kind.CLOSE for e in events) and not missing:
        return _close(a, events, values)
    rejected: dict[int, str] = {}

    blocked = frozenset(s for s, _ in a.blocked) if a.rules.avoid_wash_sales else frozenset()

    def attempt(evs: list[WindowEvent], block: frozenset[str] = blocked) -> Plan:
        engine_events = [x for x in (_engine_event(e) for e in evs) if x is not None]
        return plan(a.pie, values, engine_events, a.rules, cash=a.cash, min_order=0, as_of=as_of,
                    last_rebalanced=a.last_rebalanced, blocked=block)

    active = list(events)
    result: Plan | None = None
    refusal = f"no price for {', '.join(missing)}" if missing else None
    while refusal is None:
        try:
            result = attempt(active)
            break
        except PlanError as e:
            refs = set(e.refs)
            at_fault = [x for x in active if str(x.id) in refs]
            if not at_fault:
                refusal = str(e)
                break
            withdrawals = [x for x in at_fault if x.kind == Kind.WITHDRAWAL]
            before = len(rejected)
            if len(withdrawals) > 1 and len(withdrawals) == len(at_fault):
                keep = [x for x in active if x not in withdrawals]
                taken = 0
                for w in withdrawals:        # in the order recorded: later ones bounce first
                    try:
                        attempt(keep + [w])
                        keep.append(w)
                        taken += w.cents or 0
                    except PlanError as e2:
                        if str(w.id) in e2.refs:
                            rejected[w.id] = (f"${fmt(w.cents or 0)} after ${fmt(taken)} of earlier withdrawals: "
                                              if taken else "") + str(e2)
                        else:
                            keep.append(w)
                active = sorted(keep, key=lambda x: x.id)
            if len(rejected) == before:
                for x in at_fault:
                    rejected[x.id] = str(e)
                active = [x for x in active if x.id not in rejected]

    decided = [EventOutcome(i, Outcome.REJECTED, Cause.PLAN_REFUSED, r) for i, r in sorted(rejected.items())]
    div = sum(e.cents or 0 for e in events if e.kind == Kind.DIVIDEND and e.id not in rejected)
    if result is None:
        for e in active:
            if e.kind == Kind.DIVIDEND:
                continue                 # broker cash that arrived: credited at settlement
            if e.kind == Kind.LIQUIDATION:
                decided.append(EventOutcome(e.id, Outcome.RETRY, Cause.ACCOUNT_REFUSED, refusal))
            elif e.kind == Kind.CORPORATE_ACTION:     # applied already; its cash stays cash
                decided.append(EventOutcome(e.id, Outcome.DONE, Cause.CREDITED_AS_CASH, refusal))
            else:
                decided.append(EventOutcome(e.id, Outcome.REJECTED, Cause.ACCOUNT_REFUSED, refusal))
        return AccountPlan(a.id, False, refusal, a.cash, 0, div, 0, False, (), tuple(decided), ())

    p = result
    dep = sum(e.cents or 0 for e in active if e.kind == Kind.DEPOSIT)
    wd = sum(e.cents or 0 for e in active if e.kind == Kind.WITHDRAWAL)
    whole = any(st.cause in ("rebalance", "target change") or st.cause.startswith(("drift", "every"))
                for st in p.steps)
    refs: dict[str, set[int]] = {}
    for st in p.steps:
        for path in st.trades:
            refs.setdefault(path, set()).update(int(r) for r in st.refs)
    held = {h.path: h for h in a.holdings}
    alias = dict(a.aliases)
    trades = tuple(SliceTrade(path, held[path].symbol if path in held else _current(path.rsplit("/", 1)[-1], alias), c,
                              c < 0 and p.holdings_after.get(path, 0) == 0, tuple(sorted(refs.get(path, ()))))
                   for path, c in sorted(p.trades.items()))
    selling_all = {t.path for t in trades if t.sell_all}
    liquidating = []
    for e in active:
        if e.kind != Kind.LIQUIDATION:
            continue
        if e.path in selling_all:
            liquidating.append((e.id, e.path or ""))
        elif held.get(e.path or "") is not None and held[e.path or ""].shares:
            decided.append(EventOutcome(e.id, Outcome.DONE, None, "nothing to liquidate: the slice is in the pie again"))
        else:
            decided.append(EventOutcome(e.id, Outcome.DONE))
    held_back = _held_back(a, p, lambda: attempt(active, frozenset())) if blocked else ()
    if not trades and not events and not held_back:
        return AccountPlan(a.id, True, None, a.cash, 0, 0, 0, False, (), (), ())
    return AccountPlan(a.id, True, None, a.cash, dep, div, wd, whole, trades,
                       tuple(sorted(decided, key=lambda o: o.event_id)), tuple(liquidating), held_back=held_back)


def _held_back(a: AccountState, p: Plan, unblocked: Callable[[], Plan]) -> tuple[HeldBack, ...]:
    """The buys the block kept from the plan: the plan made again without it, and each
    blocked symbol it would have bought more of (the report says which, and why)."""
    try:
        free = unblocked()
    except PlanError:
        return ()
    sold = dict(a.blocked)

    def bought(q: Plan) -> dict[str, int]:
        out: dict[str, int] = {}
        for path, c in q.trades.items():
            s = path.rsplit("/", 1)[-1]
            if s in sold:
                out[s] = out.get(s, 0) + c
        return out
    with_block, without = bought(p), bought(free)
    return tuple(HeldBack(s, without[s] - with_block.get(s, 0), sold[s]) for s in sorted(without)
                 if without[s] > with_block.get(s, 0))


def _current(symbol: str, alias: Mapping[str, str]) -> str:
    """A slice the account does not hold yet trades in its symbol's current name (a renamed
    symbol the policy still names keeps working)."""
    return alias.get(symbol, symbol)


def _close(a: AccountState, events: list[WindowEvent], values: dict[str, int]) -> AccountPlan:
    """A closing account sells every holding in full; settlement then withdraws all its
    cash. Its deposits and dividends still arrive (and leave with the rest); other events
    have nothing left to do."""
    close = next(e.id for e in events if e.kind == Kind.CLOSE)
    trades = tuple(SliceTrade(h.path, h.symbol, -values[h.path], True, (close,))
                   for h in sorted(a.holdings, key=lambda h: h.path) if h.shares and values.get(h.path))
    dep = sum(e.cents or 0 for e in events if e.kind == Kind.DEPOSIT)
    div = sum(e.cents or 0 for e in events if e.kind == Kind.DIVIDEND)
    decided = tuple(EventOutcome(e.id, Outcome.DONE, Cause.CLOSING, "the account is closing")
                    for e in events if e.kind in (Kind.REBALANCE, Kind.TARGET_CHANGE, Kind.WITHDRAWAL,
                                                  Kind.LIQUIDATION))
    return AccountPlan(a.id, True, None, a.cash, dep, div, 0, False, trades, decided, (), closing=True)
