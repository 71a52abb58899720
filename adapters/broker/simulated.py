"""The simulated broker: the embedded default. No network, no keys, same port as Alpaca.

Its state (cash, positions, orders, cash activities) lives in a JSON file written
atomically after every change, so a restarted daemon finds the broker as it left it.
Prices come from a file or a seeded random walk per trading day; the calendar is weekdays
minus a holiday list, with early closes. Faults can be switched on for tests: partial
fills, rejected symbols, symbols that are not fractionable, transient errors, responses
lost after the order was placed, a delay before fills, and orders that end as Alpaca's
do (pending_new, rejected, canceled, expired, done_for_day, replaced: `fates`).
"""

from __future__ import annotations

import csv
import json
import os
import random
import tempfile
import threading
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from engine.core.corporate_actions import ActionKind
from engine.core.corporate_moves import APPLIED_KINDS, broker_after

from .action_file import read_actions
from .calendar import Exchange, Weekdays
from .port import (CENT, QTY, Asset, CorporateAction, Balance, BrokerError, Clock, CashActivity, MarketDay, OrderNotFound, OrderRejected,
                   OrderRequest, OrderState, Position, RetryLater, check_minimum, follow_replacements, whole_shares)

NY = ZoneInfo("America/New_York")
WALK_START = date(2026, 1, 2)


@dataclass
class SimulatedConfig:
    state_file: Path | None = None                  # None: in memory only
    starting_cash: Decimal = Decimal("100000.00")
    starting_positions: Mapping[str, Decimal] = field(default_factory=dict)
    prices_file: Path | None = None                 # CSV (symbol,price) or JSON {symbol: price}
    seed: int = 1
    slippage_bp: int = 0                            # buys pay, sells receive, this much worse
    holidays: frozenset[date] = frozenset()
    early_closes: Mapping[date, time] = field(default_factory=dict)
    calendar: str = "weekdays"                      # or an exchange, e.g. XNYS (holidays, early closes)
    fill_delay: float = 0.0                         # seconds after submission before a fill
    # Faults, for tests.
    partial: Mapping[str, Decimal] = field(default_factory=dict)   # symbol -> share filled
    reject: frozenset[str] = frozenset()
    not_fractionable: frozenset[str] = frozenset()
    not_tradable: frozenset[str] = frozenset()
    inactive: frozenset[str] = frozenset()         # listed, but no longer active (delisted)
    # symbol -> how its orders end, as Alpaca's statuses: "pending_new" (never routed: open
    # until cancelled), "rejected" or "canceled" (by the venue, after acceptance, nothing
    # filled), "expired" or "done_for_day" (after the part `partial` says, or none),
    # "replaced" (replaced before any fill by an order under another client order id, which
    # fills, or fills the part `partial` says).
    fates: Mapping[str, str] = field(default_factory=dict)
    transient_errors: int = 0                       # the next N calls raise RetryLater
    lose_responses: int = 0                         # the next N submissions place the order, then fail
    dividends: Mapping[str, Decimal] = field(default_factory=dict)  # symbol -> per share
    dividend_day: int = 15                          # paid the first trading day on/after this day
    journal_file: Path | None = None                # each order placed, one line (tests count submissions)
    corporate_actions_file: Path | None = None      # Alpaca's GET /v1/corporate-actions body (action_file.py)
    # False: behave as Alpaca's paper accounts (Alpaca-API #181): positions and cash stay as
    # they were on an action's day while prices move (the walk splits; a file is quoted).
    applies_corporate_actions: bool = True


