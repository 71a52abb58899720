"""The service layer: what the CLI and the HTTP API both call. Typed commands (record a
deposit, a withdrawal, a dividend, a rebalance; cancel; apply a policy) and queries
(accounts, an account, its history, windows, status, plans), each returning the JSON-ready
dict both front ends print or send, so the two can never disagree. No SQL here: the
ledger (adapters/ledger) does that; amounts go out as strings.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from adapters.ledger.access import Access
from adapters.ledger.store import Ledger, LedgerError
from config.settings import Settings
from engine.core.errors import BrokerUnavailable, Conflict, NotFound
from engine.core.drift import max_drift_bp, slice_rows
from engine.core.money import dollars, fmt
from engine.shell import policies

Prices = Callable[[list[str]], dict[str, Decimal]]


def event_json(e) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "amount": None if e.amount is None else str(e.amount), "path": e.path,
            "status": e.status, "reason": e.reason, "key": e.key, "recorded_at": e.created_at.isoformat()}


class NotAPolicyFile(LedgerError):
    """A file the settings do not name was asked to be planned or applied over the network."""


class StalePlan(Conflict):
    """The file changed since the plan that was approved: plan again."""


class Service:
    """`live_prices` asks the broker (only when a caller wants live prices, or no window has
    priced a symbol yet)."""

    def __init__(self, settings: Settings, ledger: Ledger, live_prices: Prices):
        self.settings = settings
        self.ledger = ledger
        self.live_prices = live_prices
        self.access = Access(ledger)         # tokens and the audit log, for the API and the console

    # --- prices -----------------------------------------------------------------------------

    def valuation(self, symbols: list[str], live: bool = False, broker: str | None = None) -> dict[str, Decimal]:
        """The broker account's last window's prices (no broker call) unless `live`; the
        broker's for symbols no window priced yet."""
        prices = {} if live else self.ledger.last_prices(broker or self.settings.broker_name)
        missing = [sym for sym in symbols if sym not in prices]
        return {**prices, **self.live_prices(missing)} if missing else prices

    # --- queries ------------------------------------------------------------------------------

    def accounts(self, *, page: int = 1, size: int = 0, search: str = "", live: bool = False) -> dict[str, Any]:
        """Accounts by name (a page of them when `size`), with value, cash, largest drift and
        pending events; the selection and counting are done by the database."""
        if page < 1 or size < 0 or size > 1000:
            raise LedgerError("page starts at 1 and size is 0 (all) to 1000")
        total, accts = self.ledger.account_page(search, (page - 1) * size if size else 0, size or None)
        pending = self.ledger.pending_counts([a.name for a in accts])
        prices = self.valuation(self.ledger.symbols(), live)
        rows = []
        for a in accts:
            _, pie, _ = policies.policy_of(self.ledger, a.name)
            values = self.ledger.values(a.name, prices)
            d = max_drift_bp(slice_rows(pie, values))
            rows.append({"account": a.name, "pie": a.pie, "broker": a.broker, "status": a.status,
                         "value": fmt(sum(values.values())), "cash": str(a.cash),
                         "max_drift": None if d is None else f"{fmt(d)}%", "pending": pending.get(a.name, 0)})
        return {"accounts": rows, "total": total, "page": page, "size": size}

    def account(self, name: str, *, live: bool = False) -> dict[str, Any]:
        acct, pie, _ = policies.policy_of(self.ledger, name)
        held = self.ledger.holdings(name)
        values = self.ledger.values(name, self.valuation(sorted({sym for sym, q in held.values() if q}), live,
                                                         acct.broker))
        pending = [e for e, _ in self.ledger.events(name, status="pending")]
        rows = slice_rows(pie, values)
        outside = sorted(set(values) - {r.path for r in rows})
        return {"account": acct.name, "pie": pie.name, "rules": acct.rules, "broker": acct.broker,
                "status": acct.status, "cash": str(acct.cash), "value": fmt(sum(values.values())),
                "slices": [{"path": r.path, "name": r.name, "pie": r.is_pie, "target": f"{fmt(r.target_bp)}%",
                            "actual": None if r.share_bp is None else f"{fmt(r.share_bp)}%",
                            "drift": None if r.drift_bp is None else fmt(r.drift_bp, signed=True),
                            "value": fmt(r.value), "shares": str(held[r.path][1]) if r.path in held else None}
                           for r in rows],
                "not_in_pie": [{"path": p, "value": fmt(values[p])} for p in outside],
                "pending": [event_json(e) for e in pending]}

    def history(self, name: str) -> dict[str, Any]:
        events = self.ledger.events(name)
        trades = self.ledger.trades(name)
        return {"account": name, "events": [event_json(e) for e, _ in events], "trades": [
            {"day": d.isoformat(), "window": w, "slice": p, "symbol": sym, "shares": str(q), "cash": str(-a)}
            for d, w, p, sym, q, a in trades]}

    def pending_events(self, *, page: int = 1, size: int = 100) -> dict[str, Any]:
        """Every account's pending events, oldest first, a page of `size` at a time."""
        if page < 1 or not 1 <= size <= 1000:
            raise LedgerError("page starts at 1 and size is 1 to 1000")
        total, rows = self.ledger.pending_page((page - 1) * size, size)
        return {"events": [{**event_json(e), "account": name} for e, name in rows], "total": total, "page": page,
                "size": size}

    def windows(self, limit: int = 30) -> dict[str, Any]:
        return {"windows": self.ledger.windows(limit)}

    def window(self, window_id: int, page: int | None = None, size: int = 100) -> dict[str, Any]:
        """A window and its report: every account's lines, or page `page` of `size` accounts."""
        return self.ledger.window(window_id, page, size)

    def _window_setting(self, name: str | None):
        ws = self.settings.windows
        if not ws:
            raise NotFound("no windows in the settings ([[windows]])")
        if name is None:
            return ws[0]
        for w in ws:
            if w.name == name:
                return w
        raise NotFound(f"no window named {name!r} in the settings (windows: {', '.join(w.name for w in ws)})")

    def window_on(self, *, name: str | None = None, broker: str | None = None, day=None) -> dict[str, Any]:
        """A window by its day (default: today in its time zone) and name."""
        from engine.shell import clock
        w = self._window_setting(name)
        when = day or clock.today(w.timezone)
        found = self.ledger.window_of(broker or self.settings.broker_name, when, w.name)
        if found is None:
            raise NotFound(f"no window {w.name!r} on {when}")
        return found

    def run_window(self, *, name: str | None = None, broker: str | None = None, day=None, replay: bool = False,
                   force: bool = False, holder: str | None = None) -> dict[str, Any]:
        """Run (or resume) a window to its end: start_window, then its run."""
        started = self.start_window(name=name, broker=broker, day=day, replay=replay, force=force, holder=holder)
        return started if isinstance(started, dict) else started.run()

    def start_window(self, *, name: str | None = None, broker: str | None = None, day=None, replay: bool = False,
                     force: bool = False, holder: str | None = None) -> "dict[str, Any] | WindowStart":
        """Get a window ready to run: today's in its time zone. A past day only to resume a
        window that was opened and never closed (`replay`), never a future day, and a closed
        market day only when forced. A window that closed already is not run again: its
        row and report come back with `already_closed`. Otherwise the broker account's
        window lock is taken first (a Conflict naming the holder when a window of it
        runs elsewhere), then the broker opened and the window's row opened; the caller
        runs it (WindowStart.run, here or in a thread) or releases it."""
        from adapters.ledger.locks import WindowLock, describe_process
        from engine.shell import clock
        from engine.shell.window import WindowRunner
        from engine.shell.wiring import ensure_house, open_broker, window_options
        w = self._window_setting(name)
        b = self.settings.broker_named(broker) if broker else self.settings.broker
        today = clock.today(w.timezone)
        when = day or today

        def closed() -> dict[str, Any] | None:
            row = self.ledger.window_of(b.name, when, w.name)
            return {**row, "already_closed": True} if row is not None and row["step"] == "closed" else None

        done = closed()
        if done:
            return done
        if when > today:
            raise LedgerError(f"{when} is in the future (today is {today} in {w.timezone})")
        if when < today and not (replay and self.ledger.window_of(b.name, when, w.name) is not None):
            raise LedgerError(f"{when} is past (today is {today} in {w.timezone}): only a window that was opened "
                              f"and never closed can be resumed, with --replay")
        lock = WindowLock(self.ledger, b.name, holder=describe_process(holder) if holder else None,
                          data_dir=self.settings.data_dir)
        lock.acquire()                   # before the broker is opened: a refused caller touches nothing
        try:
            done = closed()              # it may have closed while we asked
            if done:
                lock.release()
                return done
            broker_ = open_broker(self.settings, b.name)
            if not force and broker_.market_day(when) is None:
                raise LedgerError(f"the market is closed on {when} (use --force to run anyway)")
            ensure_house(self.ledger, broker_, b.name)
            runner = WindowRunner(self.ledger, broker_, b.name, window_options(self.settings, b.name))
            info = runner.open(when, w.name)
        except BaseException:
            lock.release()
            raise
        return WindowStart(self, runner, lock, when, w.name, b.name, info.id)

    def status(self) -> dict[str, Any]:
        """The next window of each broker account, pending events per account, and each
        broker account's last window."""
        from engine.shell import clock
        from engine.shell.schedule import upcoming_windows
        from engine.shell.wiring import open_broker
        now = clock.now()
        pending = self.ledger.pending_counts()
        windows = self.ledger.windows(200)
        kinds = {b.name: b.kind for b in self.settings.brokers}
        brokers = [{"broker": b["broker"], "kind": kinds[b["broker"]], "next": b["next"],
                    "last_window": next((w for w in windows if w["broker"] == b["broker"]), None),
                    "error": b["error"]}
                   for b in upcoming_windows(self.settings, now,
                                             lambda name: open_broker(self.settings, name).market_day, windows)]
        return {"now": now.isoformat(), "brokers": brokers,
                "pending": [{"account": n, "events": c} for n, c in sorted(pending.items())]}

    def plan(self, name: str | None = None) -> dict[str, Any]:
        """What the next window would trade right now, at current prices, for one account
        (or every account it would plan, with the orders netted across them). Writes nothing."""
        from adapters.ledger.window_repo import WindowRepository, preview
        from engine.core.window.model import Intent
        from engine.core.window.netting import net_symbols
        from engine.core.window.planning import plan_account
        from engine.shell import clock
        from rules.model import Security
        if name:
            policies.policy_of(self.ledger, name)             # an unknown name is refused here
        states, held = preview(WindowRepository(self.ledger, self.settings.broker_name, policies.COMPILER),
                               [name] if name else None)
        symbols = sorted({h.symbol for a in states for h in a.holdings}
                         | {sl.symbol for a in states for _, sl in a.pie.walk() if isinstance(sl, Security)})
        prices = self.live_prices(symbols) if symbols else {}
        day = clock.today()
        plans = [plan_account(a, prices, day) for a in states]
        by_symbol: dict[str, list[Intent]] = {}
        for p in plans:
            for t in p.trades:
                i = Intent(sum(map(len, by_symbol.values())) + 1, p.account_id, t.path, t.symbol, t.cents, t.cents,
                           t.sell_all)
                by_symbol.setdefault(t.symbol, []).append(i)
        netting = net_symbols(by_symbol, held, prices, self.settings.min_order_cents)
        names = {a.id: a.name for a in states}
        return {"day": day.isoformat(), "accounts": [{
            "account": names[p.account_id], "status": "planned" if p.planned else "refused", "reason": p.reason,
            "closing": p.closing, "cash": fmt(p.cash_before), "deposits": fmt(p.deposits), "dividends": fmt(p.dividends),
            "withdrawals": fmt(p.withdrawals), "rebalance": p.rebalanced,
            "trades": [{"slice": t.path, "symbol": t.symbol, "side": "buy" if t.cents > 0 else "sell",
                        "amount": fmt(abs(t.cents)), "whole_holding": t.sell_all} for t in p.trades],
            "events": [{"id": o.event_id, "outcome": o.outcome.value, "reason": o.reason} for o in p.decided]}
            for p in plans if p.worth_recording or name],
            "orders": [{"symbol": o.symbol, "side": o.side, "notional": None if o.notional is None else fmt(o.notional),
                        "qty": None if o.qty is None else str(o.qty)} for o in netting.orders]}

    # --- commands -------------------------------------------------------------------------------

    def record(self, kind: str, name: str, cents: int | None = None, *, path: str = "",
               key: str | None = None) -> dict[str, Any]:
        """Record a deposit, withdrawal, dividend or rebalance for the next window. The front
        end parsed the amount (engine.core.money.parse_dollars): it comes in as cents."""
        if kind == "rebalance":
            rec = policies.rebalance(self.ledger, name, path, key=key)
            parsed = None
        else:
            if kind not in ("deposit", "withdrawal", "dividend"):
                raise LedgerError(f"kind {kind!r} must be deposit, withdrawal, dividend or rebalance")
            if type(cents) is not int or cents <= 0:        # a front end that skipped the parser
                raise TypeError(f"a {kind}'s amount is positive cents, not {cents!r}")
            parsed = dollars(cents)
            if kind == "deposit":
                rec = self.ledger.deposit(name, parsed, key=key)
            elif kind == "withdrawal":
                acct = next((a for a in self.ledger.accounts() if a.name == name), None)
                symbols = sorted({sym for sym, q in self.ledger.holdings(name).values() if q}) if acct else []
                rec = self.ledger.withdraw(name, parsed, self.valuation(symbols, broker=acct.broker if acct else None),
                                           key=key)
            else:
                # No key, a new event every time: two dividends of one amount are two dividends.
                rec = self.ledger.dividend(name, parsed, key=key, most=Decimal(self.settings.max_dividend_cents).scaleb(-2))
        return {"event": rec.event_id, "created": rec.created, "kind": kind, "account": name,
                "amount": None if parsed is None else str(parsed),
                "amount_text": None if parsed is None else f"${fmt(cents, commas=True)}",
                "path": path or None}

    def add_accounts(self, rows: list[dict[str, str]], *, label: Callable[[int], str] = str) -> dict[str, Any]:
        """Open many accounts at once, all or none (see policies.add_accounts); an account that
        exists already as asked is left as it is. The first account of a broker account
        asks the broker for the house's holdings."""
        from config.settings import SettingsError
        from engine.shell.wiring import ensure_house, open_broker
        errors, brokers = [], set()
        for i, r in enumerate(rows):
            b = (r.get("broker") or "").strip() or self.settings.broker_name
            try:
                brokers.add(self.settings.broker_named(b).name)
            except SettingsError as e:
                errors.append(f"{label(i)}: {e}")
        if errors:
            raise LedgerError("; ".join(errors[:20]))
        for b in sorted(brokers):
            if self.ledger.house(b) is None:
                ensure_house(self.ledger, open_broker(self.settings, b), b)
        done = policies.add_accounts(self.ledger, rows, label=label, broker=self.settings.broker_name,
                                        policy_file=self.settings.policy_files[0] if self.settings.policy_files else None)
        return {"accounts": [{"account": n, "created": c} for n, c in done],
                "created": sum(1 for _, c in done if c), "existing": sum(1 for _, c in done if not c)}

    def cancel(self, event_id: int) -> dict[str, Any]:
        e = self.ledger.cancel(event_id)
        return {"event": e.id, "status": e.status}

    # --- policies: the same plan and apply for the API, the console and the CLI ------------------

    def policy_file(self, file: str) -> str:
        """A policy file of the settings by its path or its name (resolved); any other file
        is refused: a network caller plans and applies only what the settings name."""
        wanted = policies.resolve(file)
        for f in self.settings.policy_files:
            resolved = policies.resolve(f)
            if resolved == wanted or Path(f).name == file:
                return resolved
        raise NotAPolicyFile(f"{file!r} is not one of the policy files in the settings "
                             f"({', '.join(Path(f).name for f in self.settings.policy_files)})")

    def plan_policy(self, file: str):
        """What applying a settings policy file's current text would do (a ChangePlan);
        writes nothing. PolicyError when it does not compile."""
        path, text = policies.read(self.policy_file(file))
        return policies.plan(self.ledger, path, text, self.live_prices)

    def apply_policy(self, file: str, sha256: str, *, caller=None, source: str) -> dict[str, Any]:
        """Apply a settings policy file, only if its text is still the one whose plan was
        approved (`sha256`, StalePlan otherwise). The outcome is audited under `caller`
        (the API's and the console's), refusals too."""
        path = self.policy_file(file)
        args = {"file": path, "sha256": sha256}
        try:
            _, text = policies.read(path)
            sha = policies.sha_of(text)
            if sha != sha256:
                raise StalePlan(f"{path} has sha256 {sha[:12]}; plan it again and apply that")
            applied = policies.apply(self.ledger, path, text, source=source)
        except Exception as e:
            if caller is not None:
                self.access.audit(caller, "apply policy", args,
                                  f"refused: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            raise
        if caller is not None:
            self.access.audit(caller, "apply policy", args, "ok")
        return {"file": path, "version": applied.version.id, "sha256": applied.version.sha256,
                "queued": applied.queued, "accounts": applied.accounts, "liquidations": applied.liquidations}

class WindowStart:
    """A window ready to run: its broker account's window lock held, its row opened."""

    def __init__(self, service: Service, runner, lock, day, name: str, broker: str, window_id: int):
        self.service, self.runner, self.lock = service, runner, lock
        self.day, self.name, self.broker, self.window_id = day, name, broker, window_id

    def run(self) -> dict[str, Any]:
        """Run it to its end (releasing the lock however it ends): the window's row and report."""
        from engine.shell.window import WindowPaused
        try:
            self.runner.run(self.day, self.name, lock=self.lock)
        except WindowPaused as e:
            raise BrokerUnavailable(f"window paused: {e}; run it again to resume") from None
        finally:
            self.lock.release()
        return {**self.service.ledger.window_of(self.broker, self.day, self.name), "already_closed": False}

    def release(self) -> None:
        self.lock.release()
