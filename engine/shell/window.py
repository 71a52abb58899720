"""The trading window: collect, price, plan, net, submit, settle, allocate, close.

Each step is persisted (its own transaction, ending with the window's `step`) before the
next starts, so a crash at any point resumes from the last step. Orders are stored as
submitted before the broker is called, and looked up by client order id before anything
is sent, so a resumed window never places an order twice. See docs/window.md.
"""

from __future__ import annotations

import os
import signal
import threading
import time as _time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, NamedTuple

import structlog
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

import rules as policy_lang
from adapters.broker.port import (Broker, OrderNotFound, OrderRejected, OrderRequest, OrderState, RetryLater,
                                  client_order_id)
from adapters.ledger.schema import (Account, Allocation, Event, Fill, Holding, Intent, Order, PolicyVersion,
                                    Window, WindowAccount, utcnow)
from adapters.ledger.store import Ledger, invariants_in
from engine.core import events as ev
from engine.core import fills
from engine.core.allocate import apportion
from engine.core.money import market_cents
from engine.core.planner import PlanError, plan
from rules.library import find_rules
from rules.model import Policy, Security

log = structlog.get_logger("pies.window")
STEPS = ("opened", "collected", "priced", "planned", "netted", "sells_submitted", "sells_settled",
         "sells_allocated", "scaled", "buys_submitted", "buys_settled", "allocated", "closed")
ZERO = Decimal("0")
CENT = Decimal("0.01")


class Interrupted(Exception):
    """Asked to stop (SIGTERM): the current step finished; the window resumes next time."""


class WindowPaused(Exception):
    """The broker keeps saying 'retry later': the window stops where it is and resumes."""


@dataclass(frozen=True)
class WindowOptions:
    min_order_cents: int = 100
    settle_timeout: float = 60.0          # seconds to wait for each phase's orders
    retries: int = 3                      # RetryLater, per broker call, before pausing
    recurring: tuple["Recurring", ...] = ()


@dataclass(frozen=True)
class Recurring:
    """A deposit that repeats: every day, or every week/month from its `day` on
    (ISO weekday 1-7, or day of the month), in the first window of the period."""

    account: str
    amount: Decimal
    every: str          # day | week | month
    day: int = 1

    def period(self, today: date) -> str | None:
        """The period key when due on `today`, else None."""
        if self.every == "day":
            return today.isoformat()
        if self.every == "week":
            y, wk, wd = today.isocalendar()
            return f"{y}-W{wk:02d}" if wd >= self.day else None
        if self.every == "month":
            return f"{today:%Y-%m}" if today.day >= self.day else None
        raise ValueError(f"recurring deposit every {self.every!r}: use day, week or month")