class SimulatedBroker:
    name = "simulated"

    def __init__(self, config: SimulatedConfig | None = None, *,
                 now: Callable[[], datetime] | None = None, sleep: Callable[[float], None] = _time.sleep):
        self.config = config or SimulatedConfig()
        self._now = now or (lambda: datetime.now(NY))
        self._sleep = sleep
        self._lock = threading.RLock()
        self._fixed_prices = _read_prices(self.config.prices_file) if self.config.prices_file else {}
        # Read (and checked) before anything trades: a malformed file stops here.
        self._actions = read_actions(self.config.corporate_actions_file) if self.config.corporate_actions_file else []
        self.applies_corporate_actions = self.config.applies_corporate_actions
        self._walk: dict[tuple[str, date], Decimal] = {}
        self._walked: dict[str, date] = {}
        self._transient = self.config.transient_errors
        self._lose = self.config.lose_responses
        self.calls = 0                                  # submissions that reached the broker
        cfg = self.config
        self._calendar = Weekdays(frozenset(cfg.holidays), dict(cfg.early_closes)) if cfg.calendar == "weekdays" \
            else Exchange(cfg.calendar, frozenset(cfg.holidays))
        self._seen: tuple | None = None                 # the state file as last read or written
        self._state = self._load()

    # --- persistence ----------------------------------------------------------------------

    def _stamp(self) -> tuple | None:
        try:
            st = Path(self.config.state_file).stat()
        except (OSError, TypeError):
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _load(self) -> dict:
        path = self.config.state_file
        if path and Path(path).exists():
            self._seen = self._stamp()
            return json.loads(Path(path).read_text(encoding="utf-8"))
        return {"cash": str(self.config.starting_cash),
                "positions": {s: str(q) for s, q in self.config.starting_positions.items()}, "orders": {},
                "activities": [], "dividends_through": None, "seq": 0}

    def _save(self) -> None:
        path = self.config.state_file
        if not path:
            return
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._state, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:       # e.g. a read-only data directory: the broker cannot keep its books
            raise BrokerError(f"the simulated broker cannot write its state to {path}: {e.strerror or e}") from None
        self._seen = self._stamp()

    def _fresh(self) -> None:
        """Another process (one broker account, several pies processes over time) may have
        written the state since we read it: read it again rather than write over it."""
        if self.config.state_file and self._stamp() != self._seen:
            self._state = self._load()

    def _journal(self, client_order_id: str) -> None:
        if self.config.journal_file:
            with open(self.config.journal_file, "a", encoding="utf-8") as f:
                f.write(f"{client_order_id} pid={os.getpid()}\n")

    def _fault(self) -> None:
        if self._transient > 0:
            self._transient -= 1
            raise RetryLater("simulated transient error (503)")

    # --- calendar and clock ---------------------------------------------------------------

    def market_day(self, day: date) -> MarketDay | None:
        return self._calendar.market_day(day)

    def _next_day(self, day: date) -> MarketDay:
        for k in range(1, 15):
            md = self.market_day(day + timedelta(days=k))
            if md:
                return md
        raise RuntimeError("no trading day within two weeks; check the holiday list")  # pragma: no cover

    def clock(self) -> Clock:
        self._fault()
        now = self._now().astimezone(NY)
        today = self.market_day(now.date())
        is_open = bool(today and today.open <= now < today.close)
        if today and now < today.open:
            nxt_open = today.open
        else:
            nxt_open = self._next_day(now.date()).open
        nxt_close = today.close if today and now < today.close else self._next_day(now.date()).close
        return Clock(now, is_open, nxt_open, nxt_close)

    # --- prices and assets ----------------------------------------------------------------

    def _price(self, symbol: str, day: date) -> Decimal:
        """A quoted price: from the prices file as written (quoted prices: after a split, the
        file says the post-split price), else the random walk adjusted for the actions that
        took effect by `day` (a split divides it by the ratio; a renamed symbol continues
        its old name's walk)."""
        if symbol in self._fixed_prices:
            return self._fixed_prices[symbol]
        walked, factor = symbol, Decimal(1)
        for a in reversed(self._actions):              # latest first: follow a rename back
            if a.effective > day:
                continue
            if a.kind == ActionKind.NAME_CHANGE and a.new_symbol == walked:
                walked = a.symbol
            elif a.symbol == walked and a.new_symbol is None and a.kind in (
                    ActionKind.FORWARD_SPLIT, ActionKind.REVERSE_SPLIT, ActionKind.STOCK_DIVIDEND):
                factor = factor * a.old_rate / a.new_rate
        base = self._walk_price(walked, day)
        return base if factor == 1 else max(CENT, (base * factor).quantize(CENT))

    def _walk_price(self, symbol: str, day: date) -> Decimal:
        # A seeded random walk: the same seed, symbol and day always give the same price.
        d = day
        while not self.market_day(d) and d > WALK_START:
            d -= timedelta(days=1)
        if d <= WALK_START:
            rng = random.Random(f"{self.config.seed}:{symbol}")
            return Decimal(rng.randint(2000, 50000)).scaleb(-2)
        key = (symbol, d)
        if key not in self._walk:
            prev = self._walk_price(symbol, d - timedelta(days=1))
            step = random.Random(f"{self.config.seed}:{symbol}:{d.isoformat()}").randint(-200, 200)
            self._walk[key] = max(Decimal("1.00"), (prev * (10_000 + step) / 10_000).quantize(CENT))
        return self._walk[key]

    def latest_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        self._fault()
        today = self._now().astimezone(NY).date()
        for s in symbols:   # extend each walk day by day in order (no deep recursion)
            for w in {s} | {a.symbol for a in self._actions if a.new_symbol == s}:
                d = self._walked.get(w, WALK_START)
                while d < today:
                    d += timedelta(days=1)
                    self._walk_price(w, d)
                self._walked[w] = max(d, self._walked.get(w, WALK_START))
        return {s: self._price(s, today) for s in symbols}

    def assets(self, symbols: Sequence[str]) -> dict[str, Asset]:
        self._fault()
        cfg = self.config

        def one(s: str) -> Asset:
            note = ("inactive at the simulated broker" if s in cfg.inactive else
                    "not tradable at the simulated broker" if s in cfg.not_tradable else "")
            return Asset(s, not note, s not in cfg.not_fractionable, note)
        return {s: one(s) for s in symbols}

    def request_seconds(self, requests: int) -> float:
        return 0.0                                      # no rate limit here

    # --- orders ---------------------------------------------------------------------------

    def submit(self, order: OrderRequest) -> OrderState:
        check_minimum(order)
        with self._lock:
            self._fresh()
            self._fault()
            existing = self._state["orders"].get(order.client_order_id)
            if existing is not None:
                return _state(existing)
            if self._apply_actions():
                self._save()
            cfg = self.config
            s = order.symbol
            if s in cfg.reject or s in cfg.not_tradable or s in cfg.inactive:
                raise OrderRejected(f"{s}: order rejected by the broker", client_order_id=order.client_order_id,
                                    symbol=s)
            price = self.latest_prices([s])[s]
            note = ""
            if s in cfg.not_fractionable:
                order, note = whole_shares(order, price)
            cash = Decimal(self._state["cash"])
            held = Decimal(self._state["positions"].get(s, "0"))
            if order.side == "buy":
                cost = order.notional if order.notional is not None else (order.qty * price).quantize(CENT)
                if cost > cash:
                    raise OrderRejected(f"{s}: insufficient buying power (${cost} asked, ${cash} available)",
                                        client_order_id=order.client_order_id, symbol=s)
            else:
                qty = order.qty if order.qty is not None else order.notional / price
                if qty > held:
                    raise OrderRejected(f"{s}: insufficient qty available for order ({held} held)",
                                        client_order_id=order.client_order_id, symbol=s)
            self._state["seq"] += 1
            rec = {"client_order_id": order.client_order_id, "broker_id": f"sim-{self._state['seq']}",
                   "symbol": s, "side": order.side,
                   "notional": None if order.notional is None else str(order.notional),
                   "qty": None if order.qty is None else str(order.qty),
                   "status": "pending_new" if cfg.fates.get(s) == "pending_new" else "accepted",
                   "filled_qty": "0", "filled_avg_price": None, "note": note,
                   "submitted_at": self._now().isoformat()}
            self._state["orders"][order.client_order_id] = rec
            self.calls += 1
            self._save()
            self._journal(order.client_order_id)
            if self._lose > 0:
                self._lose -= 1
                raise RetryLater("simulated timeout after the order was placed")
            return _state(rec)

    def _apply_actions(self) -> bool:
        """Apply to the positions and cash each action of the file whose day has come (by
        the broker's clock, PIES_NOW), once each, in effective-date then id order."""
        if not self._actions or not self.config.applies_corporate_actions:
            return False
        today = self._now().astimezone(NY).date()
        done = self._state.setdefault("actions_applied", [])
        changed = False
        for a in self._actions:
            if a.effective > today or a.id in done or a.kind not in APPLIED_KINDS:
                continue
            positions = {s: Decimal(q) for s, q in self._state["positions"].items()}
            cash = int(Decimal(self._state["cash"]).scaleb(2))
            positions, cash = broker_after(a, positions, cash)
            self._state["positions"] = {s: str(q) for s, q in sorted(positions.items())}
            self._state["cash"] = str(Decimal(cash).scaleb(-2))
            done.append(a.id)
            changed = True
        return changed

    def _settle(self) -> None:
        """Apply the actions that took effect, fill what is due, expire partial fills at the
        close, pay dividends."""
        now = self._now()
        changed = self._apply_actions()
        cfg = self.config
        added: list[dict] = []
        for rec in self._state["orders"].values():
            if rec["status"] == "partially_filled":
                md = self.market_day(datetime.fromisoformat(rec["submitted_at"]).astimezone(NY).date())
                if md is None or now >= md.close:
                    rec["status"] = "expired"
                    changed = True
                continue
            if rec["status"] != "accepted":
                continue
            if (now - datetime.fromisoformat(rec["submitted_at"])).total_seconds() < cfg.fill_delay:
                continue
            s = rec["symbol"]
            share = cfg.partial.get(s)
            fate = None if rec.get("replaces") else cfg.fates.get(s)
            if fate in ("rejected", "canceled") or (fate in ("expired", "done_for_day") and share is None):
                rec["status"] = fate                    # ended by the venue, nothing filled
                changed = True
                continue
            if fate == "replaced":
                added.append(self._replacement(rec))
                rec.update(status="replaced", replaced_by=added[-1]["broker_id"])
                changed = True
                continue
            base = self._price(s, now.astimezone(NY).date())
            slip = Decimal(cfg.slippage_bp) / 10_000
            price = (base * (1 + slip if rec["side"] == "buy" else 1 - slip)).quantize(Decimal("0.0001"))
            if rec["qty"] is not None:
                qty = Decimal(rec["qty"])
            else:
                qty = (Decimal(rec["notional"]) / price).quantize(QTY, rounding=ROUND_DOWN)
            held = Decimal(self._state["positions"].get(s, "0"))
            if rec["side"] == "sell":
                qty = min(qty, held)
            if share is not None:
                qty = (qty * share).quantize(QTY, rounding=ROUND_DOWN)
            if share is None and rec["notional"] is not None:
                money = Decimal(rec["notional"])      # a filled notional order moves its notional
            else:
                money = (qty * price).quantize(CENT)
            cash = Decimal(self._state["cash"])
            if rec["side"] == "buy":
                cash -= money
                held += qty
            else:
                cash += money
                held -= qty
            self._state["cash"] = str(cash)
            self._state["positions"][s] = str(held)
            rec.update(status=fate if fate in ("expired", "done_for_day") else
                       "partially_filled" if share is not None else "filled",
                       filled_qty=str(qty), filled_avg_price=str(price))
            changed = True
        for rec in added:
            self._state["orders"][rec["client_order_id"]] = rec
        changed |= self._pay_dividends(now.astimezone(NY).date())
        if changed:
            self._save()

    def _pay_dividends(self, today: date) -> bool:
        """Each month, on the first trading day on or after `dividend_day`, pay every held
        symbol's dividend into cash and record it as a cash activity."""
        cfg = self.config
        if not cfg.dividends:
            return False
        through = self._state["dividends_through"]
        if through == today.isoformat():
            return False
        day = date.fromisoformat(through) + timedelta(days=1) if through else today
        months = self._state.setdefault("dividend_months", [])
        while day <= today:
            month = day.isoformat()[:7]
            if self.market_day(day) and day.day >= cfg.dividend_day and month not in months:
                months.append(month)
                for s, per_share in sorted(cfg.dividends.items()):
                    qty = Decimal(self._state["positions"].get(s, "0"))
                    amount = (qty * per_share).quantize(CENT, rounding=ROUND_DOWN)
                    if amount > 0:
                        self._state["cash"] = str(Decimal(self._state["cash"]) + amount)
                        self._state["activities"].append({"id": f"DIV-{day.isoformat()}-{s}", "kind": "dividend",
                                                          "day": day.isoformat(), "symbol": s, "amount": str(amount)})
            day += timedelta(days=1)
        self._state["dividends_through"] = today.isoformat()
        return True

    def _replacement(self, rec: dict) -> dict:
        """The order that replaces `rec` (as Alpaca's PATCH would: a new id and client order
        id, the same amount), placed now; it fills at the next look."""
        self._state["seq"] += 1
        seq = self._state["seq"]
        return {**rec, "client_order_id": f"sim-replacement-{seq}", "broker_id": f"sim-{seq}", "status": "accepted",
                "filled_qty": "0", "filled_avg_price": None, "replaces": rec["broker_id"],
                "submitted_at": self._now().isoformat()}

    def _chain(self, rec: dict) -> list[dict]:
        """`rec` and the orders that replaced it, oldest first."""
        by_id = {r["broker_id"]: r for r in self._state["orders"].values()}
        chain = [rec]
        while chain[-1].get("replaced_by") in by_id and len(chain) <= 10:
            chain.append(by_id[chain[-1]["replaced_by"]])
        return chain

    def _followed(self, rec: dict) -> OrderState:
        return follow_replacements([_state(r) for r in self._chain(rec)])

    def _record(self, client_order_id: str) -> dict:
        self._fault()
        self._settle()
        rec = self._state["orders"].get(client_order_id)
        if rec is None:
            raise OrderNotFound(f"no order with client order id {client_order_id!r}")
        return rec

    def order(self, client_order_id: str) -> OrderState:
        with self._lock:
            self._fresh()
            return self._followed(self._record(client_order_id))

    def cancel(self, client_order_id: str) -> OrderState:
        with self._lock:
            self._fresh()
            first = self._record(client_order_id)
            live = self._chain(first)[-1]             # a replaced order: its replacement
            if live["status"] in ("accepted", "pending_new", "new", "partially_filled"):
                live["status"] = "canceled"
                self._save()
            return self._followed(first)

    def orders_since(self, since: datetime) -> list[OrderState]:
        with self._lock:
            self._fresh()
            self._fault()
            self._settle()
            return [self._followed(r) for r in self._state["orders"].values()
                    if datetime.fromisoformat(r["submitted_at"]) >= since and not r.get("replaces")]

    def wait(self, client_order_ids: Sequence[str], timeout: float) -> dict[str, OrderState]:
        deadline = _time.monotonic() + timeout
        pause = 0.05
        while True:
            states = {c: self.order(c) for c in client_order_ids}
            if all(s.terminal for s in states.values()) or _time.monotonic() >= deadline:
                return states
            self._sleep(min(pause, max(0.0, deadline - _time.monotonic())))
            pause = min(pause * 2, 2.0)

    # --- account --------------------------------------------------------------------------

    def positions(self) -> dict[str, Position]:
        with self._lock:
            self._fresh()
            self._fault()
            self._settle()
            held = {s: Decimal(q) for s, q in self._state["positions"].items() if Decimal(q)}
            prices = self.latest_prices(list(held)) if held else {}
            return {s: Position(s, q, (q * prices[s]).quantize(CENT)) for s, q in held.items()}

    def balance(self) -> Balance:
        with self._lock:
            self._fresh()
            self._fault()
            self._settle()
            cash = Decimal(self._state["cash"])
            equity = cash + sum((p.market_value for p in self.positions().values()), Decimal("0"))
            return Balance(cash, cash, equity)

    def corporate_actions(self, symbols: Sequence[str], start: date, end: date) -> list[CorporateAction]:
        """The file's actions on `symbols` (their source or the symbol shares arrive in)
        taking effect from `start` to `end`, in effective-date then id order."""
        self._fault()
        wanted = set(symbols)
        return [a for a in self._actions if (a.symbol in wanted or a.new_symbol in wanted)
                and start <= a.effective <= end]

    def cash_activities(self, since: datetime) -> list[CashActivity]:
        with self._lock:
            self._fresh()
            self._fault()
            self._settle()
            start = since.astimezone(NY).date()
            return [CashActivity(a["id"], a["kind"], date.fromisoformat(a["day"]), a["symbol"], Decimal(a["amount"]))
                    for a in self._state["activities"] if date.fromisoformat(a["day"]) >= start]


def _state(rec: dict) -> OrderState:
    return OrderState(rec["client_order_id"], rec["broker_id"], rec["symbol"], rec["side"], rec["status"],
                      None if rec["notional"] is None else Decimal(rec["notional"]),
                      None if rec["qty"] is None else Decimal(rec["qty"]),
                      Decimal(rec["filled_qty"]),
                      None if rec["filled_avg_price"] is None else Decimal(rec["filled_avg_price"]),
                      rec.get("note", ""))


def _read_prices(path: Path) -> dict[str, Decimal]:
    """symbol,price lines (a header is allowed) or a JSON object {symbol: price}."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix.lower() == ".json":
        return {s: Decimal(str(p)) for s, p in json.loads(text).items()}
    out: dict[str, Decimal] = {}
    for row in csv.reader(text.splitlines()):
        if len(row) >= 2 and row[0].strip() and row[0].strip().lower() != "symbol":
            out[row[0].strip()] = Decimal(row[1].strip())
    return out
