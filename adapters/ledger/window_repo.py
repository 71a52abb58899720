"""The trading window's SQL: each step's inputs loaded as the window core's frozen types,
and its decisions saved, inside one transaction per step. (A window's report read back is
window_reports.py; the conservation sums, holdings_and_cash, are here too, with the
ledger's own invariant check that shares them, check_invariants.) Rows in, rows out: what to write is the core's to decide.

The window runner (engine/shell/window.py) opens a step with `WindowRepository.step`,
which yields a `StepTx`; when the block ends without an error the step is recorded on the
window and everything commits together. Rows are read and written in bulk: the window
touches every planned account. What a step changes that an operator could change too
(pending events) is locked first, so neither overwrites the other.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Numeric, Text, cast, func, insert, or_, select, text, tuple_, update
from sqlalchemy.orm import Session

from engine.core.action_policy import SymbolChanges, stale_names, symbol_changes, without_gone
from engine.core.books import net_trades
from engine.core.corporate_actions import ActionKind, CorporateAction
from engine.core.corporate_moves import Applied, Book, Held, describe
from engine.core.money import cents, dollars
from engine.core.orders import CashActivity, OrderRequest, OrderState, client_order_id
from engine.core.admission import HouseCash
from engine.core.window.collect import DividendSplit, DueDeposit
from engine.core.window.conservation import discrepancies
from engine.core.window.model import (AccountPlan, AccountState, CashLine, Cause, EventOutcome, FillReport, Holding,
                                      Intent,
                                      Kind, Move, OrderPlan, Phase, WindowEvent)
from engine.core.window.report import OrderLine
from engine.core.window.settlement import Settlement

from engine.core.reconcile import Accepted, LedgerSide

from . import books_repo, bulk, reconcile_repo
from .schema import Account, Allocation, CorporateActionRow, Event, Fill, Holding as HoldingRow, Intent as IntentRow, \
    LotRow, Order, PolicyVersion, RealizedRow, Window, WindowAccount, WindowShard, aware, utcnow
from .store import Ledger
from .window_reports import _only, full_report, report_accounts  # noqa: F401 (their old home)

ZERO = Decimal(0)
CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class WindowInfo:
    id: int
    broker: str
    trading_date: date
    name: str
    step: str
    opened_at: datetime

    @property
    def coid_prefix(self) -> str:
        return f"pies-{self.trading_date:%Y%m%d}-{self.name}-w{self.id}"


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: int
    plan: OrderPlan
    client_order_id: str
    status: str
    fills: tuple[FillReport, ...] = ()

    def request(self) -> OrderRequest:
        p = self.plan
        return OrderRequest(self.client_order_id, p.symbol, p.side,
                            notional=None if p.notional is None else dollars(p.notional), qty=p.qty)


class WindowRepository:
    """`compiler` is the service layer's (engine/shell/policies.COMPILER): it turns a
    policy version's row into its compiled policy and finds rule sets; the repository keeps
    the result per version id, so every account of a version shares one."""

    def __init__(self, ledger: Ledger, broker: str, compiler=None):
        self.ledger = ledger
        self.broker = broker
        self.compiler = compiler
        self._policies: dict[int, object] = {}
        self.house_id: int | None = None          # a broker account's house never changes
        self._rules: dict[tuple[int, str], object] = {}
        self._pies: dict[tuple, object] = {}

    def open(self, day: date, name: str) -> tuple[WindowInfo, bool]:
        """The window of this broker account, day and name: found, or created (True)."""
        with self.ledger.tx() as s:
            w = s.scalars(select(Window).where(Window.broker == self.broker, Window.trading_date == day,
                                               Window.name == name)).first()
            created = w is None
            if w is None:
                w = Window(broker=self.broker, trading_date=day, name=name, step="opened")
                s.add(w)
                s.flush()
            return self._info(w), created

    def info(self, wid: int) -> WindowInfo:
        with self.ledger.tx() as s:
            return self._info(s.get(Window, wid))

    @staticmethod
    def _info(w: Window) -> WindowInfo:
        return WindowInfo(w.id, w.broker, w.trading_date, w.name, w.step, aware(w.opened_at))

    def time_step(self, wid: int, step: str, seconds: float) -> None:
        """How long a step took, kept in the report's `timings` (a window's duration per step)."""
        with self.ledger.tx() as s:
            w = s.get(Window, wid)
            report = dict(w.report or {})
            report["timings"] = {**report.get("timings", {}), step: seconds}
            w.report = report

    def report(self, wid: int, *, accounts: bool = True) -> dict:
        with self.ledger.tx() as s:
            w = s.get(Window, wid)
            return dict((full_report(s, w) if accounts else w.report) or {})

    @contextmanager
    def step(self, wid: int, done: str | None = None) -> Iterator["StepTx"]:
        """One transaction; when the block succeeds the window records `done` as its step."""
        with self.ledger.tx(autoflush=False) as s:
            tx = StepTx(s, self, wid)
            yield tx
            if done is not None:
                s.get(Window, wid).step = done

    # --- compiled policies (by the service layer's compiler), kept per version id ---

    def policy(self, s: Session, version_id: int):
        if version_id not in self._policies:
            if self.compiler is None:
                raise RuntimeError("this window repository was made without the service layer's policy compiler")
            self._policies[version_id] = self.compiler.version(s.get(PolicyVersion, version_id))
        return self._policies[version_id]

    def changes(self, s: Session) -> SymbolChanges:
        """The renames and gone symbols of the corporate actions this broker account applied."""
        return symbol_changes(applied_actions(s, self.broker))

    def pie(self, s: Session, version_id: int, name: str, changes: SymbolChanges):
        """A pie as the window plans it: slices of gone symbols excluded (kept per version,
        pie and changes)."""
        pie = self.policy(s, version_id).pies[name]
        if not changes.gone:
            return pie
        key = (version_id, name, changes.key())
        if key not in self._pies:
            self._pies[key] = without_gone(pie, changes)
        return self._pies[key]

    def ruleset(self, s: Session, version_id: int, name: str):
        key = (version_id, name)
        if key not in self._rules:
            v = s.get(PolicyVersion, version_id)
            found = self.compiler.ruleset(self.policy(s, version_id), name, v.sha256)
            if found is None:
                raise LookupError(f"no rule set named {name!r}")
            self._rules[key] = found
        return self._rules[key]


def _live(broker: str):
    return (Account.broker == broker) & Account.is_house.is_(False) & (Account.status != "closed")


def _triggering(s: Session, repo: WindowRepository, broker: str) -> list[tuple[int, str]]:
    """The (policy version, rule set) pairs whose rules may trigger a rebalance on their own
    (drift, calendar). The pairs are few; the database then picks their accounts."""
    pairs = s.execute(select(Account.policy_version_id, Account.rules).where(_live(broker)).distinct()).all()
    return [(v, r) for v, r in sorted(pairs)
            if (rs := repo.ruleset(s, v, r)).drift_threshold_bp is not None or rs.every is not None]


def _with_work(s: Session, repo: WindowRepository, broker: str, events_where):
    """Where-clause of the accounts with work: events matching `events_where`, or a
    triggering rule set. Accounts without work cost nothing but this query."""
    wanted = [Account.id.in_(select(Event.account_id).where(events_where))]
    if triggering := _triggering(s, repo, broker):
        wanted.append(tuple_(Account.policy_version_id, Account.rules).in_(triggering))
    return _live(broker) & or_(*wanted)


_ACCOUNT_COLUMNS = (Account.id, Account.name, Account.cash, Account.policy_version_id, Account.pie, Account.rules,
                    Account.last_rebalanced)


def accounts_to_plan(s: Session, repo: WindowRepository, broker: str, events_where, *, with_holdings: bool = True,
                     names: Sequence[str] | None = None, ids: Sequence[int] | None = None) -> list[AccountState]:
    """Accounts with events matching `events_where`, and those whose rules may trigger a
    rebalance on their own (drift, calendar), in id order. Only `names` when given; only
    `ids` (a shard of the plan set, chosen already) when given."""
    with_events: dict[int, list[WindowEvent]] = defaultdict(list)
    if ids is not None:
        # A shard is a range of ids: read by range (an index range scan), keep the chosen.
        lo, hi = (min(ids), max(ids)) if ids else (0, -1)
        chosen_ids = set(ids)
        events_where = events_where & Event.account_id.between(lo, hi)
        q = select(*_ACCOUNT_COLUMNS).where(_live(broker), Account.id.between(lo, hi))
    elif names is not None:
        q = select(*_ACCOUNT_COLUMNS).where(_live(broker), Account.name.in_(list(names)))
    else:
        q = select(*_ACCOUNT_COLUMNS).where(_with_work(s, repo, broker, events_where))
    for i, aid, kind, amount, path in bulk.fetch(s, select(Event.id, Event.account_id, Event.kind, Event.amount,
                                                           Event.path).where(events_where).order_by(Event.id)):
        with_events[aid].append(WindowEvent(i, aid, Kind(kind), None if amount is None else cents(amount), path))
    chosen = [r for r in bulk.fetch(s, q.order_by(Account.id)) if ids is None or r[0] in chosen_ids]
    held = load_holdings(s, [r[0] for r in chosen]) if with_holdings else {}
    changes = repo.changes(s)
    aliases = tuple(sorted((old, new) for old, (new, _) in changes.renamed.items()))
    return [AccountState(aid, name, cents(cash), repo.pie(s, version, pie, changes), repo.ruleset(s, version, rules),
                         tuple(held.get(aid, ())), tuple(with_events.get(aid, ())), last_rebalanced,
                         aliases=aliases)
            for aid, name, cash, version, pie, rules, last_rebalanced in chosen]


def _action(r: CorporateActionRow) -> CorporateAction:
    return CorporateAction(r.action_id, ActionKind(r.kind), r.symbol, r.effective, r.new_symbol, Decimal(r.old_rate),
                           Decimal(r.new_rate), Decimal(r.cash_rate), r.source_keeps)


def applied_actions(s: Session, broker: str | None) -> list[CorporateAction]:
    """The corporate actions a broker account's ledger applied (every broker account's when
    None, each action once), in effective-date then id order."""
    q = select(CorporateActionRow).order_by(CorporateActionRow.effective, CorporateActionRow.action_id,
                                            CorporateActionRow.broker)
    if broker is not None:
        q = q.where(CorporateActionRow.broker == broker)
    return list({r.action_id: _action(r) for r in s.scalars(q)}.values())


def plan_ids(s: Session, repo: WindowRepository, broker: str, events_where) -> list[int]:
    """The ids of the accounts a window plans, in order."""
    return list(s.scalars(select(Account.id).where(_with_work(s, repo, broker, events_where)).order_by(Account.id)))


def load_holdings(s: Session, account_ids: Iterable[int]) -> dict[int, list[Holding]]:
    """Non-zero holdings of these accounts, by account, in path order (CHUNK accounts a query)."""
    out: dict[int, list[Holding]] = defaultdict(list)
    ids = sorted(set(account_ids))
    for k in range(0, len(ids), CHUNK):
        for aid, path, sym, shares in bulk.fetch(s, select(HoldingRow.account_id, HoldingRow.path, HoldingRow.symbol,
                                                           HoldingRow.shares)
                                                    .where(bulk.id_in(s, HoldingRow.account_id, ids[k:k + CHUNK]))
                                                    .order_by(HoldingRow.account_id, HoldingRow.path)):
            if shares:
                out[aid].append(Holding(path, sym, shares))
    return out


def held_symbols(s: Session, broker: str) -> set[str]:
    """Symbols some account of `broker` holds. Walks the distinct symbols of the holdings'
    symbol index (a few hundred lookups however many holdings there are), then keeps those
    held under this broker account."""
    walk = text("""
        WITH RECURSIVE walk(symbol) AS (
            SELECT min(symbol) FROM holdings
            UNION ALL
            SELECT (SELECT min(h.symbol) FROM holdings h WHERE h.symbol > walk.symbol)
            FROM walk WHERE walk.symbol IS NOT NULL)
        SELECT symbol FROM walk WHERE symbol IS NOT NULL""")
    found = [sym for (sym,) in s.execute(walk)]
    return {sym for sym in found if s.execute(
        select(HoldingRow.account_id).join(Account, HoldingRow.account_id == Account.id)
        .where(HoldingRow.symbol == sym, Account.broker == broker).limit(1)).first()}


def preview(repo: WindowRepository, names: Sequence[str] | None = None) -> tuple[list[AccountState], dict]:
    """What the next window would plan right now: accounts with pending events (or the
    named ones) as the window would load them, and their current holdings by (account,
    path). Writes nothing."""
    with repo.ledger.tx() as s:
        pending = (Event.status == "pending") & Event.account_id.in_(
            select(Account.id).where(Account.broker == repo.broker))
        states = accounts_to_plan(s, repo, repo.broker, pending, names=names)
        held = {(a.id, h.path): h.shares for a in states for h in a.holdings}
        return states, held


def _key(prefix: str, action_id: str, account_id: int, path: str) -> str:
    """An event's idempotency key for an action's part in an account (a long path hashed)."""
    tail = hashlib.sha256(path.encode()).hexdigest()[:16] if path else "-"
    return f"{prefix}:{action_id}:{account_id}:{tail}"


class StepTx:
    """The reads and writes of one window step, in one open transaction."""

    def __init__(self, s: Session, repo: WindowRepository, wid: int):
        self.s = s
        self.repo = repo
        self.wid = wid
        self.broker = repo.broker

    @property
    def window(self) -> Window:
        return self.s.get(Window, self.wid)

    def _accounts_q(self):
        return select(Account).where(Account.broker == self.broker)

    def house(self, *, lock: bool = False) -> Account:
        """The house account; `lock`: its row locked and read afresh (shards that add to the
        house's cash or holdings take their turn). Found once per repository, then by id."""
        if self.repo.house_id is None:
            found = self.s.scalars(self._accounts_q().where(Account.is_house.is_(True))).first()
            if found is None:
                raise RuntimeError(f"broker account {self.broker!r} has no house account")
            self.repo.house_id = found.id
        if lock:
            return self.s.scalars(select(Account).where(Account.id == self.repo.house_id).with_for_update()
                                  .execution_options(populate_existing=True)).one()
        return self.s.get(Account, self.repo.house_id)

    def merge_report(self, **parts) -> None:
        w = self.window
        w.report = {**(w.report or {}), **parts}

    # --- collect ------------------------------------------------------------------------

    def last_trading_date(self) -> date | None:
        """The trading date of this broker account's previous window."""
        return self.s.scalars(select(Window.trading_date).where(Window.broker == self.broker, Window.id != self.wid)
                              .order_by(Window.trading_date.desc()).limit(1)).first()

    def unrecorded_dividends(self, activities: Iterable[CashActivity]) -> list[CashActivity]:
        """Broker dividends not split yet (the house's event key records each one once)."""
        return reconcile_repo.uncollected(self.s, activities)

    # --- reconcile (engine/core/reconcile.py decides) ------------------------------------

    def ledger_side(self) -> LedgerSide:
        return reconcile_repo.ledger_side(self.s, self.broker)

    def broker_adjustment(self):
        """What the broker should hold beyond what it reports (actions it does not apply)."""
        return reconcile_repo.broker_adjustment(self.s, self.broker)

    def order_windows(self, client_order_ids: Iterable[str]) -> dict[str, str]:
        return reconcile_repo.order_windows(self.s, client_order_ids)

    def acceptances(self) -> list[Accepted]:
        return reconcile_repo.acceptances(self.s, self.broker)

    def holders(self, symbol: str) -> list[tuple[int, str, Decimal]]:
        q = select(HoldingRow.account_id, HoldingRow.path, HoldingRow.shares) \
            .join(Account, HoldingRow.account_id == Account.id) \
            .where(HoldingRow.symbol == symbol, Account.broker == self.broker) \
            .order_by(HoldingRow.account_id, HoldingRow.path)
        return [tuple(r) for r in self.s.execute(q)]

    def record_dividend(self, act: CashActivity, split: DividendSplit, house: Account) -> None:
        rows = [{"account_id": aid, "key": f"div:{act.id}:{aid}", "kind": "dividend", "amount": dollars(c),
                 "status": "planned", "window_id": self.wid, "created_at": utcnow()} for aid, c in split.parts]
        if rows:
            self.s.execute(insert(Event), rows)
        house.cash += dollars(split.house_cents)
        self.s.add(Event(account_id=house.id, key=f"div:{act.id}:house", kind="dividend",
                         amount=dollars(split.house_cents), path=act.symbol, status="done", window_id=self.wid,
                         reason=f"broker activity {act.id}"))
        self.s.flush()

    def account_ids(self) -> dict[str, int]:
        return {n: i for n, i in self.s.execute(select(Account.name, Account.id).where(
            Account.broker == self.broker, Account.is_house.is_(False)))}

    def recorded(self, keys: Sequence[str]) -> set[str]:
        return set(self.s.scalars(select(Event.key).where(Event.key.in_(list(keys))))) if keys else set()

    def add_house_cash(self, amount: int) -> None:
        """Add `amount` cents (the core's figure) to the house's cash; the caller locked its row."""
        house = self.house()
        house.cash += dollars(amount)

    def house_cash(self, house: Account) -> HouseCash:
        """The house's cash and the pending deposits promised out of it."""
        pending = self.s.scalars(select(Event.amount).join(Account, Event.account_id == Account.id)
                                 .where(Event.kind == "deposit", Event.status == "pending",
                                        Account.broker == self.broker))
        return HouseCash(self.broker, cents(house.cash), cents(sum((a for a in pending if a is not None), ZERO)))

    def record_due(self, due: Sequence[DueDeposit]) -> None:
        for d in due:
            self.s.add(Event(account_id=d.account_id, key=d.key, kind="deposit", amount=dollars(d.cents),
                             window_id=self.wid, status="planned" if d.funded else "rejected",
                             reason=None if d.funded else f"the house has too little unowned cash for ${dollars(d.cents)}"))
        self.s.flush()

    def take_pending(self, opened: datetime) -> int:
        """Pending events recorded before the window opened join it (later ones wait for the
        next window), in one UPDATE that locks what it changes: an operator's cancel either
        lands before (the event is no longer pending and stays out) or waits and then finds
        the event planned. PostgreSQL re-checks `status = 'pending'` after such a wait;
        SQLite's BEGIN IMMEDIATE holds the whole database anyway."""
        if self.s.get_bind().dialect.name == "sqlite":
            opened = opened.astimezone(timezone.utc).replace(tzinfo=None)      # stored as naive UTC there
        mine = select(Account.id).where(Account.broker == self.broker)
        done = self.s.execute(update(Event).where(Event.status == "pending", Event.created_at < opened,
                                                  Event.account_id.in_(mine))
                              .values(status="planned", window_id=self.wid)
                              .execution_options(synchronize_session=False))
        return done.rowcount

    # --- corporate actions --------------------------------------------------------------------

    def held_symbols(self) -> list[str]:
        return sorted(held_symbols(self.s, self.broker))

    def applied_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(ids))
        return set(self.s.scalars(select(CorporateActionRow.action_id).where(
            CorporateActionRow.broker == self.broker, CorporateActionRow.action_id.in_(wanted)))) if wanted else set()

    def applied_actions(self) -> list[CorporateAction]:
        return applied_actions(self.s, self.broker)

    def actions_of_window(self) -> list[dict]:
        return [dict(r.summary or {}) for r in self.s.scalars(
            select(CorporateActionRow).where(CorporateActionRow.window_id == self.wid)
            .order_by(CorporateActionRow.effective, CorporateActionRow.action_id))]

    def action_book(self, symbols: Iterable[str]) -> Book:
        """The holding rows of `symbols` under this broker account (the house's included),
        locked: what a corporate action on them needs."""
        wanted = sorted(set(symbols))
        house = self.house(lock=True)
        rows = self.s.execute(select(HoldingRow.account_id, HoldingRow.path, HoldingRow.symbol, HoldingRow.shares)
                              .join(Account, HoldingRow.account_id == Account.id)
                              .where(Account.broker == self.broker, HoldingRow.symbol.in_(wanted))
                              .order_by(HoldingRow.account_id, HoldingRow.path).with_for_update(of=HoldingRow))
        held = tuple(Held(aid, path, sym, shares) for aid, path, sym, shares in rows)
        owners = sorted({h.account_id for h in held} - {house.id})
        return Book(house.id, held, lots=tuple(books_repo.load_lots(self.s, owners, wanted)) if owners else ())

    def paths_of(self, pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], str]:
        """The symbol each of these (account, path) rows holds now, for rows that exist."""
        out = {}
        for aid, path in sorted(set(pairs)):
            row = self.s.get(HoldingRow, (aid, path))
            if row is not None:
                out[(aid, path)] = row.symbol
        return out

    def save_action(self, moved: Applied, names: Mapping[int, str], adjustment=None) -> dict:
        """Persist one applied action: its holdings, the accounts' and the house's cash, an
        event in every affected account's history (the cash a slice got carries its path:
        the planner invests it in the parent pie), a liquidation for every slice of a new
        symbol that arrived, and the action's row (once: the primary key). `adjustment`
        (a BrokerAdjustment): the broker does not apply actions itself, and should hold
        this beyond what it reports from now on. Returns the summary kept for the report."""
        a = moved.action
        self.s.flush()
        # In bulk, a few statements per action whatever the number of accounts (COPY on
        # PostgreSQL): every touched holding row goes and the non-zero ones come back.
        touched = [(h.account_id, h.path) for h in moved.holdings]
        bulk.delete_rows(self.s, HoldingRow.__table__, ("account_id", "path"), touched)
        bulk.insert_rows(self.s, HoldingRow.__table__, ("account_id", "path", "symbol", "shares"),
                         [(h.account_id, h.path, h.symbol, h.shares) for h in moved.holdings if h.shares])
        # The lots the core moved: split, renamed, closed, re-based, or new (id 0).
        bulk.update_rows(self.s, LotRow.__table__, ("id",), ("symbol", "shares", "basis", "replaced", "closed"),
                         [(lot.id, lot.symbol, lot.shares, dollars(lot.basis), lot.replaced, not lot.shares)
                          for lot in moved.lots if lot.id])
        new_lots = [(lot.account_id, lot.symbol, lot.bought, lot.acquired, lot.shares, dollars(lot.basis),
                     dollars(lot.wash_adjustment), lot.replaced, self.wid, not lot.shares)
                    for lot in moved.lots if not lot.id]
        if new_lots:
            self.s.execute(insert(LotRow), [dict(zip(("account_id", "symbol", "bought", "acquired", "shares", "basis",
                                                      "wash_adjustment", "replaced", "window_id", "closed"), r))
                                            for r in new_lots])
        if moved.realized:
            self.s.execute(insert(RealizedRow), [
                {"account_id": r.account_id, "lot_id": r.lot_id, "symbol": r.symbol, "acquired": r.acquired,
                 "sold": r.sold, "shares": r.shares, "proceeds": dollars(r.proceeds), "basis": dollars(r.basis),
                 "window_id": self.wid} for r in moved.realized])
        if moved.cash:
            ids = [aid for aid, _ in moved.cash]
            now = {aid: c for aid, c in self.s.execute(select(Account.id, Account.cash).where(
                bulk.id_in(self.s, Account.id, ids)).with_for_update())}
            bulk.update_rows(self.s, Account.__table__, ("id",), ("cash",),
                             [(aid, now[aid] + dollars(c)) for aid, c in moved.cash])
        self.s.expire_all()              # rows the session holds were written around it
        text_ = describe(a)
        paid = dict(moved.cash)
        house_id = self.house().id
        rows = []
        for aid in moved.accounts:
            mine = [(path, c) for x, path, c in moved.proceeds if x == aid]
            for path, c in mine:
                rows.append({"account_id": aid, "key": _key("ca", a.id, aid, path), "kind": "corporate_action",
                             "amount": dollars(c), "path": path, "status": "planned", "window_id": self.wid,
                             "reason": text_, "created_at": utcnow()})
            if not mine:
                rows.append({"account_id": aid, "key": _key("ca", a.id, aid, ""), "kind": "corporate_action",
                             "amount": None, "path": None, "status": "planned", "window_id": self.wid,
                             "reason": text_, "created_at": utcnow()})
        for aid, path in moved.arrived:
            if aid != house_id:
                rows.append({"account_id": aid, "key": _key("ca-liq", a.id, aid, path), "kind": "liquidation",
                             "amount": None, "path": path, "status": "planned", "window_id": self.wid,
                             "reason": f"{text_}: {path} arrived; sold into its parent pie unless the policy "
                                       f"names it", "created_at": utcnow()})
        cols = ("account_id", "key", "kind", "amount", "path", "status", "window_id", "reason", "created_at")
        bulk.insert_rows(self.s, Event.__table__, cols, [tuple(r[c] for c in cols) for r in rows])
        house_shares = {h.symbol: str(h.shares) for h in moved.holdings if h.account_id == house_id}
        summary = {"id": a.id, "kind": a.kind.value, "symbol": a.symbol, "new_symbol": a.new_symbol,
                   "effective": a.effective.isoformat(), "description": text_,
                   "accounts": [names.get(aid, str(aid)) for aid in moved.accounts][:100],
                   "account_count": len(moved.accounts),
                   "cash": str(dollars(sum(c for aid, c in moved.cash if aid != house_id))),
                   "house_cash": str(dollars(paid.get(house_id, 0))), "house_shares": house_shares,
                   "liquidating": len([1 for aid, _ in moved.arrived if aid != house_id])}
        if adjustment is not None:
            summary["broker_adjustment"] = adjustment.to_json()
        if a.lieu_price:
            summary["lieu_price"] = str(a.lieu_price)
        if moved.prices:                 # what a basis allocation was made at
            summary["prices"] = {sym: str(p) for sym, p in moved.prices}
        self.s.add(CorporateActionRow(broker=self.broker, action_id=a.id, kind=a.kind.value, symbol=a.symbol,
                                      new_symbol=a.new_symbol, effective=a.effective, old_rate=str(a.old_rate),
                                      new_rate=str(a.new_rate), cash_rate=str(a.cash_rate),
                                      source_keeps=a.source_keeps, window_id=self.wid, summary=summary))
        self.s.flush()
        return summary

    def stale_names(self) -> list[str]:
        """Warnings for the slices of followed pies that name a renamed or gone symbol."""
        changes = self.repo.changes(self.s)
        if not changes:
            return []
        pies = [self.repo.policy(self.s, v).pies[pie] for v, pie in self.s.execute(
            select(Account.policy_version_id, Account.pie).where(_live(self.broker)).distinct()
            .order_by(Account.policy_version_id, Account.pie))]
        return stale_names(pies, changes)

    def account_names(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = sorted(set(ids))
        out: dict[int, str] = {}
        for k in range(0, len(wanted), 5_000):   # a statement's parameters are bounded (PostgreSQL: 65,535)
            out.update((i, n) for i, n in self.s.execute(select(Account.id, Account.name).where(
                bulk.id_in(self.s, Account.id, wanted[k:k + 5_000]))))
        return out

    # --- price and plan ---------------------------------------------------------------------

    def accounts_to_plan(self, *, with_holdings: bool = True, ids: Sequence[int] | None = None) -> list[AccountState]:
        """Accounts with events in this window, and those whose rules may trigger a
        rebalance on their own (drift, calendar), in id order (only `ids`, when given)."""
        return accounts_to_plan(self.s, self.repo, self.broker,
                                (Event.window_id == self.wid) & (Event.status == "planned"),
                                with_holdings=with_holdings, ids=ids)

    def recent_sales(self, account_ids: Sequence[int], since: date):
        """(account -> owner, the rows those owners sold since `since`), for `avoid wash-sales`."""
        from .losses import owners_recent_sales
        return owners_recent_sales(self.s, account_ids, since)

    def plan_set(self) -> list[int]:
        """The ids of the accounts this window plans, in order (what the shards split)."""
        return plan_ids(self.s, self.repo, self.broker, (Event.window_id == self.wid) & (Event.status == "planned"))

    def without_jit(self) -> None:
        """PostgreSQL's JIT off for the rest of this transaction. A shard's lookups of a few
        thousand keys in tables of millions are estimated costly enough to compile, and the
        compiling costs more than the query: at a million accounts, 266 ms of a 340 ms read
        of the lots a books shard's sales need (EXPLAIN ANALYZE)."""
        if bulk.on_postgres(self.s):
            self.s.execute(text("SET LOCAL jit = off"))

    def shard_done(self, step: str, shard: int) -> bool:
        return self.s.get(WindowShard, (self.wid, step, shard)) is not None

    def mark_shard(self, step: str, shard: int) -> None:
        self.s.add(WindowShard(window_id=self.wid, step=step, shard=shard))

    def holdings_of(self, account_ids: Iterable[int]) -> dict[int, list[Holding]]:
        return dict(load_holdings(self.s, account_ids))

    def symbols_to_price(self) -> list[str]:
        """The securities of every pie an account of this broker account follows, and every
        symbol one of its accounts holds (the house included)."""
        symbols: set[str] = set()
        changes = self.repo.changes(self.s)
        for v, pie in self.s.execute(select(Account.policy_version_id, Account.pie)
                                     .where(_live(self.broker)).distinct()):
            symbols.update(self.repo.compiler.symbols(self.repo.policy(self.s, v).pies[pie]))
        # A renamed symbol the policy still names is priced under its new name; a gone one not at all.
        symbols = {changes.current(sym) for sym in symbols} - set(changes.gone)
        return sorted(symbols | held_symbols(self.s, self.broker))

    def save_prices(self, prices: Mapping[str, Decimal]) -> None:
        self.window.prices = {k: str(v) for k, v in sorted(prices.items())}

    def prices(self) -> dict[str, Decimal]:
        return {k: Decimal(v) for k, v in (self.window.prices or {}).items()}

    def save_plans(self, plans: Sequence[AccountPlan]) -> None:
        kept = [p for p in plans if p.worth_recording]
        bulk.insert_rows(self.s, WindowAccount.__table__,
                         ("window_id", "account_id", "status", "reason", "cash_before", "deposits", "dividends",
                          "withdrawals", "rebalanced"),
                         ((self.wid, p.account_id, "planned" if p.planned else "rejected", p.note,
                           dollars(p.cash_before), dollars(p.deposits), dollars(p.dividends), dollars(p.withdrawals),
                           p.rebalanced) for p in kept))
        bulk.insert_rows(self.s, IntentRow.__table__,
                         ("window_id", "account_id", "path", "symbol", "planned", "amount", "sell_all", "events"),
                         ((self.wid, p.account_id, t.path, t.symbol, dollars(t.cents), dollars(t.cents), t.sell_all,
                           list(t.events) or None) for p in kept for t in p.trades), json_columns=("events",))
        self.save_outcomes([o for p in plans for o in p.decided])

    def save_outcomes(self, outcomes: Sequence[EventOutcome]) -> None:
        """Events' outcomes. A retried one is pending again (it keeps this window's id until
        the next window takes it, so this window's report still lists it)."""
        # A corporate action's event keeps its description when its outcome says nothing more.
        silent = sorted(o.event_id for o in outcomes if o.reason is None)
        described: set[int] = set()
        for k in range(0, len(silent), CHUNK):
            described.update(self.s.scalars(select(Event.id).where(bulk.id_in(self.s, Event.id, silent[k:k + CHUNK]),
                                                                   Event.kind == Kind.CORPORATE_ACTION.value)))
        bulk.update_rows(self.s, Event.__table__, ("id",), ("status", "reason", "cause"),
                         ((o.event_id, o.outcome.status, o.reason, o.cause and o.cause.value) for o in outcomes
                          if o.event_id not in described))
        bulk.update_rows(self.s, Event.__table__, ("id",), ("status", "cause"),
                         ((o.event_id, o.outcome.status, o.cause and o.cause.value) for o in outcomes
                          if o.event_id in described))

    # --- net, submit, settle ----------------------------------------------------------------

    def intents(self, symbols: Iterable[str] | None = None) -> tuple[dict[str, list[Intent]],
                                                                    dict[tuple[int, str], Decimal]]:
        """The window's intents by symbol (in id order), only of `symbols` when given, and
        the shares each intent's slice holds now (read with them; a slice with no holding
        row is absent, one with a zero row is there: allocation needs to know)."""
        by: dict[str, list[Intent]] = defaultdict(list)
        held: dict[tuple[int, str], Decimal] = {}
        q = select(IntentRow.id, IntentRow.account_id, IntentRow.path, IntentRow.symbol, IntentRow.planned,
                   IntentRow.amount, IntentRow.sell_all, HoldingRow.shares) \
            .outerjoin(HoldingRow, (HoldingRow.account_id == IntentRow.account_id) & (HoldingRow.path == IntentRow.path)) \
            .where(IntentRow.window_id == self.wid)
        if symbols is not None:
            wanted = sorted(set(symbols))
            if not wanted:
                return by, held
            q = q.where(IntentRow.symbol.in_(wanted))
        for i, aid, path, sym, planned, amount, sell_all, shares in bulk.fetch(self.s, q.order_by(IntentRow.id)):
            by[sym].append(Intent(i, aid, path, sym, cents(planned), cents(amount), sell_all))
            if shares is not None:
                held[(aid, path)] = shares
        return by, held

    def intent_counts(self, symbols: Iterable[str] | None = None) -> dict[str, int]:
        """Intents per symbol (only of `symbols` when given)."""
        q = select(IntentRow.symbol, func.count()).where(IntentRow.window_id == self.wid).group_by(IntentRow.symbol)
        counts = {sym: n for sym, n in self.s.execute(q)}
        return counts if symbols is None else {sym: counts[sym] for sym in symbols if sym in counts}

    def set_amounts(self, amounts: Mapping[int, int]) -> None:
        bulk.update_rows(self.s, IntentRow.__table__, ("id",), ("amount",),
                         ((k, dollars(v)) for k, v in sorted(amounts.items())))

    def save_orders(self, orders: Sequence[OrderPlan], prefix: str) -> None:
        for o in orders:
            self.s.add(Order(window_id=self.wid, client_order_id=client_order_id(prefix, o.symbol, o.side),
                             symbol=o.symbol, side=o.side, notional=None if o.notional is None else dollars(o.notional),
                             qty=o.qty, status="planned", phase=o.phase.value))
        self.s.flush()

    def orders(self, phase: Phase | None = None, *, statuses: Sequence[str] | None = None,
               with_fills: bool = False) -> list[StoredOrder]:
        q = select(Order).where(Order.window_id == self.wid)
        if phase is not None:
            q = q.where(Order.phase == phase.value)
        if statuses is not None:
            q = q.where(Order.status.in_(list(statuses)))
        rows = list(self.s.scalars(q.order_by(Order.symbol, Order.id)))
        fills: dict[int, list[FillReport]] = defaultdict(list)
        if with_fills and rows:
            for f in self.s.scalars(select(Fill).where(Fill.order_id.in_([o.id for o in rows]))
                                    .order_by(Fill.order_id, Fill.seq)):
                fills[f.order_id].append(FillReport(f.qty, cents(f.amount), f.price))
        return [StoredOrder(o.id, OrderPlan(o.symbol, o.side, Phase(o.phase),
                                            None if o.notional is None else cents(o.notional), o.qty),
                            o.client_order_id, o.status, tuple(fills.get(o.id, ()))) for o in rows]

    def mark(self, order_id: int, status: str, note: str | None = None) -> None:
        o = self.s.get(Order, order_id)
        o.status = status
        if note:
            o.note = note

    def fills_of(self, client_order_id: str) -> list[FillReport]:
        """The fill parts stored for an order, in order."""
        return [FillReport(q, cents(a), p) for q, a, p in self.s.execute(
            select(Fill.qty, Fill.amount, Fill.price).join(Order, Fill.order_id == Order.id)
            .where(Order.client_order_id == client_order_id).order_by(Fill.seq))]

    def record_state(self, st: OrderState, part: FillReport | None) -> None:
        """The broker's word on an order, and `part`, the part of its fill not stored yet
        (engine.core.window.allocation.new_fill), as the order's next fill."""
        o = self.s.scalars(select(Order).where(Order.client_order_id == st.client_order_id)).one()
        o.broker_id, o.status = st.broker_id, st.status
        o.filled_qty, o.filled_avg_price = st.filled_qty, st.filled_avg_price
        if st.note:
            o.note = st.note
        if part is not None:
            seq = self.s.scalar(select(func.count()).select_from(Fill).where(Fill.order_id == o.id))
            self.s.add(Fill(order_id=o.id, seq=seq + 1, qty=part.qty, price=part.price,
                            amount=dollars(part.cents)))
            self.s.flush()

    def drop_orders(self, phase: Phase, symbols: Sequence[str]) -> None:
        """Buy orders re-netted after scaling: the old ones are kept, renamed, as dropped."""
        for o in self.s.scalars(select(Order).where(Order.window_id == self.wid, Order.phase == phase.value,
                                                    Order.status != "dropped", Order.symbol.in_(list(symbols)))):
            o.status = "dropped"
            o.client_order_id = o.client_order_id + "-x"
        self.s.flush()

    # --- allocate -----------------------------------------------------------------------

    def intent_symbols(self) -> list[str]:
        """The symbols of the window's intents, sorted."""
        return sorted(self.s.scalars(select(IntentRow.symbol).where(IntentRow.window_id == self.wid).distinct()))

    def save_moves(self, moves: Sequence[Move], order_ids: Mapping[str, int],
                   after: Mapping[tuple[int, str], tuple[str, Decimal]],
                   held: Mapping[tuple[int, str], Decimal]) -> None:
        """The moves as allocation rows, and the holdings `after` them (the core's
        allocation.shares_after) as holding rows: a slice whose shares did not change is
        left alone, one without a row gets one, one that ends at zero loses its row (`held`
        says which rows exist)."""
        bulk.insert_rows(self.s, Allocation.__table__,
                         ("window_id", "order_id", "account_id", "path", "symbol", "shares", "amount"),
                         ((self.wid, order_ids.get(m.symbol), m.account_id, m.path, m.symbol, m.shares,
                           dollars(m.cents)) for m in moves))
        ups, ins, dels = [], [], []
        for (aid, path), (symbol, new) in sorted(after.items()):
            old = held.get((aid, path))
            if new == (old or ZERO):
                continue
            if old is None:
                ins.append((aid, path, symbol, new))
            elif new:
                ups.append((aid, path, new))
            else:
                dels.append((aid, path))
        t = HoldingRow.__table__
        bulk.update_rows(self.s, t, ("account_id", "path"), ("shares",), ups)
        bulk.insert_rows(self.s, t, ("account_id", "path", "symbol", "shares"), ins)
        bulk.delete_rows(self.s, t, ("account_id", "path"), dels)

    def all_held(self, account_ids: Iterable[int]) -> dict[tuple[int, str], Decimal]:
        """Every holding of these accounts, zero rows included (allocation needs to know a row exists)."""
        out: dict[tuple[int, str], Decimal] = {}
        ids = sorted(set(account_ids))
        for k in range(0, len(ids), CHUNK):
            for aid, path, shares in self.s.execute(select(HoldingRow.account_id, HoldingRow.path, HoldingRow.shares)
                                                    .where(bulk.id_in(self.s, HoldingRow.account_id, ids[k:k + CHUNK]))):
                out[(aid, path)] = shares
        return out

    # --- scale and close --------------------------------------------------------------------

    def cash_lines(self, ids: Sequence[int] | None = None) -> list[CashLine]:
        return [CashLine(aid, status == "planned", reason, cents(before), cents(deposits), cents(dividends),
                         cents(withdrawals), rebalanced)
                for aid, status, reason, before, deposits, dividends, withdrawals, rebalanced in bulk.fetch(self.s, select(WindowAccount.account_id, WindowAccount.status, WindowAccount.reason,
                                               WindowAccount.cash_before, WindowAccount.deposits,
                                               WindowAccount.dividends, WindowAccount.withdrawals,
                                               WindowAccount.rebalanced)
                                        .where(WindowAccount.window_id == self.wid,
                                               *_only(self.s, WindowAccount.account_id, ids))
                                        .order_by(WindowAccount.account_id))]

    def spent(self, ids: Sequence[int] | None = None) -> dict[int, int]:
        """Net cents each account (of `ids`) paid (+) or received (-) in this window's allocations."""
        return {aid: cents(total) for aid, total in
                bulk.sums_by(self.s, Allocation.account_id, Allocation.amount, Allocation.window_id == self.wid,
                             *_only(self.s, Allocation.account_id, ids)).items()}

    def settle_set(self) -> list[int]:
        """The accounts settlement goes over, in order: those with a window row or an event
        in this window (the same set whatever settlement already did)."""
        rows = set(self.s.scalars(select(WindowAccount.account_id).where(WindowAccount.window_id == self.wid)))
        rows.update(self.s.scalars(select(Event.account_id).where(Event.window_id == self.wid).distinct()))
        return sorted(rows - {self.house().id})        # the house settles once, after the shards

    def account_count(self) -> int:
        return self.s.scalar(select(func.count()).select_from(WindowAccount).where(WindowAccount.window_id == self.wid))

    def open_events(self, ids: Sequence[int] | None = None) -> list[WindowEvent]:
        return [WindowEvent(i, aid, Kind(kind), None if amount is None else cents(amount), path)
                for i, aid, kind, amount, path in bulk.fetch(self.s,
                    select(Event.id, Event.account_id, Event.kind, Event.amount, Event.path)
                    .where(Event.window_id == self.wid, Event.status == "planned",
                           *_only(self.s, Event.account_id, ids)).order_by(Event.id))]

    def save_settlement(self, st: Settlement, lines: Sequence[CashLine], trading_date: date,
                        closed: Sequence[int] = ()) -> None:
        """The accounts' side of a settlement: cash, withdrawals paid and events' outcomes;
        accounts whose close is done are closed. Each account's end of the window is kept
        in its window row (the report reads it). The house's side is the caller's."""
        if closed:
            self.s.execute(update(Account).where(Account.id.in_(list(closed))).values(status="closed")
                           .execution_options(synchronize_session=False))
        self.s.flush()
        rebalanced = {x.account_id for x in lines if x.planned and x.rebalanced}
        planned = {x.account_id for x in lines if x.planned}
        accounts = Account.__table__
        bulk.update_rows(self.s, accounts, ("id",), ("cash",),
                         ((a.account_id, dollars(a.cash)) for a in st.accounts if a.account_id not in rebalanced))
        bulk.update_rows(self.s, accounts, ("id",), ("cash", "last_rebalanced"),
                         ((a.account_id, dollars(a.cash), trading_date) for a in st.accounts
                          if a.account_id in rebalanced))
        bulk.update_rows(self.s, WindowAccount.__table__, ("window_id", "account_id"),
                         ("withdrawn", "cash_after", "advance"),
                         ((self.wid, a.account_id, dollars(a.withdrawn) if a.account_id in planned else None,
                           dollars(a.cash), dollars(a.advance) if a.advance else None) for a in st.accounts))
        self.save_outcomes(st.outcomes)

    def retried_events(self) -> list[tuple[int, int, str, str | None, str | None]]:
        """(event, account id, account name, path, reason) of the liquidations and closes this
        window's settlement left pending, for the report."""
        return [tuple(r) for r in self.s.execute(
            select(Event.id, Event.account_id, Account.name, Event.path, Event.reason)
            .join(Account, Event.account_id == Account.id)
            .where(Event.window_id == self.wid, Event.status == "pending",
                   Event.cause == Cause.LIQUIDATION_UNFINISHED.value))]

    def report_orders(self) -> list[OrderLine]:
        """The window's orders with the number of fill reports each, as the report's lines."""
        counts = {i: n for i, n in self.s.execute(select(Fill.order_id, func.count())
                                                  .join(Order, Fill.order_id == Order.id)
                                                  .where(Order.window_id == self.wid).group_by(Fill.order_id))}
        return [OrderLine(o.symbol, o.side, o.client_order_id, o.notional, o.qty, o.status, o.filled_qty,
                          o.filled_avg_price, o.note, counts.get(o.id, 0))
                for o in self.s.scalars(select(Order).where(Order.window_id == self.wid)
                                        .order_by(Order.phase.desc(), Order.symbol, Order.id))]

    def conservation_inputs(self) -> tuple[dict[str, Decimal], list, Decimal, list]:
        return holdings_and_cash(self.s, self.broker)

    # --- the books (adapters/ledger/books_repo.py) ----------------------------------------

    def net_moves(self) -> list[tuple[int, str, str, str]]:
        """(account, symbol, shares, cents) of this window's allocations summed per account
        and symbol where the shares do not net to zero (the house aside), by account and
        symbol; the shares as exact decimal text and the money as whole cents in text, for
        the runner to hand to the books' shards as they are (each nets its own with
        engine.core.books.net_trades). One pass over the window's allocations: the shards
        once read theirs by account, and an account's rows lie wherever its symbols'
        allocation shards wrote them, so at a million accounts every shard read most of the
        table's pages (docs/books.md, "What it costs")."""
        house = self.house().id
        if bulk.on_postgres(self.s):            # NUMERIC sums exactly in the database
            shares, amount = func.sum(Allocation.shares), func.sum(Allocation.amount)
            # Cents as text: two places times 100 is whole, and 28 digits fit NUMERIC(38, 0)
            # where a 64-bit integer could overflow.
            return bulk.fetch(self.s, select(Allocation.account_id, Allocation.symbol, cast(shares, Text),
                                             cast(cast(amount * 100, Numeric(38, 0)), Text))
                              .where(Allocation.window_id == self.wid, Allocation.account_id != house)
                              .group_by(Allocation.account_id, Allocation.symbol).having(shares != 0)
                              .order_by(Allocation.account_id, Allocation.symbol))
        # SQLite keeps exact text: the core's netting sums the rows (the same rule the shards apply).
        rows = self.s.execute(select(Allocation.account_id, Allocation.symbol, Allocation.shares, Allocation.amount)
                              .where(Allocation.window_id == self.wid, Allocation.account_id != house))
        return [(t.account_id, t.symbol, str(t.shares), str(t.cents))
                for t in net_trades((aid, sym, sh, cents(amount)) for aid, sym, sh, amount in rows)]

    def shared_owners(self, account_ids: Iterable[int]) -> dict[int, str]:
        """Every account of an owner with several accounts of whom one is among
        `account_ids` -> that owner (the books take whole owners; an account not in it is its
        own owner). Read from the owners' index, not account by account."""
        shared = books_repo.shared_owners(self.s)
        if shared:
            trading = set(account_ids)
            wanted = {who for aid, who in shared.items() if aid in trading}
            shared = {aid: who for aid, who in shared.items() if who in wanted}
        return shared

    def lot_methods(self, account_ids: Iterable[int]) -> dict[int, str]:
        """Each account's lot method, from its rule set (`lots ...`)."""
        ids = sorted(set(account_ids))
        out: dict[int, str] = {}
        for k in range(0, len(ids), CHUNK):
            for aid, version, rules in self.s.execute(select(Account.id, Account.policy_version_id, Account.rules)
                                                      .where(bulk.id_in(self.s, Account.id, ids[k:k + CHUNK]))):
                if version is not None:
                    out[aid] = self.repo.ruleset(self.s, version, rules).lot_method
        return out

    def book_inputs(self, accounts: Iterable[int], owners: Mapping[int, str], sales: Iterable[tuple[int, str]],
                    bought: Iterable[str], day: date) -> tuple[list, list]:
        """What booking a shard of whole owners needs (`accounts`: all of theirs; `owners`:
        those of owners with several -> owner): the lots of the selling (account, symbol)
        pairs and the selling owners' recent lots in the symbols they sold; the realized
        rows a buy of `bought` symbols may still wash."""
        return (books_repo.lots_for_sales(self.s, sales, owners, day),
                books_repo.washable(self.s, accounts, day, bought))

    def save_booking(self, booking) -> None:
        books_repo.save_booking(self.s, booking, self.wid)

def check_invariants(ledger: Ledger, broker: str, positions: Mapping[str, Decimal], cash: Decimal) -> list[str]:
    """Per broker account: slice holdings plus the house equal the broker's position in
    every symbol, and account cash plus house cash equals the broker's cash. Returns the
    discrepancies with their figures (empty when all agree); never fixes anything."""
    with ledger.tx() as s:
        owned, negative, ledger_cash, negative_cash = holdings_and_cash(s, broker)
        return discrepancies(broker, owned, positions, ledger_cash, cash, negative, negative_cash)


def holdings_and_cash(s: Session, broker: str) -> tuple[dict[str, Decimal], list, Decimal, list]:
    """Shares owned per symbol (accounts and house), negative holdings (account, path,
    symbol, shares), the ledger's cash and negative balances (account, cash) of a broker
    account: summed by the database where its numbers are exact."""
    s.flush()
    mine = select(Account.name, HoldingRow.path, HoldingRow.symbol, HoldingRow.shares) \
        .join(Account, HoldingRow.account_id == Account.id).where(Account.broker == broker)
    if s.bind.dialect.name == "sqlite":      # shares are exact text there: sum in Python
        owned: dict[str, Decimal] = {}
        negative = []
        for name, path, symbol, shares in s.execute(mine):
            owned[symbol] = owned.get(symbol, ZERO) + shares
            if shares < 0:
                negative.append((name, path, symbol, shares))
        cash = sum(s.scalars(select(Account.cash).where(Account.broker == broker)), ZERO)
    else:                                    # NUMERIC sums exactly in the database, in one pass
        sums = reconcile_repo.of_broker(s, select(HoldingRow.symbol, func.sum(HoldingRow.shares),
                                                  func.count().filter(HoldingRow.shares < 0)), broker)
        owned, below = {}, 0
        for sym, total, negatives in s.execute(sums.group_by(HoldingRow.symbol)):
            owned[sym] = Decimal(total)
            below += negatives
        negative = [tuple(r) for r in s.execute(mine.where(HoldingRow.shares < 0))] if below else []
        cash = Decimal(s.scalar(select(func.coalesce(func.sum(Account.cash), 0)).where(Account.broker == broker)))
    negative_cash = [tuple(r) for r in s.execute(select(Account.name, Account.cash)
                                                 .where(Account.broker == broker, Account.cash < 0))]
    return owned, negative, cash, negative_cash
