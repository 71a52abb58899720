"""The trading window: a short loop over its steps (docs/window.md).

Each step loads its inputs through the ledger's window repository, asks the pure window
core (engine/core/window/) what to do, persists the answer in one transaction that ends by
recording the step, and only then talks to the broker. A crash anywhere resumes from the
last recorded step. An order is stored as submitted before the broker hears of it; a
resumed phase asks the broker once for the window's orders before sending anything, so no
order is ever placed twice.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time as _time
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

from engine.shell import logs
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from adapters.broker.port import Broker, BrokerError, OrderRejected, OrderState, RetryLater
from adapters.ledger.locks import WindowLock
from adapters.ledger.store import Ledger, LedgerUnavailable
from adapters.ledger.schema import utcnow
from adapters.ledger.window_repo import WindowInfo, WindowRepository
from engine.core import errors
from engine.core.admission import HouseCash
from engine.core.corporate_actions import ActionKind, CorporateAction
from engine.core.broker_view import not_applied, seen
from engine.core.corporate_moves import APPLIED_KINDS, Book, apply_action, suspects
from engine.core.errors import StopTrading
from engine.core.books import WASH_DAYS, book, net_trades
from engine.core.lots import LotMethod
from engine.core.reconcile import Tolerance, suspected_split
from engine.core.money import cents, dollars
from engine.core.window.allocation import allocate_symbol, new_fill, phase_of_symbols, shares_after
from engine.core.window.collect import Recurring, recurring_due, split_dividend
from engine.core.window.conservation import discrepancies
from engine.core.window.model import Kind, Outcome, Phase
from engine.core.window.netting import net_symbols
from engine.core.window.planning import plan_account, with_recent_losses
from engine.core.window.report import window_report
from engine.core.window.scaling import scale_buys
from engine.core.window.settlement import house_own_trades, settle
from engine.shell.policies import COMPILER
from engine.shell.reconcile import compare, summary

__all__ = ["STEPS", "Interrupted", "Recurring", "WindowHeld", "WindowOptions", "WindowPaused", "WindowRunner"]

log = logs.logger("pies.window")
NY = ZoneInfo("America/New_York")
MAX_ACTION_CHAIN = 5          # a rename of a rename of ...: the symbols asked for again at most this often
# `reconciled`: the ledger compared with the broker before anything is collected or planned
# (docs/reconciliation.md); an unexplained break above the tolerance holds the window there.
STEPS = ("opened", "reconciled", "collected", "priced", "planned", "netted", "sells_submitted", "sells_settled",
         "sells_allocated", "scaled", "buys_submitted", "buys_settled", "allocated", "closed")


class Interrupted(Exception):
    """Asked to stop (SIGTERM): the current step finished or was left whole; the window resumes next time."""


class WindowPaused(Exception):
    """The broker keeps saying 'retry later': the window stops where it is and resumes."""


class WindowHeld(errors.StopTrading):
    """The ledger and the broker disagree beyond the tolerance and nothing explains it: the
    window stops before planning until an operator looks (`pies reconcile`) and accepts
    the break (`pies reconcile accept --reason ...`), or the sides agree again."""

    title = "window waits for an operator"

    def console(self) -> str:
        return f"{self} (see Reconcile)"


@dataclass(frozen=True)
class WindowOptions:
    min_order_cents: int = 100
    settle_timeout: float = 60.0          # seconds to wait for each phase's orders (the settle bound)
    poll_interval: float = 2.0            # seconds between looks at the orders; a stop is honoured between them
    retries: int = 3                      # RetryLater, per broker call, before pausing
    recurring: tuple[Recurring, ...] = ()
    workers: int = 1                      # processes that plan shards (server databases only)
    shard_size: int = 5_000               # accounts per shard
    cluster: str | None = None            # a Dask scheduler's address: its workers plan the shards
    tolerance: Tolerance = Tolerance()    # an unexplained break above it holds the window


def _crash_hook(point: str) -> None:
    """Tests kill the process at a named point (PIES_TEST_CRASH_AT) to prove resumption, or
    hold it there (PIES_TEST_PAUSE_AT=point=seconds, touching PIES_TEST_PAUSED) to kill
    another process meanwhile."""
    if os.environ.get("PIES_TEST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
    at, _, seconds = os.environ.get("PIES_TEST_PAUSE_AT", "").partition("=")
    if at == point:
        if os.environ.get("PIES_TEST_PAUSED"):
            open(os.environ["PIES_TEST_PAUSED"], "a").close()
        _time.sleep(float(seconds or 60))


# Kinds whose basis allocation needs the day's prices (engine/core/corporate_moves.basis_share).
ALLOCATES = frozenset({ActionKind.SPIN_OFF, ActionKind.UNIT_SPLIT, ActionKind.STOCK_AND_CASH_MERGER})


def _totals(book: Book) -> dict[str, Decimal]:
    """Shares per symbol of a corporate action's book, the house's included."""
    out: dict[str, Decimal] = {}
    for h in book.holdings:
        out[h.symbol] = out.get(h.symbol, Decimal(0)) + h.shares
    return out


def _since(w: WindowInfo, day: date) -> datetime:
    """Where the broker's activity and order lists start for a window: a day before the
    earlier of `day` and the window's opening (ids make repeats harmless)."""
    start = min(day, w.opened_at.astimezone(NY).date()) - timedelta(days=1)
    return datetime.combine(start, time(0), NY)