def _crash_hook(point: str) -> None:
    """Tests kill the process at a named point (PIES_TEST_CRASH_AT) to prove resumption."""
    if os.environ.get("PIES_TEST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _aware(t: datetime) -> datetime:
    """SQLite gives back naive UTC datetimes; PostgreSQL aware ones."""
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _dec(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _cents(d: Decimal) -> int:
    return int(d * 100)


class WindowRunner:
    def __init__(self, ledger: Ledger, broker: Broker, broker_name: str, options: WindowOptions = WindowOptions(),
                 *, stop: threading.Event | None = None, crash: Callable[[str], None] = _crash_hook,
                 sleep: Callable[[float], None] = _time.sleep):
        self.ledger = ledger
        self.broker = broker
        self.name = broker_name
        self.opt = options
        self.stop = stop or threading.Event()
        self.crash = crash
        self.sleep = sleep
        self._policies: dict[int, Policy] = {}
        self._rulesets: dict[tuple[int, str], Any] = {}

    # --- driving ----------------------------------------------------------------------------

    def run(self, day: date, name: str = "open") -> dict[str, Any]:
        wid = self._open(day, name)
        bound = log.bind(window=wid, broker=self.name, day=day.isoformat(), window_name=name)
        while True:
            step = self._step(wid)
            if step == "closed":
                with self.ledger.tx() as s:
                    return dict(s.get(Window, wid).report or {})
            if self.stop.is_set():
                bound.info("window interrupted", after=step)
                raise Interrupted(f"window {wid} stopped after {step}")
            nxt = STEPS[STEPS.index(step) + 1]
            t0 = _time.monotonic()
            getattr(self, f"_{nxt}")(wid)
            bound.info("window step", step=nxt, seconds=round(_time.monotonic() - t0, 3))
            self.crash(nxt)

    def _open(self, day: date, name: str) -> int:
        with self.ledger.tx() as s:
            w = s.scalars(select(Window).where(Window.broker == self.name, Window.trading_date == day,
                                               Window.name == name)).first()
            if w is None:
                w = Window(broker=self.name, trading_date=day, name=name, step="opened")
                s.add(w)
                s.flush()
                log.info("window opened", window=w.id, broker=self.name, day=day.isoformat(), window_name=name)
            return w.id

    def _step(self, wid: int) -> str:
        with self.ledger.tx() as s:
            return s.get(Window, wid).step

    def _set(self, s: Session, wid: int, step: str) -> Window:
        w = s.get(Window, wid)
        w.step = step
        return w

    def _coid_prefix(self, w: Window) -> str:
        return f"pies-{w.trading_date:%Y%m%d}-{w.name}-w{w.id}"

    def _policy(self, s: Session, version_id: int) -> Policy:
        if version_id not in self._policies:
            v = s.get(PolicyVersion, version_id)
            self._policies[version_id] = policy_lang.compile_text(v.text, v.file)
        return self._policies[version_id]

    def _accounts(self, s: Session) -> dict[int, Account]:
        return {a.id: a for a in s.scalars(select(Account).where(Account.broker == self.name))}

    def _house(self, accts: dict[int, Account]) -> Account:
        house = next((a for a in accts.values() if a.is_house), None)
        if house is None:
            raise RuntimeError(f"broker account {self.name!r} has no house account")
        return house

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        for attempt in range(self.opt.retries + 1):
            try:
                return fn()
            except RetryLater as e:
                if attempt == self.opt.retries:
                    raise WindowPaused(f"{what}: {e}") from None
                log.warning("broker busy", what=what, attempt=attempt + 1, reason=str(e))
                self.sleep(min(30.0, 0.5 * 2 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # --- 2. collect -------------------------------------------------------------------------

    def _collected(self, wid: int) -> None:
        with self.ledger.tx() as s:
            w = s.get(Window, wid)
            prev = s.scalars(select(Window.opened_at).where(Window.broker == self.name, Window.id != wid)
                             .order_by(Window.opened_at.desc()).limit(1)).first()
        since = _aware(prev or (w.opened_at - timedelta(days=7)))
        activities = self._call("dividends", lambda: self.broker.cash_activities(since))
        with self.ledger.tx() as s:
            w = s.get(Window, wid)
            accts = self._accounts(s)
            house = self._house(accts)
            for act in activities:
                if act.kind != "dividend" or s.scalars(select(Event.id).where(
                        Event.key == f"div:{act.id}:house")).first() is not None:
                    continue
                self._split_dividend(s, w, accts, house, act)
            self._recurring(s, w, accts, house)
            opened = _aware(w.opened_at)
            for e in s.scalars(select(Event).join(Account, Event.account_id == Account.id)
                               .where(Event.status == "pending", Account.broker == self.name)):
                if _aware(e.created_at) < opened:   # recorded after the window started: the next one takes it
                    e.status, e.window_id = "planned", wid
            self._set(s, wid, "collected")

    def _recurring(self, s: Session, w: Window, accts: dict[int, Account], house: Account) -> None:
        """Recurring deposits due in this window, once per period (the key says which)."""
        by_name = {a.name: a for a in accts.values()}
        reserved = sum((e.amount for e in s.scalars(select(Event).join(Account, Event.account_id == Account.id)
                                                    .where(Event.kind == "deposit", Event.status == "pending",
                                                           Account.broker == self.name))), ZERO)
        for r in self.opt.recurring:
            period = r.period(w.trading_date)
            a = by_name.get(r.account)
            if period is None or a is None:
                if a is None:
                    log.warning("recurring deposit for an unknown account", account=r.account)
                continue
            key = f"recurring:{a.id}:{r.every}:{period}"
            if s.scalars(select(Event.id).where(Event.key == key)).first() is not None:
                continue
            ok = house.cash - reserved >= r.amount
            s.add(Event(account_id=a.id, key=key, kind="deposit", amount=r.amount, window_id=w.id,
                        status="planned" if ok else "rejected",
                        reason=None if ok else f"the house has too little unowned cash for ${r.amount}"))
            if ok:
                reserved += r.amount

    def _split_dividend(self, s: Session, w: Window, accts: dict[int, Account], house: Account, act) -> None:
        """A broker dividend, shared by the slices holding the symbol in proportion to shares."""
        holders = [h for h in s.scalars(select(Holding).join(Account, Holding.account_id == Account.id)
                                        .where(Holding.symbol == act.symbol, Account.broker == self.name)
                                        .order_by(Holding.account_id, Holding.path))
                   if h.shares > 0]
        total = _cents(act.amount)
        by_acct: dict[int, int] = defaultdict(int)
        if holders:
            units = [int(h.shares * 10**9) for h in holders]
            parts = apportion(total, [total * u for u in units], sum(units), range(len(units)))
            for h, p in zip(holders, parts):
                by_acct[h.account_id] += p
        else:
            by_acct[house.id] = total
        for aid, c in sorted(by_acct.items()):
            if aid == house.id:
                continue
            if c:
                s.add(Event(account_id=aid, key=f"div:{act.id}:{aid}", kind="dividend", amount=_dec(c),
                            status="planned", window_id=w.id))
        house_part = by_acct.get(house.id, 0)
        house.cash += _dec(house_part)
        s.add(Event(account_id=house.id, key=f"div:{act.id}:house", kind="dividend", amount=_dec(house_part),
                    path=act.symbol, status="done", window_id=w.id, reason=f"broker activity {act.id}"))

    # --- 3. price ---------------------------------------------------------------------------

    def _plan_set(self, s: Session, wid: int) -> list[Account]:
        """Accounts with events in this window, and those whose rules may trigger a rebalance."""
        with_events = set(s.scalars(select(Event.account_id).where(Event.window_id == wid,
                                                                   Event.status == "planned")))
        out = []
        for a in self._accounts(s).values():
            if a.is_house:
                continue
            self._policy(s, a.policy_version_id)
            rs = self._rules(a)
            if a.id in with_events or rs.drift_threshold_bp is not None or rs.every is not None:
                out.append(a)
        return sorted(out, key=lambda a: a.id)

    def _priced(self, wid: int) -> None:
        with self.ledger.tx() as s:
            symbols: set[str] = set()
            for pie in {(a.policy_version_id, a.pie) for a in self._plan_set(s, wid)}:
                symbols.update(sl.symbol for _, sl in self._policies[pie[0]].pies[pie[1]].walk()
                               if isinstance(sl, Security))
            # Held symbols (slices removed from a pie included): one query for the broker account.
            symbols.update(s.scalars(select(Holding.symbol).join(Account, Holding.account_id == Account.id)
                                     .where(Account.broker == self.name).distinct()))
        prices = self._call("prices", lambda: self.broker.latest_prices(sorted(symbols))) if symbols else {}
        with self.ledger.tx() as s:
            w = self._set(s, wid, "priced")
            w.prices = {k: str(v) for k, v in sorted(prices.items())}

    # --- data access in bulk: the window touches every planned account's rows ------------

    def _held(self, s: Session, account_ids) -> dict[tuple[int, str], tuple[str, Decimal]]:
        """(account, path) -> (symbol, shares) for these accounts, in chunks of 5,000."""
        out: dict[tuple[int, str], tuple[str, Decimal]] = {}
        ids = sorted(set(account_ids))
        for k in range(0, len(ids), 5000):
            for aid, path, sym, shares in s.execute(
                    select(Holding.account_id, Holding.path, Holding.symbol, Holding.shares)
                    .where(Holding.account_id.in_(ids[k:k + 5000]))):
                out[(aid, path)] = (sym, shares)
        return out

    def _intents(self, s: Session, wid: int) -> dict[str, list[IntentRow]]:
        by: dict[str, list[IntentRow]] = defaultdict(list)
        for row in s.execute(select(Intent.id, Intent.account_id, Intent.path, Intent.symbol, Intent.amount,
                                    Intent.sell_all, Intent.planned).where(Intent.window_id == wid)
                             .order_by(Intent.id)):
            by[row.symbol].append(IntentRow(*row))
        return by

    def _set_amounts(self, s: Session, amounts: dict[int, Decimal]) -> None:
        if amounts:
            s.execute(update(Intent), [{"id": k, "amount": v} for k, v in amounts.items()])

    # --- 4. plan ----------------------------------------------------------------------------

    def _planned(self, wid: int) -> None:
        with self.ledger.tx(autoflush=False) as s:
            w = s.get(Window, wid)
            prices = {k: Decimal(v) for k, v in (w.prices or {}).items()}
            events_of: dict[int, list[Event]] = defaultdict(list)
            for e in s.scalars(select(Event).where(Event.window_id == wid, Event.status == "planned")
                               .order_by(Event.id)):
                events_of[e.account_id].append(e)
            accounts = self._plan_set(s, wid)
            held_all = self._held(s, [a.id for a in accounts])
            held_of: dict[int, dict[str, tuple[str, Decimal]]] = defaultdict(dict)
            for (aid, path), v in held_all.items():
                if v[1]:
                    held_of[aid][path] = v
            intents: list[dict] = []
            rows: list[dict] = []
            for a in accounts:
                self._plan_account(w, a, prices, events_of.get(a.id, []), held_of.get(a.id, {}), intents, rows)
            for table, batch in ((WindowAccount, rows), (Intent, intents)):
                for k in range(0, len(batch), 20_000):
                    s.execute(insert(table), batch[k:k + 20_000])
            self._set(s, wid, "planned")

    def _plan_account(self, w: Window, a: Account, prices: dict[str, Decimal], evs: list[Event],
                      held: dict[str, tuple[str, Decimal]], intents: list[dict], rows: list[dict]) -> None:
        policy = self._policies[a.policy_version_id]
        pie = policy.pies[a.pie]
        ruleset = self._rules(a)
        values = {p: market_cents(q * prices[sym]) for p, (sym, q) in held.items()}
        engine_events: list[ev.Event] = []
        for e in evs:
            ref = str(e.id)
            if e.kind == "deposit":
                engine_events.append(ev.Deposit(_cents(e.amount), ref))
            elif e.kind == "dividend":
                engine_events.append(ev.Dividend(_cents(e.amount), ref))
            elif e.kind == "withdrawal":
                engine_events.append(ev.Withdrawal(_cents(e.amount), ref))
            elif e.kind == "rebalance":
                engine_events.append(ev.Rebalance(e.path or "", ref))
            elif e.kind == "target_change":
                engine_events.append(ev.TargetChange(ref))
            # liquidations need no event: the planner sells what the pie no longer holds
        base = {"window_id": w.id, "account_id": a.id, "cash_before": a.cash, "reason": None, "withdrawn": None}
        by_ref = {str(e.id): e for e in evs}
        while True:
            try:
                p = plan(pie, values, engine_events, ruleset, cash=_cents(a.cash), min_order=0,
                         as_of=w.trading_date, last_rebalanced=a.last_rebalanced)
                break
            except PlanError as e:
                if not e.refs:
                    err = e
                    p = None
                    break
                # Set the events at fault aside, with the reason, and plan the others.
                for ref in e.refs:
                    x = by_ref[ref]
                    x.status, x.reason = "rejected", str(e)
                    log.warning("event rejected", window=w.id, account=a.name, event_id=x.id, reason=str(e))
                engine_events = [x for x in engine_events if x.ref not in e.refs]
        dep = sum(x.cents for x in engine_events if isinstance(x, ev.Deposit))
        div = sum(x.cents for x in engine_events if isinstance(x, ev.Dividend))
        wd = sum(x.cents for x in engine_events if isinstance(x, ev.Withdrawal))
        if p is None:
            e = err
            for x in evs:
                if x.kind == "dividend":
                    continue       # broker cash that arrived: credited at close all the same
                x.status, x.reason = "rejected", str(e)
            rows.append({**base, "status": "rejected", "reason": str(e), "deposits": ZERO, "dividends": _dec(div),
                         "withdrawals": ZERO, "rebalanced": False})
            log.warning("account rejected", window=w.id, account=a.name, reason=str(e))
            return
        if not p.trades and not evs:
            return
        whole = any(st.cause in ("rebalance", "target change") or st.cause.startswith(("drift", "every"))
                    for st in p.steps)
        rows.append({**base, "status": "planned", "deposits": _dec(dep), "dividends": _dec(div),
                     "withdrawals": _dec(wd), "rebalanced": whole})
        refs: dict[str, set[int]] = defaultdict(set)
        for st in p.steps:
            for path in st.trades:
                refs[path].update(int(r) for r in st.refs)
        for path, c in sorted(p.trades.items()):
            h = held.get(path)
            intents.append({"window_id": w.id, "account_id": a.id, "path": path,
                            "symbol": h[0] if h else path.rsplit("/", 1)[-1], "planned": _dec(c), "amount": _dec(c),
                            # all of it goes (removed slices too): sold by quantity where possible
                            "sell_all": c < 0 and p.holdings_after.get(path, 0) == 0,
                            "events": sorted(refs[path]) or None})

    def _rules(self, a: Account):
        key = (a.policy_version_id, a.rules)
        if key not in self._rulesets:
            self._rulesets[key] = find_rules(a.rules, self._policies[a.policy_version_id])
        return self._rulesets[key]

    # --- 5. net -----------------------------------------------------------------------------

    @staticmethod
    def _wants(rows: list[IntentRow], held: dict[tuple[int, str], tuple[str, Decimal]]) -> list[fills.Want]:
        return [fills.Want(r.id, _cents(r.amount), r.sell_all,
                           held.get((r.account_id, r.path), ("", ZERO))[1] if r.amount < 0 else ZERO)
                for r in rows if r.amount]

    def _netted(self, wid: int) -> None:
        with self.ledger.tx(autoflush=False) as s:
            w = s.get(Window, wid)
            by_symbol = self._intents(s, wid)
            held = self._held(s, {r.account_id for rows in by_symbol.values() for r in rows})
            amounts: dict[int, Decimal] = {}
            for symbol, rows in sorted(by_symbol.items()):
                self._net_symbol(s, w, symbol, rows, held, amounts, phase=None)
            self._set_amounts(s, amounts)
            self._set(s, wid, "netted")

    def _net_symbol(self, s: Session, w: Window, symbol: str, rows: list[IntentRow],
                    held: dict, amounts: dict[int, Decimal], phase: str | None) -> None:
        current = [r._replace(amount=amounts.get(r.id, r.amount)) for r in rows]
        n = fills.net(symbol, self._wants(current, held), self.opt.min_order_cents)
        by_id = {r.id: r for r in current}
        for key, c in n.deferred:
            amounts[key] = by_id[key].amount - _dec(c)
        if n.side is None:
            return
        s.add(Order(window_id=w.id, client_order_id=client_order_id(self._coid_prefix(w), symbol, n.side),
                    symbol=symbol, side=n.side, notional=None if n.notional is None else _dec(n.notional),
                    qty=n.qty, status="planned", phase=phase or n.side))

    # --- 6. submit --------------------------------------------------------------------------

    def _submit_phase(self, wid: int, phase: str) -> None:
        with self.ledger.tx() as s:
            todo = [(o.id, o.client_order_id) for o in s.scalars(
                select(Order).where(Order.window_id == wid, Order.phase == phase,
                                    Order.status.in_(("planned", "submitted"))).order_by(Order.symbol))]
        for oid, coid in todo:
            with self.ledger.tx() as s:
                o = s.get(Order, oid)
                o.status = "submitted"        # persisted before the broker hears of it
                req = OrderRequest(coid, o.symbol, o.side, notional=o.notional, qty=o.qty)
            self.crash("submit:before-call")
            olog = log.bind(window=wid, symbol=req.symbol, client_order_id=coid)
            try:
                state = self._call(f"order {coid}", lambda: self._find_or_submit(req))
            except OrderRejected as e:
                olog.warning("order skipped", reason=str(e))
                with self.ledger.tx() as s:
                    o = s.get(Order, oid)
                    o.status, o.note = "skipped", str(e)
                continue
            self.crash("submit:after-call")
            olog.info("order placed", side=req.side, notional=str(req.notional or ""), qty=str(req.qty or ""),
                      status=state.status)
            with self.ledger.tx() as s:
                self._record_state(s.get(Order, oid), state)
        with self.ledger.tx() as s:
            self._set(s, wid, f"{phase}s_submitted")

    def _find_or_submit(self, req: OrderRequest) -> OrderState:
        try:
            return self.broker.order(req.client_order_id)
        except OrderNotFound:
            return self.broker.submit(req)

    def _record_state(self, o: Order, st: OrderState) -> None:
        o.broker_id, o.status = st.broker_id, st.status
        o.filled_qty, o.filled_avg_price = st.filled_qty, st.filled_avg_price
        if st.note:
            o.note = st.note

    def _sells_submitted(self, wid: int) -> None:
        self._submit_phase(wid, "sell")

    def _buys_submitted(self, wid: int) -> None:
        self._submit_phase(wid, "buy")

    # --- 7. settle --------------------------------------------------------------------------

    def _settle_phase(self, wid: int, phase: str) -> None:
        with self.ledger.tx() as s:
            live = [o.client_order_id for o in s.scalars(
                select(Order).where(Order.window_id == wid, Order.phase == phase,
                                    Order.status.notin_(("skipped", "dropped"))))]
        states = self._call("settle", lambda: self.broker.wait(live, self.opt.settle_timeout)) if live else {}
        for coid, st in list(states.items()):
            if not st.terminal:   # the bound passed: cancel, keeping what filled
                states[coid] = self._call(f"cancel {coid}", lambda c=coid: self.broker.cancel(c))
                log.warning("order canceled at the bound", window=wid, client_order_id=coid,
                            filled_qty=str(states[coid].filled_qty))
        with self.ledger.tx() as s:
            for coid, st in states.items():
                o = s.scalars(select(Order).where(Order.client_order_id == coid)).one()
                self._record_state(o, st)
                if st.filled_qty and s.scalars(select(Fill.id).where(Fill.order_id == o.id)).first() is None:
                    s.add(Fill(order_id=o.id, qty=st.filled_qty, price=st.filled_avg_price or ZERO,
                               amount=st.filled_notional))
            self._set(s, wid, f"{phase}s_settled")

    def _sells_settled(self, wid: int) -> None:
        self._settle_phase(wid, "sell")

    def _buys_settled(self, wid: int) -> None:
        self._settle_phase(wid, "buy")

    # --- 8. allocate ------------------------------------------------------------------------

    def _allocate_phase(self, wid: int, phase: str) -> None:
        with self.ledger.tx(autoflush=False) as s:
            w = s.get(Window, wid)
            prices = {k: Decimal(v) for k, v in (w.prices or {}).items()}
            orders = {o.symbol: o for o in s.scalars(select(Order).where(
                Order.window_id == wid, Order.status != "dropped"))}
            fills_of = {f.order_id: f for f in s.scalars(select(Fill).join(Order, Fill.order_id == Order.id)
                                                         .where(Order.window_id == wid))}
            dropped = {o.symbol for o in s.scalars(select(Order).where(Order.window_id == wid,
                                                                        Order.status == "dropped"))}
            house = self._house_of(s)
            by_symbol = self._intents(s, wid)
            mine: dict[str, list[IntentRow]] = {}
            for symbol, rows in by_symbol.items():
                o = orders.get(symbol)
                # A symbol's phase is its order's; with no order it crossed in full: in the sell
                # phase, or the buy phase if scaling re-netted its buy order away.
                home = o.phase if o is not None else ("buy" if symbol in dropped else "sell")
                if home == phase:
                    mine[symbol] = rows
            held = self._held(s, {r.account_id for rows in mine.values() for r in rows} | {house.id})
            deltas: dict[tuple[int, str], list] = {}
            allocations: list[dict] = []
            for symbol, rows in sorted(mine.items()):
                o = orders.get(symbol)
                self._allocate_symbol(w, symbol, rows, o, fills_of.get(o.id) if o else None, prices[symbol],
                                      house.id, held, deltas, allocations)
            for k in range(0, len(allocations), 20_000):
                s.execute(insert(Allocation), allocations[k:k + 20_000])
            self._apply_shares(s, held, deltas)
            self._set(s, wid, "sells_allocated" if phase == "sell" else "allocated")

    def _house_of(self, s: Session) -> Account:
        house = s.scalars(select(Account).where(Account.broker == self.name, Account.is_house.is_(True))).first()
        if house is None:
            raise RuntimeError(f"broker account {self.name!r} has no house account")
        return house

    def _allocate_symbol(self, w: Window, symbol: str, rows: list[IntentRow], o: Order | None, fill: Fill | None,
                         planning_price: Decimal, house_id: int, held: dict, deltas: dict,
                         allocations: list[dict]) -> None:
        wants = self._wants(rows, held)
        if not wants:
            return
        n = fills.Net(symbol, o.side if o is not None else None,
                      None if o is None or o.notional is None else _cents(o.notional),
                      None if o is None else o.qty, tuple(wants), ())
        price = fill.price if fill is not None and fill.price else planning_price
        sp = fills.split(n, filled_qty=fill.qty if fill else ZERO, filled_cents=_cents(fill.amount) if fill else 0,
                         price=price)
        by_id = {r.id: r for r in rows}
        order_id = o.id if o is not None else None
        for share in sp.shares:
            r = by_id[share.key]
            allocations.append({"window_id": w.id, "order_id": order_id, "account_id": r.account_id, "path": r.path,
                                "symbol": symbol, "shares": share.shares, "amount": _dec(share.cents)})
            self._delta(deltas, r.account_id, r.path, symbol, share.shares)
        if sp.house_shares or sp.house_cents:
            allocations.append({"window_id": w.id, "order_id": order_id, "account_id": house_id, "path": symbol,
                                "symbol": symbol, "shares": sp.house_shares, "amount": _dec(-sp.house_cents)})
            self._delta(deltas, house_id, symbol, symbol, sp.house_shares)

    @staticmethod
    def _delta(deltas: dict, account_id: int, path: str, symbol: str, shares: Decimal) -> None:
        d = deltas.setdefault((account_id, path), [symbol, ZERO])
        d[1] += shares

    def _apply_shares(self, s: Session, held: dict, deltas: dict) -> None:
        """Holdings move by the allocations: bulk updates, inserts and deletes."""
        ups, ins, dels = [], [], []
        for (aid, path), (symbol, d) in deltas.items():
            if not d:
                continue
            old = held.get((aid, path))
            new = (old[1] if old else ZERO) + d
            if old is None:
                ins.append({"account_id": aid, "path": path, "symbol": symbol, "shares": new})
            elif new:
                ups.append({"account_id": aid, "path": path, "shares": new})
            else:
                dels.append({"a": aid, "p": path})
        if ups:
            s.execute(update(Holding), ups)
        if ins:
            s.execute(insert(Holding), ins)
        if dels:
            t = Holding.__table__
            s.connection().execute(delete(t).where(t.c.account_id == bindparam("a"), t.c.path == bindparam("p")),
                                   dels)

    def _sells_allocated(self, wid: int) -> None:
        self._allocate_phase(wid, "sell")

    def _allocated(self, wid: int) -> None:
        self._allocate_phase(wid, "buy")

    # --- 6b. scale buys to the cash the sells brought ---------------------------------------

    def _spent(self, s: Session, wid: int) -> dict[int, Decimal]:
        """Net dollars each account paid (+) or received (-) in this window's allocations."""
        out: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for aid, amount in s.execute(select(Allocation.account_id, Allocation.amount)
                                     .where(Allocation.window_id == wid)):
            out[aid] += amount
        return out

    def _scaled(self, wid: int) -> None:
        with self.ledger.tx(autoflush=False) as s:
            w = s.get(Window, wid)
            orders = {o.symbol: o for o in s.scalars(select(Order).where(Order.window_id == wid))}
            buy_symbols = {sym for sym, o in orders.items() if o.phase == "buy"}
            spent = self._spent(s, wid)
            by_symbol = self._intents(s, wid)
            buys_of: dict[int, list[IntentRow]] = defaultdict(list)
            crossed_in: dict[int, Decimal] = defaultdict(lambda: ZERO)
            for sym in buy_symbols:
                for r in by_symbol[sym]:
                    if r.amount > 0:
                        buys_of[r.account_id].append(r)
                    elif r.amount < 0:
                        crossed_in[r.account_id] -= r.amount   # sellers crossing a net buy get their dollars
            notes, amounts = [], {}
            for wa in s.execute(select(WindowAccount.account_id, WindowAccount.cash_before, WindowAccount.deposits,
                                       WindowAccount.dividends, WindowAccount.withdrawals)
                                .where(WindowAccount.window_id == wid, WindowAccount.status == "planned")):
                mine = buys_of.get(wa.account_id, [])
                if not mine:
                    continue
                need = sum((r.amount for r in mine), ZERO)
                avail = wa.cash_before + wa.deposits + wa.dividends - wa.withdrawals - spent[wa.account_id] \
                    + crossed_in[wa.account_id]
                if need <= avail:
                    continue
                budget = max(_cents(avail), 0)
                asked = [_cents(r.amount) for r in mine]
                for r, c in zip(mine, apportion(budget, [budget * x for x in asked], sum(asked), range(len(asked)))):
                    amounts[r.id] = _dec(c)
                notes.append({"account_id": wa.account_id, "asked": str(need), "spent": str(_dec(budget))})
                log.warning("buys scaled down", window=wid, account_id=wa.account_id, asked=str(need),
                            available=str(avail))
            if notes:
                for sym in sorted(buy_symbols):
                    o = orders[sym]
                    o.status = "dropped"      # re-netted below on the scaled buys
                    o.client_order_id = o.client_order_id + "-x"
                s.flush()
                held = self._held(s, {r.account_id for sym in buy_symbols for r in by_symbol[sym]})
                for sym in sorted(buy_symbols):
                    self._net_symbol(s, w, sym, by_symbol[sym], held, amounts, phase="buy")
                w.report = {**(w.report or {}), "scaled": notes}
            self._set_amounts(s, amounts)
            self._set(s, wid, "scaled")

    # --- 9. close ---------------------------------------------------------------------------

    def _closed(self, wid: int) -> None:
        positions = self._call("positions", self.broker.positions)
        balance = self._call("balance", self.broker.balance)
        with self.ledger.tx(autoflush=False) as s:
            w = s.get(Window, wid)
            house = self._house_of(s)
            spent = self._spent(s, wid)
            house.cash -= spent.pop(house.id, ZERO)
            was: list[WindowAccount] = list(s.scalars(select(WindowAccount).where(WindowAccount.window_id == wid)
                                                      .order_by(WindowAccount.account_id)))
            accts = {a.id: a for a in s.scalars(select(Account).where(Account.id.in_([x.account_id for x in was])))} \
                if len(was) < 30_000 else self._accounts(s)
            events_of: dict[int, list[Event]] = defaultdict(list)
            for e in s.scalars(select(Event).where(Event.window_id == wid).order_by(Event.id)):
                events_of[e.account_id].append(e)
            trades_of: dict[int, list] = defaultdict(list)
            for aid, path, shares, amount in s.execute(
                    select(Allocation.account_id, Allocation.path, Allocation.shares, Allocation.amount)
                    .where(Allocation.window_id == wid).order_by(Allocation.path)):
                trades_of[aid].append({"slice": path, "shares": str(shares), "amount": str(amount)})
            deferred_of: dict[int, list] = defaultdict(list)
            for rows in self._intents(s, wid).values():
                for r in rows:
                    if r.planned != r.amount:
                        deferred_of[r.account_id].append({"slice": r.path, "amount": str(r.planned - r.amount)})
            report_accounts = []
            for wa in was:
                a = accts[wa.account_id]
                if wa.status == "rejected":
                    a.cash += wa.dividends
                    for e in events_of[a.id]:
                        if e.kind == "dividend":
                            e.status, e.reason = "done", "credited as cash; the account's plan was rejected"
                    report_accounts.append({"account": a.name, "status": "rejected", "reason": wa.reason})
                    continue
                cash = wa.cash_before + wa.deposits + wa.dividends - spent[a.id]
                paid = min(wa.withdrawals, max(cash, ZERO))
                cash -= paid
                advance = ZERO
                if cash < 0:
                    advance, cash = -cash, ZERO   # the house covers it, visibly
                    log.error("house advance", window=wid, account=a.name, amount=str(advance))
                a.cash = cash
                house.cash += paid - wa.deposits - advance
                wa.withdrawn = paid
                if wa.rebalanced:
                    a.last_rebalanced = w.trading_date
                for e in events_of[a.id]:
                    if e.status != "planned":
                        continue
                    e.status = "done"
                    if e.kind == "withdrawal" and paid < wa.withdrawals:
                        e.reason = f"paid ${paid} of ${wa.withdrawals}: sells came in short"
                item = {"account": a.name, "status": "done", "cash": str(a.cash), "withdrawn": str(paid),
                        "events": [{"id": e.id, "kind": e.kind, "amount": None if e.amount is None else str(e.amount),
                                    "path": e.path, "status": e.status, "reason": e.reason} for e in events_of[a.id]],
                        "trades": trades_of.get(a.id, [])}
                if deferred_of.get(a.id):
                    item["deferred_or_scaled"] = deferred_of[a.id]
                if advance:
                    item["house_advance"] = str(advance)
                report_accounts.append(item)
            for evs in events_of.values():
                for e in evs:
                    if e.status == "planned":
                        e.status = "done"   # events of accounts that had nothing to trade
            w.closed_at = utcnow()
            problems = invariants_in(s, self.name, {k: p.qty for k, p in positions.items()}, balance.cash)
            orders = [{"symbol": o.symbol, "side": o.side, "client_order_id": o.client_order_id,
                       "notional": None if o.notional is None else str(o.notional),
                       "qty": None if o.qty is None else str(o.qty), "status": o.status,
                       "filled_qty": None if o.filled_qty is None else f"{o.filled_qty.normalize():f}",
                       "price": None if o.filled_avg_price is None else f"{o.filled_avg_price.normalize():f}",
                       "note": o.note}
                      for o in s.scalars(select(Order).where(Order.window_id == wid).order_by(Order.phase.desc(),
                                                                                               Order.symbol))]
            w.report = {**(w.report or {}), "window": wid, "broker": self.name, "day": w.trading_date.isoformat(),
                        "name": w.name, "accounts": report_accounts, "orders": orders, "problems": problems}
            self._set(s, wid, "closed")
        for p in problems:
            log.error("ledger and broker disagree", window=wid, problem=p, alert=True)
        log.info("window closed", window=wid, accounts=len(report_accounts), orders=len(orders),
                 problems=len(problems))


class IntentRow(NamedTuple):
    id: int
    account_id: int
    path: str
    symbol: str
    amount: Decimal
    sell_all: bool
    planned: Decimal