def record_state(tx, st: OrderState) -> None:
    """The broker's word on an order, with the part of its fill the ledger lacks (the core decides it)."""
    tx.record_state(st, new_fill(tx.fills_of(st.client_order_id), st.filled_qty, cents(st.filled_notional),
                                 st.filled_avg_price))


_LEDGERS: dict[tuple[str, str], WindowRepository] = {}


def watch_parent(parent: int, every: float = 0.5) -> None:
    """A worker of a window's process pool ends itself within a second of its window's
    process dying (SIGKILL included: the worker is handed to another parent), so no shard
    is planned or committed for a window nobody holds any more; the shard it was in rolls
    back with its connection and is redone by the window's next run."""
    def watch() -> None:
        while os.getppid() == parent:
            _time.sleep(every)
        os._exit(70)
    if os.getppid() != parent:
        os._exit(70)
    threading.Thread(target=watch, name="pies-watch-parent", daemon=True).start()


def _worker_repo(url: str, broker: str) -> WindowRepository:
    """A worker process opens the ledger once and keeps it for every shard it runs."""
    if (url, broker) not in _LEDGERS:
        _LEDGERS[(url, broker)] = WindowRepository(Ledger(url, upgrade=False), broker, COMPILER)
    return _LEDGERS[(url, broker)]


def plan_shard(job: tuple, repo: WindowRepository | None = None) -> list[tuple[int, str | None, list]]:
    """Plan one shard of a window's accounts in one transaction that records the shard
    (skipped when it is recorded already). Runs in the runner's process or in a worker of a
    pool (which opens the ledger once). Returns what to log: (account, refusal, rejected)."""
    url, broker, wid, day, shard, ids = job
    repo = repo or _worker_repo(url, broker)
    with repo.step(wid) as tx:
        if tx.shard_done("planned", shard):
            return []
        prices = tx.prices()
        states = tx.accounts_to_plan(ids=ids)
        careful = [a.id for a in states if a.rules.avoid_wash_sales]
        if careful:                         # `avoid wash-sales`: the owners' recent loss sales
            owners, sales = tx.recent_sales(careful, day - timedelta(days=WASH_DAYS))
            states = with_recent_losses(states, owners, sales, day)
        plans = [plan_account(a, prices, day) for a in states]
        tx.save_plans(plans)
        tx.mark_shard("planned", shard)
        _crash_hook(f"shard:planned:{shard}")         # killed mid-shard: nothing of it commits
    return [(p.account_id, None if p.planned else p.reason,
             [(o.event_id, o.reason) for o in p.decided if o.outcome == Outcome.REJECTED]) for p in plans]


def allocate_shard(job: tuple, repo: WindowRepository | None = None) -> int:
    """Split the fills and crosses of one shard of symbols across their slices, in one
    transaction that records the shard. Symbols never share a holding row (a slice holds
    one symbol, the house one row per symbol), so shards of symbols run side by side.
    Returns the number of moves."""
    url, broker, wid, step, shard, symbols = job
    repo = repo or _worker_repo(url, broker)
    with repo.step(wid) as tx:
        if tx.shard_done(step, shard):
            return 0
        by_symbol, held = tx.intents(symbols)
        orders = {o.plan.symbol: o for o in tx.orders(with_fills=True) if o.status != "dropped"}
        house = tx.house()
        held.update(tx.all_held([house.id]))
        prices = tx.prices()
        moves = []
        for sym in sorted(by_symbol):
            o = orders.get(sym)
            moves.extend(allocate_symbol(sym, by_symbol[sym], o.plan if o else None, o.fills if o else (),
                                         prices[sym], held, house.id))
        tx.save_moves(moves, {sym: o.id for sym, o in orders.items()}, shares_after(held, moves), held)
        tx.mark_shard(step, shard)
        _crash_hook(f"shard:{step}:{shard}")
    return len(moves)


def settle_shard(job: tuple, repo: WindowRepository | None = None) -> list[tuple[int, int]]:
    """Settle one shard of accounts (engine.core.window.settlement) in one transaction that
    records the shard (`spent`: what each of them paid or received in the window's
    allocations): their cash, withdrawals paid, events' outcomes, closes; then, with the
    house's row locked (shards running side by side take turns only here), the dust their
    closes sweep to the house and their part of the house's cash. Returns the house's
    advances to log: (account, cents)."""
    url, broker, wid, day, shard, ids, spent = job
    repo = repo or _worker_repo(url, broker)
    with repo.step(wid) as tx:
        if tx.shard_done("closed", shard):
            return []
        lines = tx.cash_lines(ids)
        events = tx.open_events(ids)
        liquidating = {e.id: (e.account_id, e.path or "") for e in events if e.kind == Kind.LIQUIDATION}
        closing = {e.id: e.account_id for e in events if e.kind == Kind.CLOSE}
        house_id = tx.house().id
        st = settle(lines, events, spent, house_id=house_id, house_cash=0, liquidating=liquidating,
                    held_after=tx.all_held({aid for aid, _ in liquidating.values()}),
                    remaining=tx.holdings_of(set(closing.values())), prices=tx.prices())
        closed = sorted(closing[o.event_id] for o in st.outcomes if o.event_id in closing and o.outcome == Outcome.DONE)
        tx.save_settlement(st, lines, day, closed)
        tx.house(lock=True)
        if st.sweeps:
            held = tx.all_held({m.account_id for m in st.sweeps})
            tx.save_moves(st.sweeps, {}, shares_after(held, st.sweeps), held)
        tx.add_house_cash(st.house_cash)              # house_cash=0 above: this is the shard's part
        tx.mark_shard("closed", shard)
        _crash_hook(f"shard:closed:{shard}")
    return [(a.account_id, a.advance) for a in st.accounts if a.advance]


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cycle collector off for a shard's books: its thousands of new frozen values hold
    no cycles, and in a process holding a large heap the collections their allocation sets
    off cost time for nothing (measured: about a tenth of the step at 15,000 accounts)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def book_shard(job: tuple, repo: WindowRepository | None = None) -> int:
    """The books of one shard of owners (engine.core.books): the net moves of every
    account of theirs (`moves`: (account, symbol, shares, cents) as the runner read them,
    in one pass for every shard; `accounts`; `owners`: those of owners with several ->
    owner), so a wash sale across an owner's accounts is decided in one shard; their lots
    and washable realized rows read and the answer written in bulk, in one transaction
    that records the shard. Returns the number of trades booked."""
    url, broker, wid, day, shard, accounts, owners, moves = job
    repo = repo or _worker_repo(url, broker)
    with repo.step(wid) as tx, _no_gc():
        if tx.shard_done("booked", shard):
            return 0
        tx.without_jit()
        trades = net_trades((aid, sym, Decimal(sh), int(c)) for aid, sym, sh, c in moves)
        lots, realized = tx.book_inputs(accounts, owners, {(t.account_id, t.symbol) for t in trades if t.shares < 0},
                                        {t.symbol for t in trades if t.shares > 0}, day)
        methods = {aid: LotMethod(m) for aid, m in tx.lot_methods({t.account_id for t in trades if t.shares < 0}).items()}
        tx.save_booking(book(day, trades, lots, realized, methods, owners))
        tx.mark_shard("booked", shard)
        _crash_hook(f"shard:booked:{shard}")
    return len(trades)


def symbol_groups(counts: dict[str, int], per_group: int) -> list[list[str]]:
    """Symbols in order, cut into groups of about `per_group` intents (a symbol is never split)."""
    groups: list[list[str]] = [[]]
    size = 0
    for sym in sorted(counts):
        if groups[-1] and size + counts[sym] > per_group:
            groups.append([])
            size = 0
        groups[-1].append(sym)
        size += counts[sym]
    return [g for g in groups if g]


class WindowRunner:
    def __init__(self, ledger: Ledger, broker: Broker, broker_name: str, options: WindowOptions = WindowOptions(),
                 *, stop: threading.Event | None = None, crash: Callable[[str], None] = _crash_hook,
                 sleep: Callable[[float], None] = _time.sleep):
        self.repo = WindowRepository(ledger, broker_name, COMPILER)
        self.broker = broker
        self.name = broker_name
        self.opt = options
        self.stop = stop or threading.Event()
        self.crash = crash
        self.sleep = sleep
        self._pool = None                  # the shards' executor, for one run
        self._lock: WindowLock | None = None   # held for one run
        self._closers: list[Callable[[], Any]] = []
        self._owned: tuple[int, dict[str, Decimal]] | None = None   # (window, shares per symbol) at reconciliation

    # --- the loop ---------------------------------------------------------------------------

    def open(self, day: date, name: str = "open") -> WindowInfo:
        """The window's row, opened if it was not (the caller should hold the window lock)."""
        w, created = self.repo.open(day, name)
        if created:
            log.info("window opened", window=w.id, broker=self.name, day=day.isoformat(), window_name=name)
        return w

    def run(self, day: date, name: str = "open", *, accounts: bool = True,
            lock: WindowLock | None = None) -> dict[str, Any]:
        """Run (or resume) the window to its close; its report, with each account's lines
        unless `accounts` is false (a daemon needs only the summary).

        Only one window of a broker account runs at a time, whoever starts it: the runner
        holds the broker account's window lock (adapters/ledger/locks.py) for the whole run,
        or uses `lock`, one its caller took already (and releases). A second caller gets
        LedgerConflict naming the holder, before anything is read or sent."""
        lock = lock or WindowLock(self.repo.ledger, self.name)
        lock.acquire()
        self._lock = lock
        try:
            w = self.open(day, name)
            bound = log.bind(window=w.id, broker=self.name, day=day.isoformat(), window_name=name)
            return self._run(w, bound, accounts)
        finally:
            self._close_pool()
            self._lock = None
            self._owned = None        # another holder of the lock may change holdings after this run
            lock.release()

    def _still_mine(self, w: WindowInfo) -> None:
        """The window's records are written only by the lock's holder: a lost lock (its
        database connection gone) stops the run before it writes or sends anything more."""
        if self._lock is not None and not self._lock.held():
            raise LedgerUnavailable(f"window {w.id}: its lock was lost with the database connection; "
                                    f"stopped where it was, run it again to resume")

    def _run(self, w: WindowInfo, bound, accounts: bool) -> dict[str, Any]:
        while True:
            self._still_mine(w)
            step = self.repo.info(w.id).step
            if step == "closed":
                return self.repo.report(w.id, accounts=accounts)
            if self.stop.is_set():
                bound.info("window interrupted", after=step)
                raise Interrupted(f"window {w.id} stopped after {step}")
            nxt = STEPS[STEPS.index(step) + 1]
            t0 = _time.monotonic()
            getattr(self, f"_{nxt}")(w)
            seconds = round(_time.monotonic() - t0, 3)
            bound.info("window step", step=nxt, seconds=seconds)
            self.crash(nxt)
            self.repo.time_step(w.id, nxt, seconds)        # for /metrics; after the crash point

    def _map(self, fn: Callable, jobs: list[tuple]) -> list:
        """Run a step's shards: on a Dask cluster's workers (other machines too, reaching the
        same PostgreSQL), in a process pool of `workers`, or here one after the other (SQLite:
        one writer at a time anyway). Each shard commits on its own; the results come back
        in the jobs' order. The pool or the cluster's client is opened at the first step
        that needs it and kept for the rest of the run (workers keep their ledger open)."""
        url = self.repo.ledger.url
        if len(jobs) > 1 and not url.startswith("sqlite") and (self.opt.cluster or self.opt.workers > 1):
            return list(self._executor().map(fn, jobs))
        return [fn(job, self.repo) for job in jobs]

    def _executor(self):
        if self._pool is None:
            if self.opt.cluster:
                from distributed import Client
                client = Client(self.opt.cluster)
                self._pool = client.get_executor()
                self._closers.append(client.close)
            else:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor
                self._pool = ProcessPoolExecutor(max_workers=self.opt.workers,
                                                 mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=watch_parent, initargs=(os.getpid(),))
                self._closers.append(self._pool.shutdown)
        return self._pool

    def _close_pool(self) -> None:
        while self._closers:
            self._closers.pop()()
        self._pool = None

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """A broker call, retried on RetryLater (`retries` times, backing off 0.5 s, 1 s, 2 s...
        up to 30 s); still busy after that, the window pauses where it is."""
        def busy(rs: RetryCallState) -> None:
            log.warning("broker busy", what=what, attempt=rs.attempt_number, reason=str(rs.outcome.exception()))
        try:
            return Retrying(stop=stop_after_attempt(self.opt.retries + 1),
                            wait=wait_exponential(multiplier=0.5, max=30), retry=retry_if_exception_type(RetryLater),
                            sleep=self.sleep, before_sleep=busy, reraise=True)(fn)
        except RetryLater as e:
            raise WindowPaused(f"{what}: {e}") from None

    # --- reconcile, collect, price, plan, net -------------------------------------------------

    def _compare(self, w: WindowInfo):
        """The ledger against the broker now (engine/shell/reconcile.compare)."""
        with self.repo.step(w.id) as tx:
            last = tx.last_trading_date()
            side, accepted = tx.ledger_side(), tx.acceptances()
        self._owned = (w.id, side.owned())
        start = min(last or w.trading_date, w.trading_date)

        def order_windows(coids: list[str]) -> dict[str, str]:
            with self.repo.step(w.id) as tx:
                return tx.order_windows(coids)

        def uncollected(activities):
            with self.repo.step(w.id) as tx:
                return tx.unrecorded_dividends(activities)
        return compare(self.broker, side, since=_since(w, start), start=start, end=w.trading_date,
                       order_windows=order_windows, uncollected=uncollected, accepted=accepted,
                       tolerance=self.opt.tolerance, call=self._call)

    def _reconciled(self, w: WindowInfo) -> None:
        """Before anything is collected or planned, the ledger as the last window left it
        against the broker now. Breaks with a likely cause (an action not applied yet, an
        order outside pies, a dividend not collected yet) are reported and the window goes
        on; an unexplained one above the tolerance holds the window here, recorded in its
        report, until an operator accepts it. Read-only towards the broker: a crash around
        it just compares again."""
        rec = self._compare(w)
        doc = summary(rec)
        if rec.waits:
            with self.repo.step(w.id) as tx:
                tx.merge_report(reconciliation={"before": doc}, held={
                    "reason": "the ledger and the broker disagree and nothing explains it",
                    "lines": [x.to_json() for x in rec.waits]})
            for x in rec.waits:
                log.error("trading waits: ledger and broker disagree", window=w.id, broker=self.name, symbol=x.symbol,
                          ledger=str(x.ledger), house=str(x.house), broker_holds=str(x.broker),
                          difference=str(x.difference), alert=True)
            names = ", ".join(f"{x.symbol} (difference {x.difference}"
                              f"{'; ' + split if (split := suspected_split(x.symbol, x.ledger + x.house, x.broker)) else ''})"
                              for x in rec.waits[:5])
            raise WindowHeld(f"window {w.id} waits for an operator: the ledger and broker {self.name!r} disagree on "
                             f"{names} and nothing explains it; see `pies reconcile`, then "
                             f"`pies reconcile accept --reason ...` and run the window again")
        with self.repo.step(w.id, "reconciled") as tx:
            tx.merge_report(reconciliation={"before": doc}, held=None)
        for x in rec.breaks:
            log.warning("ledger and broker differ", window=w.id, symbol=x.symbol, difference=str(x.difference),
                        cause=x.cause.value if x.cause else None, detail=x.detail)

    def _corporate_actions(self, w: WindowInfo) -> None:
        """Before anything is planned: the broker's corporate actions on held symbols since
        the last window, each applied once (keyed by its id) to every account of the broker
        account in one transaction, with an event in each affected account's history. Then
        the ledger is compared with the broker's positions: a disagreement that an action
        explains (the broker applied one the ledger has not heard of, or the reverse)
        stops the window before trading, naming the symbol and the action, and nothing of
        the transaction stays."""
        with self.repo.step(w.id) as tx:
            last = tx.last_trading_date()
            held = set(tx.held_symbols())
        owned_before = frozenset(held)
        cached, self._owned = self._owned, None     # reconciliation's sums, used once (below)
        start = min(last or w.trading_date, w.trading_date)
        found: dict[str, CorporateAction] = {}
        asked: set[str] = set()
        for _ in range(MAX_ACTION_CHAIN):
            new = sorted(held - asked)
            if not new:
                break
            asked.update(new)
            for a in self._call("corporate actions",
                                lambda: self.broker.corporate_actions(new, start, w.trading_date)):
                found.setdefault(a.id, a)
                if a.new_symbol:
                    held.add(a.new_symbol)
        listed = sorted((a for a in found.values() if a.effective <= w.trading_date), key=lambda a: (a.effective, a.id))
        positions = self._call("positions", self.broker.positions)
        # The prices a basis allocation needs (a spin-off's, a unit split's distribution, a
        # stock-and-cash merger's): the broker's at this window, the action's first.
        prices = self._allocation_prices(w, listed)
        self.crash("actions:read")
        summaries: list[dict] = []
        applies = getattr(self.broker, "applies_corporate_actions", True)
        with self.repo.step(w.id) as tx:
            done = tx.applied_ids(a.id for a in listed)
            stop = [f"{a.symbol}: {a.kind.value} {a.id} is not handled by pies; the window stops before trading"
                    for a in listed if a.kind == ActionKind.RIGHTS_DISTRIBUTION and a.symbol in owned_before]
            for a in listed:
                if a.id in done or a.kind not in APPLIED_KINDS:
                    continue
                book = tx.action_book({a.symbol} | ({a.new_symbol} if a.new_symbol else set()))
                _, moved = apply_action(book, a, prices)
                # A broker that does not apply actions (Alpaca paper) keeps its side as it was:
                # the ledger records what it should hold from now on (broker_view.py).
                adjustment = None if applies else not_applied(a, _totals(book))
                summaries.append(tx.save_action(moved, tx.account_names(moved.accounts), adjustment))
                self.crash("actions:applying")          # killed here: none of the transaction stays
            # What the accounts and the house own per symbol: as reconciliation summed it in
            # this run, unless an action changed it since (a run resumed after reconciling sums
            # again). A sum over every holding is seconds at a million accounts; holdings change
            # only in a window, under the broker account's window lock that this run holds.
            owned = cached[1] if cached and cached[0] == w.id and not summaries else tx.conservation_inputs()[0]
            seen_positions, _ = seen({k: p.qty for k, p in positions.items()}, 0, tx.broker_adjustment())
            stop += suspects(owned, seen_positions, listed, tx.applied_actions())
            if stop:
                raise StopTrading(f"window {w.id} stops before trading: " + "; ".join(stop))
            stale = tx.stale_names()
        self.crash("actions:applied")
        for x in summaries:
            log.warning("corporate action applied", window=w.id, action=x["id"], kind=x["kind"], symbol=x["symbol"],
                        description=x["description"], accounts=x["account_count"])
        for line in stale:
            log.warning("policy names a changed symbol", window=w.id, warning=line)

    def _allocation_prices(self, w: WindowInfo, listed: list[CorporateAction]) -> dict[str, Decimal]:
        """The broker's prices now of the symbols whose basis allocation needs them (a spin-off:
        both; a stock-and-cash merger: the acquirer's). A symbol without a price (not trading
        yet, a feed without it) is left out: its action allocates no basis, and says so."""
        wanted = sorted({s for a in listed if a.kind in ALLOCATES
                         for s in ((a.new_symbol,) if a.kind == ActionKind.STOCK_AND_CASH_MERGER
                                   else (a.symbol, a.new_symbol)) if s})
        if not wanted:
            return {}
        try:
            return dict(self.broker.latest_prices(wanted))
        except BrokerError:
            pass
        out: dict[str, Decimal] = {}
        for sym in wanted:                   # one by one: the others still count
            try:
                out.update(self.broker.latest_prices([sym]))
            except BrokerError as e:
                log.warning("no price for a corporate action's basis allocation", window=w.id, symbol=sym,
                            reason=str(e))
        return out

    def _collected(self, w: WindowInfo) -> None:
        self._corporate_actions(w)
        with self.repo.step(w.id) as tx:
            last = tx.last_trading_date()
        activities = self._call("dividends",
                                lambda: self.broker.cash_activities(_since(w, min(last or w.trading_date,
                                                                                  w.trading_date))))
        with self.repo.step(w.id, "collected") as tx:
            house = tx.house()
            for act in tx.unrecorded_dividends(activities):
                tx.record_dividend(act, split_dividend(cents(act.amount, ROUND_DOWN), tx.holders(act.symbol), house.id), house)
            unknown: list[str] = []
            if self.opt.recurring:
                ids = tx.account_ids()
                candidates, unknown = recurring_due(self.opt.recurring, w.trading_date, ids, (),
                                                    HouseCash(self.name, 0, 0))
                due, _ = recurring_due(self.opt.recurring, w.trading_date, ids,
                                       tx.recorded([d.key for d in candidates]), tx.house_cash(house))
                tx.record_due(due)
            tx.take_pending(w.opened_at)
        for name in unknown:
            log.warning("recurring deposit for an unknown account", account=name)

    def _priced(self, w: WindowInfo) -> None:
        with self.repo.step(w.id) as tx:
            symbols = tx.symbols_to_price()
        prices = self._call("prices", lambda: self.broker.latest_prices(symbols)) if symbols else {}
        with self.repo.step(w.id, "priced") as tx:
            tx.save_prices(prices)

    def _planned(self, w: WindowInfo) -> None:
        """Planning runs over shards of accounts (ranges of ids), each one transaction that
        records itself, so a resumed step redoes only the shards that did not commit. With
        `workers` > 1 (and a server database) the shards run in a process pool."""
        with self.repo.step(w.id) as tx:
            ids = tx.plan_set()
        size = max(1, self.opt.shard_size)
        url = self.repo.ledger.url
        jobs = [(url, self.name, w.id, w.trading_date, k, ids[i:i + size])
                for k, i in enumerate(range(0, len(ids), size))]
        notes = self._map(plan_shard, jobs)
        with self.repo.step(w.id, "planned"):
            pass
        for account_id, reason, rejected in (n for shard in notes for n in shard):
            if reason:
                log.warning("account refused", window=w.id, account_id=account_id, reason=reason)
            for event_id, why in rejected:
                log.warning("event rejected", window=w.id, account_id=account_id, event_id=event_id, reason=why)

    def _netted(self, w: WindowInfo) -> None:
        """The barrier: every shard's intents, symbol by symbol (a group of symbols in
        memory at a time); what it holds grows with the symbols, not the accounts."""
        with self.repo.step(w.id, "netted") as tx:
            prices = tx.prices()
            for group in symbol_groups(tx.intent_counts(), self._per_group):
                by_symbol, held = tx.intents(group)
                n = net_symbols(by_symbol, held, prices, self.opt.min_order_cents)
                tx.set_amounts(n.amounts)
                tx.save_orders(n.orders, w.coid_prefix)

    @property
    def _per_group(self) -> int:
        return max(1, self.opt.shard_size) * 4        # intents per group of symbols

    # --- submit and settle ----------------------------------------------------------------

    def _submit(self, w: WindowInfo, phase: Phase) -> None:
        with self.repo.step(w.id) as tx:
            todo = tx.orders(phase, statuses=("planned", "submitted"))
        known: dict[str, OrderState] = {}
        if any(o.status == "submitted" for o in todo):
            # A run stopped around the broker call: one look at the broker's orders tells
            # which of ours it has, before anything is sent.
            found = self._call("reconcile", lambda: self.broker.orders_since(_since(w, w.trading_date)))
            known = {st.client_order_id: st for st in found}
            log.info("reconciled with the broker", window=w.id, phase=phase.value, orders=len(found))
        to_send = sorted({o.plan.symbol for o in todo if o.client_order_id not in known})
        # The day's asset list: a symbol that is inactive or not tradable is not ordered.
        assets = self._call("assets", lambda: self.broker.assets(to_send)) if to_send else {}
        if to_send:
            seconds = self.broker.request_seconds(len(to_send))
            log.info("submitting orders", window=w.id, phase=phase.value, orders=len(to_send),
                     **({"paced_minutes": round(seconds / 60, 1)} if seconds else {}))
        for o in todo:
            self._still_mine(w)
            asset = assets.get(o.plan.symbol)
            if asset is not None and not asset.tradable and o.client_order_id not in known:
                why = f"{o.plan.symbol} is not ordered: {asset.note or 'not tradable at the broker'}"
                log.warning("order skipped", window=w.id, symbol=o.plan.symbol, client_order_id=o.client_order_id,
                            reason=why)
                with self.repo.step(w.id) as tx:
                    tx.mark(o.id, "skipped", why)
                continue
            with self.repo.step(w.id) as tx:
                tx.mark(o.id, "submitted")        # persisted before the broker hears of it
            self.crash("submit:before-call")
            olog = log.bind(window=w.id, symbol=o.plan.symbol, client_order_id=o.client_order_id)
            req = o.request()
            try:
                state = known.get(o.client_order_id) or self._call(f"order {o.client_order_id}",
                                                                   lambda: self.broker.submit(req))
            except OrderRejected as e:
                olog.warning("order skipped", reason=str(e))
                with self.repo.step(w.id) as tx:
                    tx.mark(o.id, "skipped", str(e))
                continue
            self.crash("submit:after-call")
            olog.info("order placed", side=req.side, notional=str(req.notional or ""), qty=str(req.qty or ""),
                      status=state.status)
            with self.repo.step(w.id) as tx:
                record_state(tx, state)
        with self.repo.step(w.id, f"{phase.value}s_submitted"):
            pass

    def _settle(self, w: WindowInfo, phase: Phase) -> None:
        """Wait for the phase's orders up to the settle bound, storing fills as they come and
        honouring a stop between looks; what is still open at the bound is cancelled,
        keeping its partial fill."""
        with self.repo.step(w.id) as tx:
            live = [o.client_order_id for o in tx.orders(phase) if o.status not in ("skipped", "dropped")]
        deadline = _time.monotonic() + self.opt.settle_timeout
        states: dict[str, OrderState] = {}
        while live:
            wait = max(0.0, min(self.opt.poll_interval, deadline - _time.monotonic()))
            states = self._call("settle", lambda: self.broker.wait(live, wait))
            with self.repo.step(w.id) as tx:
                for coid in sorted(states):
                    record_state(tx, states[coid])
            if all(st.terminal for st in states.values()) or _time.monotonic() >= deadline:
                break
            if self.stop.is_set():
                raise Interrupted(f"window {w.id} stopped while waiting for {phase.value} fills")
        for coid in sorted(states):
            if not states[coid].terminal:   # the bound passed: cancel, keeping what filled
                states[coid] = self._call(f"cancel {coid}", lambda c=coid: self.broker.cancel(c))
                log.warning("order canceled at the bound", window=w.id, client_order_id=coid,
                            filled_qty=str(states[coid].filled_qty))
        with self.repo.step(w.id, f"{phase.value}s_settled") as tx:
            for coid in sorted(states):
                record_state(tx, states[coid])

    def _sells_submitted(self, w: WindowInfo) -> None:
        self._submit(w, Phase.SELL)

    def _buys_submitted(self, w: WindowInfo) -> None:
        self._submit(w, Phase.BUY)

    def _sells_settled(self, w: WindowInfo) -> None:
        self._settle(w, Phase.SELL)

    def _buys_settled(self, w: WindowInfo) -> None:
        self._settle(w, Phase.BUY)

    # --- allocate and scale ---------------------------------------------------------------

    def _allocate(self, w: WindowInfo, phase: Phase, done: str) -> None:
        """Allocation over shards of whole symbols, each one transaction that records itself
        (a resumed step redoes only the shards that did not commit), run like planning's."""
        with self.repo.step(w.id) as tx:
            phases = phase_of_symbols(tx.intent_symbols(),
                                      ((o.plan.symbol, o.plan.phase, o.status) for o in tx.orders()))
            mine = [sym for sym, ph in phases.items() if ph == phase]
            groups = symbol_groups(tx.intent_counts(mine), self._per_group)
        url = self.repo.ledger.url
        self._map(allocate_shard, [(url, self.name, w.id, done, k, g) for k, g in enumerate(groups)])
        with self.repo.step(w.id, done):
            pass

    def _sells_allocated(self, w: WindowInfo) -> None:
        self._allocate(w, Phase.SELL, "sells_allocated")

    def _allocated(self, w: WindowInfo) -> None:
        self._allocate(w, Phase.BUY, "allocated")

    def _scaled(self, w: WindowInfo) -> None:
        with self.repo.step(w.id, "scaled") as tx:
            buy_symbols = {o.plan.symbol: Phase.BUY for o in tx.orders(Phase.BUY) if o.status != "dropped"}
            by_symbol, held = tx.intents(buy_symbols)
            sc = scale_buys(tx.cash_lines(), [r for rows in by_symbol.values() for r in rows], tx.spent())
            amounts = dict(sc.amounts)
            if sc.notes:
                # Only the symbols whose buys were cut are netted again (their orders dropped).
                touched = {sym: rows for sym, rows in by_symbol.items() if any(r.id in amounts for r in rows)}
                tx.drop_orders(Phase.BUY, sorted(touched))
                n = net_symbols(touched, held, tx.prices(), self.opt.min_order_cents, Phase.BUY, amounts)
                amounts.update(n.amounts)
                tx.save_orders(n.orders, w.coid_prefix)
                tx.merge_report(scaled=[{"account_id": x.account_id, "asked": str(dollars(x.asked)),
                                         "spent": str(dollars(x.spent))} for x in sc.notes])
            tx.set_amounts(amounts)
        for x in sc.notes:
            log.warning("buys scaled down", window=w.id, account_id=x.account_id, asked=str(dollars(x.asked)),
                        available=str(dollars(x.spent)))

    # --- close ------------------------------------------------------------------------------

    def _book(self, w: WindowInfo) -> None:
        """The window's books, after settlement (whose closes may sweep dust to the house,
        an allocation too): the window's net trades read in one pass, then shards of whole
        owners, each one transaction that records itself, run like planning's. A resumed
        run reads the same trades (allocations are final once settlement is done) and skips
        the shards recorded."""
        with self.repo.step(w.id) as tx:
            # Grouped here, netted in the shards (the runner's process does as little per
            # row as it can: at a million accounts it is one process against the pool).
            by_account: dict[int, list[tuple]] = {}
            for row in tx.net_moves():
                by_account.setdefault(row[0], []).append(row)
            shared = tx.shared_owners(by_account)
        # Whole owners: an owner with several accounts is one unit (all of them, trading or
        # not), any other trading account one of its own; in order of their first account.
        members: dict[str, list[int]] = {}
        for aid in sorted(shared):
            members.setdefault(shared[aid], []).append(aid)
        units = sorted([[aid] for aid in by_account if aid not in shared] + list(members.values()))
        size = max(1, self.opt.shard_size)
        url = self.repo.ledger.url
        jobs = []
        for k, i in enumerate(range(0, len(units), size)):
            accounts = [aid for unit in units[i:i + size] for aid in unit]
            jobs.append((url, self.name, w.id, w.trading_date, k, accounts,
                         {aid: shared[aid] for aid in accounts if aid in shared},
                         [t for aid in accounts for t in by_account.get(aid, ())]))
        del by_account
        self._map(book_shard, jobs)
        self.crash("booked")

    def _explain_after(self, w: WindowInfo) -> None:
        """The close found the ledger and the broker apart: the same comparison as before
        planning says why, kept in the report beside the problems (best effort: the window
        is closed already, and a broker that does not answer leaves only the problems)."""
        try:
            rec = self._compare(w)
        except (WindowPaused, BrokerError) as e:
            log.warning("the breaks after closing could not be explained", window=w.id, reason=str(e))
            return
        with self.repo.step(w.id) as tx:
            report = tx.window.report or {}
            tx.merge_report(reconciliation={**(report.get("reconciliation") or {}), "after": summary(rec)})

    def _closed(self, w: WindowInfo) -> None:
        """Settlement over shards of accounts (ranges of ids), each one transaction that
        records itself and adds its accounts' part to the house; then one transaction that
        takes the house's own trades, checks conservation with the database's sums and
        stores the report's summary."""
        positions = self._call("positions", self.broker.positions)
        balance = self._call("balance", self.broker.balance)
        arrived = self._call("dividends", lambda: self.broker.cash_activities(_since(w, w.trading_date)))
        with self.repo.step(w.id) as tx:
            ids = tx.settle_set()
            spent = tx.spent()       # one sum per account over the window's allocations, for every shard
        size = max(1, self.opt.shard_size)
        url = self.repo.ledger.url
        notes = self._map(settle_shard, [(url, self.name, w.id, w.trading_date, k, part,
                                          {a: spent[a] for a in part if a in spent})
                                         for k, part in enumerate(ids[i:i + size] for i in range(0, len(ids), size))])
        self.crash("settled")
        self._book(w)
        with self.repo.step(w.id, "closed") as tx:
            house = tx.house(lock=True)
            tx.add_house_cash(house_own_trades(spent, house.id))
            # Dividends the broker paid after collect are in its cash but not yet in the
            # ledger: the next window collects them. Compare without them, and say so.
            uncollected = sum((a.amount for a in tx.unrecorded_dividends(arrived)), Decimal(0))
            owned, negative, cash, negative_cash = tx.conservation_inputs()
            # The broker as compared: what it reports plus what it should hold of the
            # actions it does not apply itself (broker_view.py; nothing at most brokers).
            theirs, their_cents = seen({k: p.qty for k, p in positions.items()}, 0, tx.broker_adjustment())
            problems = discrepancies(self.name, owned, theirs, cash,
                                     balance.cash + Decimal(their_cents).scaleb(-2) - uncollected, negative,
                                     negative_cash)
            report = window_report(w.id, self.name, w.trading_date.isoformat(), w.name, tx.account_count(),
                                   tx.retried_events(), tx.report_orders(), problems, uncollected)
            before = (tx.window.report or {}).get("reconciliation") or {}
            agrees = {"agrees": True, "waits": False, "breaks": []}
            tx.window.report = {**(tx.window.report or {}), **report.to_json(),
                                "reconciliation": {**before, "after": None if problems else agrees},
                                "corporate_actions": tx.actions_of_window()}
            tx.window.closed_at = utcnow()
        if problems:
            self._explain_after(w)
        for account_id, advance in (n for shard in notes for n in shard):
            log.error("house advance", window=w.id, account_id=account_id, amount=str(dollars(advance)))
        for p in problems:
            log.error("ledger and broker disagree", window=w.id, problem=p, alert=True)
        log.info("window closed", window=w.id, accounts=report.account_count, orders=len(report.orders),
                 problems=len(problems))
