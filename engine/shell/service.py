"""The service layer: the one door the CLI, the HTTP API, the console and the daemon call
for every command (record an event, cancel it, open, move or close an account, import a
file, run a window, tokens) and query (accounts, an account, its history, windows, status,
plans, policy versions, the audit log), each returning the JSON-ready dict the front ends
print or send, so they can never disagree. Writes made for a caller of the API or the
console are audited here (`audited`). No SQL here: the ledger (adapters/ledger) does that;
amounts go out as strings.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import rules as policy_lang
from adapters.ledger import window_reports
from adapters.ledger.store import AccountRows, Ledger, LedgerError
from config.settings import Settings
from engine.core.drift import MissingPrice, max_drift_bp, slice_rows, slice_values
from engine.core.errors import BrokerUnavailable, Conflict, NotFound, PiesError, Refused
from engine.core.money import MoneyError, dollars, fmt, parse_dollars
from engine.core.tax_preview import NONE as TAX_NONE
from engine.shell import policies
from rules.model import Pie

Prices = Callable[[list[str]], dict[str, Decimal]]
MAX_REASON = 500                 # characters of an operator's reason for accepting a break
# What a refused write is (a user's or the broker's): audited as "refused: ...".
AUDITED_REFUSALS = (PiesError, policy_lang.PolicyError)


def date_of(text: str):
    from datetime import date
    return date.fromisoformat(text)


def event_json(e) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "amount": None if e.amount is None else str(e.amount), "path": e.path,
            "status": e.status, "reason": e.reason, "key": e.key, "recorded_at": e.created_at.isoformat()}


def shares_text(q: Decimal) -> str:
    """Shares as the books print them: always 9 decimals ("1.234567890")."""
    return f"{q.quantize(Decimal('0.000000001')):f}"


def safe_name(text: str) -> str:
    """A name fit for a download's file name (letters, digits, - and _ only)."""
    import re
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text)[:60] or "_"


FORM_8949 = ("description", "date acquired", "date sold", "proceeds", "cost basis", "code", "adjustment",
             "gain or loss", "term")


def gains_csv(doc: dict[str, Any]) -> str:
    """A gains document as CSV in Form 8949's column order ((a) description to (h) gain or
    loss; code W and the disallowed loss as the adjustment where a wash sale applies), the
    term last; dates as the form writes them (MM/DD/YYYY). The same bytes from every door."""
    import csv
    import io
    from datetime import date as day
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FORM_8949)
    us = lambda text: day.fromisoformat(text).strftime("%m/%d/%Y")       # noqa: E731
    for r in doc["rows"]:
        washed = r["wash_sale_disallowed"] != "0.00"
        w.writerow([f"{r['shares']} sh {r['symbol']}", us(r["acquired"]), us(r["sold"]), r["proceeds"], r["basis"],
                    "W" if washed else "", r["wash_sale_disallowed"] if washed else "", r["gain"], r["term"]])
    return buf.getvalue()


def tax_json(t) -> dict[str, Any]:
    """A tax preview as the plans show it: the estimated realized gain, short and long."""
    return {"short": fmt(t.short), "long": fmt(t.long), "total": fmt(t.total)}


def _ratio(x: float | None) -> float | None:
    """A return as JSON gives it: a float to 8 places (None: not defined for the period)."""
    return None if x is None else round(x, 8)


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
        self._brokers: dict[str, Any] = {}        # adapters of the other broker accounts, opened when asked

    @cached_property
    def books(self):
        """The books' repository (lots, realized rows, owners: docs/books.md), made when first asked."""
        from adapters.ledger.books_repo import BooksRepository
        return BooksRepository(self.ledger)

    @cached_property
    def access(self):
        """Tokens and the audit log, for the API and the console (its ORM rows: only when asked)."""
        from adapters.ledger.access import Access
        return Access(self.ledger)

    # --- prices ---------------------------------------------------------------------------

    def _live(self, symbols: list[str], broker: str | None) -> dict[str, Decimal]:
        """The broker's latest prices: the broker account's own when the settings name it
        (the default one through `live_prices`, which tests and the API may replace)."""
        if not symbols:
            return {}
        name = broker or self.settings.broker_name
        if name == self.settings.broker_name or name not in {b.name for b in self.settings.brokers}:
            return self.live_prices(symbols)
        if name not in self._brokers:
            from engine.shell.wiring import open_broker
            self._brokers[name] = open_broker(self.settings, name)
        return self._brokers[name].latest_prices(symbols)

    def valuation(self, symbols: list[str], live: bool = False, broker: str | None = None) -> dict[str, Decimal]:
        """The broker account's last window's prices (no broker call) unless `live`; the
        broker's for symbols no window priced yet."""
        prices = {} if live else window_reports.last_prices(self.ledger, broker or self.settings.broker_name)
        missing = [sym for sym in symbols if sym not in prices]
        return {**prices, **self._live(missing, broker)} if missing else prices

    def _valued(self, rows: AccountRows, live: bool) -> list[tuple[Any, Pie, dict, dict[str, int]]]:
        """(account, its pie, path -> (symbol, shares), cents per path) of each account, each
        valued at its own broker account's prices: the one valuation path of every list,
        page and account view. Each policy version is compiled once (policies.COMPILER), and each
        broker account's prices are read once."""
        compiled = {vid: policies.COMPILER.policy(text, file) for vid, (file, text) in rows.policies.items()}
        symbols: dict[str, set[str]] = {}
        for a in rows.accounts:
            symbols.setdefault(a.broker, set()).update(sym for sym, q in rows.holdings[a.id].values() if q)
        prices = {b: self.valuation(sorted(syms), live, b) for b, syms in sorted(symbols.items())}
        out = []
        for a in rows.accounts:
            try:
                values = slice_values(rows.holdings[a.id], prices[a.broker])
            except MissingPrice as e:
                raise LedgerError(f"no price for {e.symbol} (held by {a.name!r})") from None
            out.append((a, compiled[a.policy_version_id].pies[a.pie], rows.holdings[a.id], values))
        return out

    # --- queries ------------------------------------------------------------------------------

    def accounts(self, *, page: int = 1, size: int = 0, search: str = "", live: bool = False,
                 after: str | None = None) -> dict[str, Any]:
        """Accounts by name (a page of them when `size`: the accounts named after `after`,
        the `next` of the page before, or else page `page`), with value, cash, largest drift
        and pending events; the selection and counting are done by the database. `total`
        is counted up to 1,000 matches and estimated past that (`total_exact` says which);
        `next` is the cursor of the following page (None on the last)."""
        if page < 1 or size < 0 or size > 1000:
            raise LedgerError("page starts at 1 and size is 0 (all) to 1000")
        found = self.ledger.account_rows(search=search, offset=(page - 1) * size if size and after is None else 0,
                                         limit=size + 1 if size else None, after=after)     # one more: is there a next?
        more = bool(size) and len(found.accounts) > size
        if more:
            found = replace(found, accounts=found.accounts[:size])
        rows = []
        for a, pie, _, values in self._valued(found, live):
            d = max_drift_bp(slice_rows(pie, values))
            rows.append({"account": a.name, "pie": a.pie, "broker": a.broker, "status": a.status,
                         "value": fmt(sum(values.values())), "cash": str(a.cash),
                         "max_drift": None if d is None else f"{fmt(d)}%", "pending": found.pending.get(a.id, 0)})
        return {"accounts": rows, "total": found.total, "total_exact": found.total_exact, "page": page, "size": size,
                "after": after, "next": found.accounts[-1].name if more else None}

    def account(self, name: str, *, live: bool = False) -> dict[str, Any]:
        [(acct, pie, held, values)] = self._valued(self.ledger.account_rows(name=name), live)
        pending = [e for e, _ in self.ledger.events(name, status="pending")]
        rows = slice_rows(pie, values)
        outside = sorted(set(values) - {r.path for r in rows})
        return {"account": acct.name, "pie": pie.name, "rules": acct.rules, "broker": acct.broker,
                "owner": acct.owner_id, "status": acct.status, "cash": str(acct.cash), "value": fmt(sum(values.values())),
                "slices": [{"path": r.path, "name": r.name, "pie": r.is_pie, "target": f"{fmt(r.target_bp)}%",
                            "actual": None if r.share_bp is None else f"{fmt(r.share_bp)}%",
                            "drift": None if r.drift_bp is None else fmt(r.drift_bp, signed=True),
                            "value": fmt(r.value), "shares": str(held[r.path][1]) if r.path in held else None}
                           for r in rows],
                "not_in_pie": [{"path": p, "value": fmt(values[p])} for p in outside],
                "pending": [event_json(e) for e in pending],
                **self._basis_of(acct, held, values, live)}

    def _basis_of(self, acct, held, values: dict[str, int], live: bool) -> dict[str, Any]:
        """Per symbol: shares, value, cost basis, unrealized gain and the part of it that
        is long-term today (engine/core/unrealized.py), and their totals."""
        from engine.core.unrealized import SymbolGain, unrealized_by_symbol
        from engine.shell import clock
        lots = self.books.lots([acct.id])
        symbols = sorted({sym for sym, q in held.values() if q} | {x.symbol for x in lots})
        prices = self.valuation(symbols, live, acct.broker) if symbols else {}
        by_symbol: dict[str, int] = {}
        for path, c in values.items():
            sym = held[path][0]
            by_symbol[sym] = by_symbol.get(sym, 0) + c
        rows = unrealized_by_symbol(lots, by_symbol, prices, clock.today())
        total = SymbolGain("", sum((r.shares for r in rows), Decimal(0)), sum(r.value for r in rows),
                           sum(r.basis for r in rows), sum(r.long_term for r in rows))

        def figures(r: SymbolGain) -> dict[str, Any]:
            bp = r.long_term_bp
            return {"value": fmt(r.value), "basis": fmt(r.basis), "unrealized": fmt(r.gain),
                    "long_term": fmt(r.long_term), "short_term": fmt(r.gain - r.long_term),
                    "long_term_share": None if bp is None else f"{fmt(bp)}%"}
        return {"basis": [{"symbol": r.symbol, "shares": shares_text(r.shares), **figures(r)} for r in rows],
                "unrealized": figures(total)}

    def history(self, name: str) -> dict[str, Any]:
        events = self.ledger.events(name)
        trades = window_reports.trades(self.ledger, name)
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

    def health(self) -> dict[str, str]:
        """Alive, and the ledger answers (one small query)."""
        self.ledger.pending_counts([])
        return {"status": "ok"}

    def windows(self, limit: int = 30) -> dict[str, Any]:
        return {"windows": window_reports.windows(self.ledger, limit)}

    def window(self, window_id: int, page: int | None = None, size: int = 100) -> dict[str, Any]:
        """A window and its report: every account's lines, or page `page` of `size` accounts."""
        return window_reports.window(self.ledger, window_id, page, size)

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
        found = window_reports.window_of(self.ledger, broker or self.settings.broker_name, when, w.name)
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
            row = window_reports.window_of(self.ledger, b.name, when, w.name)
            return {**row, "already_closed": True} if row is not None and row["step"] == "closed" else None

        done = closed()
        if done:
            return done
        if when > today:
            raise LedgerError(f"{when} is in the future (today is {today} in {w.timezone})")
        if when < today and not (replay and window_reports.window_of(self.ledger, b.name, when, w.name) is not None):
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

    def ensure_house(self, broker, name: str) -> None:
        """The house of broker account `name` (adapter `broker`), made once from what it holds."""
        from engine.shell.wiring import ensure_house
        ensure_house(self.ledger, broker, name)

    def run_window_on(self, broker, name: str, day, window: str, **options) -> dict[str, Any]:
        """Run a window on a broker adapter the caller made (the demo's own simulated broker
        account, which the settings do not name), with the default broker's options."""
        from engine.shell.window import WindowRunner
        from engine.shell.wiring import window_options
        self.ensure_house(broker, name)
        return WindowRunner(self.ledger, broker, name, window_options(self.settings, **options)).run(day, window)

    def status(self) -> dict[str, Any]:
        """The next window of each broker account, pending events per account, and each
        broker account's last window."""
        from engine.shell import clock
        from engine.shell.schedule import upcoming_windows
        from engine.shell.wiring import open_broker
        now = clock.now()
        pending = self.ledger.pending_counts()
        windows = window_reports.windows(self.ledger, 200)
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
        states = self._with_recent_losses(states, day)
        plans = [plan_account(a, prices, day) for a in states]
        taxes = self._tax_previews(states, plans, prices, day)
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
            "events": [{"id": o.event_id, "outcome": o.outcome.value, "reason": o.reason} for o in p.decided],
            "held_back": [{"symbol": h.symbol, "amount": fmt(h.cents), "reason": h.describe()} for h in p.held_back],
            "tax": tax_json(taxes[p.account_id])}
            for p in plans if p.worth_recording or name],
            "tax": tax_json(sum((taxes[p.account_id] for p in plans if p.worth_recording or name), TAX_NONE)),
            "orders": [{"symbol": o.symbol, "side": o.side, "notional": None if o.notional is None else fmt(o.notional),
                        "qty": None if o.qty is None else str(o.qty)} for o in netting.orders]}

    # --- the books: performance, lots, gains ----------------------------------------------------

    def performance(self, name: str, start=None, end=None) -> dict[str, Any]:
        """The account's time- and money-weighted return, value, flows, dividends, and
        realized and unrealized gain over [start, end] (dates; open ends: its whole
        history), from the ledger's window history (docs/performance.md). Writes nothing."""
        from adapters.ledger.history import account_windows
        from engine.core.performance import performance
        _, windows = account_windows(self.ledger, name, end)
        p = performance(windows, start, end)
        return {"account": name, "from": p.start and p.start.isoformat(), "to": p.end and p.end.isoformat(),
                "windows": len(p.points), "start_value": fmt(p.start_value), "end_value": fmt(p.end_value),
                "cash": fmt(p.cash), "deposits": fmt(p.deposits), "withdrawals": fmt(p.withdrawals),
                "net_flows": fmt(p.flows), "dividends": fmt(p.dividends),
                "twr": _ratio(p.twr), "mwr": _ratio(p.mwr),
                **self._gains_of(name, p, start, end),
                "points": [{"day": x.day.isoformat(), "window": x.window_id, "value": fmt(x.value),
                            "flow": fmt(x.flow), "dividends": fmt(x.dividends)} for x in p.points]}

    def _gains_of(self, name: str, p, start, end) -> dict[str, Any]:
        """Realized gains of the period (rows sold in it) and the unrealized gain at its end:
        the holdings' value then less the basis of the lots open then (today's open lots
        bought by the end, plus the basis of rows sold after it from lots bought by then)."""
        from engine.core.performance import basis_at
        acct = self.ledger.account(name)
        rows = self.books.realized([acct.id])
        realized = [r for r in rows if (start is None or r.sold >= start) and (end is None or r.sold <= end)]
        short = sum(r.gain for r in realized if r.term == "short")
        long_ = sum(r.gain for r in realized if r.term == "long")
        basis = basis_at(self.books.lots([acct.id]), rows, p.end)
        return {"realized": {"short": fmt(short), "long": fmt(long_), "total": fmt(short + long_)},
                "unrealized": {"market_value": fmt(p.market_value), "basis": fmt(basis),
                               "gain": fmt(p.market_value - basis)}}

    def _account_id(self, name: str) -> int:
        return self.ledger.account(name).id          # NotFound naming it

    def lots(self, name: str) -> dict[str, Any]:
        """The account's open tax lots, by symbol and id (docs/books.md); basis includes
        the wash-sale adjustment."""
        lots = self.books.lots([self._account_id(name)])
        return {"account": name, "lots": [{
            "id": x.id, "symbol": x.symbol, "acquired": x.acquired.isoformat(), "shares": shares_text(x.shares),
            "basis": fmt(x.basis), "wash_adjustment": fmt(x.wash_adjustment)} for x in lots]}

    def gains(self, name: str | None = None, *, owner: str | None = None, year: int | None = None) -> dict[str, Any]:
        """Realized gains of an account, or of every account of an owner (each row then
        names its account), sold in `year` when given, by sale date: Form 8949's rows
        (gain = proceeds - basis + wash_sale_disallowed) and the short- and long-term totals."""
        if (name is None) == (owner is None):
            raise LedgerError("name an account or an owner (--owner ID), not both")
        if year is not None and not 1900 <= year <= 9999:
            raise LedgerError(f"year {year} is not a year like 2026")
        if owner is not None:
            ids = self.books.owner_accounts(owner)
            if not ids:
                raise NotFound(f"no account is owned by {owner!r}")
            from adapters.ledger.history import account_names
            names = account_names(self.ledger, ids)
        else:
            aid = self._account_id(name or "")
            ids, names = [aid], {aid: name}
        rows = self.books.realized(ids, year)
        totals = {"short": 0, "long": 0}
        out = []
        for r in rows:
            totals[r.term] += r.gain
            out.append({**({"account": names[r.account_id]} if owner is not None else {}),
                        "symbol": r.symbol, "acquired": r.acquired.isoformat(), "sold": r.sold.isoformat(),
                        "shares": shares_text(r.shares), "proceeds": fmt(r.proceeds), "basis": fmt(r.basis),
                        "wash_sale_disallowed": fmt(r.wash_sale_disallowed), "gain": fmt(r.gain), "term": r.term})
        return {**({"owner": owner} if owner is not None else {"account": name}), "year": year, "rows": out,
                "totals": {k: fmt(v) for k, v in totals.items()}}

    def _with_recent_losses(self, states, day):
        """`avoid wash-sales`: the owners' recent loss sales read and the blocked symbols
        filled in, as the window's planning step does."""
        from datetime import timedelta
        from adapters.ledger.losses import recent_sales
        from engine.core.books import WASH_DAYS
        from engine.core.window.planning import with_recent_losses
        careful = [a.id for a in states if a.rules.avoid_wash_sales]
        if not careful:
            return states
        owners, sales = recent_sales(self.ledger, careful, day - timedelta(days=WASH_DAYS))
        return with_recent_losses(states, owners, sales, day)

    def _tax_previews(self, states, plans, prices, day) -> dict[int, Any]:
        """account id -> the estimated realized gain of its plan's sells (engine/core/tax_preview.py)."""
        from engine.core.tax_preview import NONE, preview, sales_of
        by_id = {a.id: a for a in states}
        sales = {p.account_id: sales_of(((t.path, t.symbol, t.cents, t.sell_all) for t in p.trades),
                                        {h.path: h.shares for h in by_id[p.account_id].holdings}, prices)
                 for p in plans}
        selling = sorted(aid for aid, s in sales.items() if s)
        lots = self.books.lots(selling) if selling else []
        out = {}
        for aid, s in sales.items():
            out[aid] = preview(s, [x for x in lots if x.account_id == aid], day, by_id[aid].rules.lot_method) \
                if s else NONE
        return out

    def policy_tax(self, plan) -> dict[str, Any]:
        """The tax preview of a policy change's plan: per account that liquidates something,
        and in total, at the plan's prices, by each account's lot method."""
        from engine.core.tax_preview import NONE, Sale, preview
        from engine.shell import clock
        day = clock.today()
        if not plan.accounts:
            return {"accounts": [], **tax_json(NONE)}
        ids, methods = self.ledger_accounts_and_methods([a.account for a in plan.accounts])
        lots = self.books.lots(sorted(ids.values()))
        rows, total = [], NONE
        for a in plan.accounts:
            aid = ids[a.account]
            sales: dict[str, Sale] = {}
            for x in a.liquidations:
                if x.cents is None:
                    continue
                got = sales.get(x.symbol, Sale(x.symbol, Decimal(0), 0))
                sales[x.symbol] = Sale(x.symbol, got.shares + x.shares, got.proceeds + x.cents)
            t = preview(sorted(sales.values(), key=lambda s: s.symbol), [x for x in lots if x.account_id == aid],
                        day, methods[a.account])
            total = total + t
            rows.append({"account": a.account, **tax_json(t)})
        return {"accounts": rows, **tax_json(total)}

    def ledger_accounts_and_methods(self, names: list[str]) -> tuple[dict[str, int], dict[str, str]]:
        """name -> id, and name -> its rule set's lot method, of these accounts."""
        from rules.library import find_rules
        ids, methods = {}, {}
        for n in names:
            acct, _, policy = policies.policy_of(self.ledger, n)
            ids[n] = acct.id
            methods[n] = find_rules(acct.rules, policy).lot_method
        return ids, methods

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
                acct = self.ledger.account(name)
                symbols = sorted({sym for sym, q in self.ledger.holdings(name).values() if q})
                rec = self.ledger.withdraw(name, parsed, self.valuation(symbols, broker=acct.broker), key=key)
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
            self._housed(b)
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
        try:
            wanted = policies.resolve(file)
        except Refused as e:                 # a NUL byte: no file has that name (a 422 at every door)
            raise NotAPolicyFile(str(e)) from None
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

    def policy_warnings(self, file: str, text: str | None = None) -> list[str]:
        """Slices of a policy file that name a symbol a corporate action renamed or removed,
        with the file and line to edit. Without `text`, `file` is one of the settings' policy
        files (as `plan_policy` takes it) and its current text is read."""
        return policies.stale_names(self.ledger, file if text is not None else self.policy_file(file), text)

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
                self.refused(caller, "apply policy", args, e)
            raise
        if caller is not None:
            self.access.audit(caller, "apply policy", args, "ok")
        return {"file": path, "version": applied.version.id, "sha256": applied.version.sha256,
                "queued": applied.queued, "accounts": applied.accounts, "liquidations": applied.liquidations}


    def import_events(self, rows: list[dict[str, str]], *, where: str = "import") -> dict[str, Any]:
        """Record the events of a CSV file's rows in one transaction (all or none); each
        withdrawal is checked at its account's own broker account's prices."""
        names = sorted({(r.get("account") or "").strip() for r in rows if (r.get("kind") or "").strip() == "withdrawal"})
        held: dict[str, set[str]] = {}
        for n in names:
            try:
                acct = self.ledger.account(n)
            except LedgerError:
                continue                          # the import reports it, by line
            held.setdefault(acct.broker, set()).update(sym for sym, q in self.ledger.holdings(n).values() if q)
        prices = {b: self.valuation(sorted(syms), broker=b) for b, syms in sorted(held.items())}
        parsed, errors = [], []
        for line, row in enumerate(rows, start=2):                # line 1 is the header
            kind = (row.get("kind") or "").strip()
            if row.get(None) or kind not in ("deposit", "withdrawal"):
                parsed.append(row)                                # the ledger names what is wrong
                continue
            try:
                parsed.append({**row, "amount": dollars(parse_dollars(row.get("amount") or "", what=kind))})
            except MoneyError as e:
                errors.append((line, f"{where}:{line}: {e}"))
                parsed.append({**row, "amount": None})
        created, existing = self.ledger.import_events(parsed, {}, check_rebalance=policies.rebalance_check(),
                                                      broker_prices=prices, where=where, errors=errors)
        return {"file": where, "recorded": created, "already_recorded": existing}

    # --- accounts -------------------------------------------------------------------------------

    def add_account(self, name: str, pie: str, policy_file: str, *, rules: str, broker: str | None = None,
                    owner: str | None = None) -> dict[str, Any]:
        """Open an account on `pie` of the policy file, owned by `owner` for wash sales
        (default: itself); the first account of a broker account makes its house (the only
        time this asks the broker)."""
        b = self._housed(broker or self.settings.broker_name)
        acct = policies.add_account(self.ledger, name, pie, policy_file, rules=rules, broker=b, owner=owner)
        return {"account": name, "pie": pie, "file": policy_file, "rules": rules, "broker": b, "owner": acct.owner_id}

    def set_owner(self, name: str, owner: str) -> dict[str, Any]:
        """Who owns the account for wash sales (docs/books.md): all of an owner's accounts
        count together. Refused while a window of its broker account is open."""
        return {"account": name, "owner": self.ledger.set_owner(name, owner)}

    def _housed(self, broker: str) -> str:
        """The broker account, its house made the first time an account opens on it (the
        only time opening accounts asks the broker, named as the settings name it)."""
        from engine.shell.wiring import ensure_house, open_broker
        if self.ledger.house(broker) is not None:        # a house made otherwise (`pies demo`'s) too
            return broker
        name = self.settings.broker_named(broker).name
        if self.ledger.house(name) is None:
            ensure_house(self.ledger, open_broker(self.settings, name), name)
        return name

    def move_account(self, name: str, pie: str, policy_file: str | None = None,
                     rules: str | None = None) -> dict[str, Any]:
        return {"account": name, "pie": pie, "queued": policies.move_account(self.ledger, name, pie, policy_file, rules)}

    def close_account(self, name: str) -> dict[str, Any]:
        return {"account": name, "event": self.ledger.close_account(name).event_id}

    # --- policy versions ------------------------------------------------------------------------

    def policy_history(self, pie: str | None = None) -> dict[str, Any]:
        """Policy versions, oldest first, with their applies and followers (with `pie`: only
        versions that have it, and whether it changed from the file's version before)."""
        from engine.core.policy_change import target_diff
        rows, previous = [], {}
        for v, applies, followers in self.ledger.versions():
            changed = None
            if pie:                              # compiled only to look at a pie: the list alone reads rows
                pies = policies.COMPILER.version(v).pies
                if pie not in pies:
                    continue
                before = previous.get(v.file)
                changed = bool(target_diff(before.get(pie) if before else None, pies.get(pie)))
                previous[v.file] = pies
            rows.append({"version": v.id, "file": v.file, "sha256": v.sha256, "loaded_at": v.loaded_at.isoformat(),
                         "applied": [{"at": a.applied_at.isoformat(), "source": a.source, "accounts": a.accounts,
                                      "liquidations": a.liquidations} for a in applies],
                         "followers": followers, **({"pie_changed": changed} if pie else {})})
        return {"versions": rows}

    def policy_version(self, version_id: int) -> dict[str, Any]:
        v = self.ledger.version(version_id)
        return {"version": v.id, "file": v.file, "sha256": v.sha256, "loaded_at": v.loaded_at.isoformat(),
                "text": v.text}

    def policy_diff(self, v1: int, v2: int) -> dict[str, Any]:
        """The target changes from version v1 to v2, pie by pie."""
        from engine.core.policy_change import target_diff
        a, b = self.ledger.version(v1), self.ledger.version(v2)
        pa, pb = policies.COMPILER.version(a).pies, policies.COMPILER.version(b).pies
        diffs = [(name, target_diff(pa.get(name), pb.get(name))) for name in sorted(set(pa) | set(pb))]
        return {"from": v1, "to": v2, "pies": [{"pie": n, "changes": [c.to_json() for c in d]} for n, d in diffs if d]}

    # --- reconciliation: the ledger against each broker account ------------------------------

    def _adapter(self, name: str):
        """The broker adapter of a broker account of the settings, opened once per service."""
        if name not in self._brokers:
            from engine.shell.wiring import open_broker
            self._brokers[name] = open_broker(self.settings, name)
        return self._brokers[name]

    def _reconcile(self, name: str):
        """The core's Reconciliation of broker account `name` now (engine/shell/reconcile.compare,
        the window's own comparison): the ledger's side, then the broker's."""
        from datetime import datetime, time, timedelta
        from zoneinfo import ZoneInfo
        from adapters.ledger.reconcile_repo import Reconciliations
        from engine.core.reconcile import Tolerance
        from engine.shell import clock
        from engine.shell.reconcile import compare
        rows = Reconciliations(self.ledger)
        today = clock.today()
        # From the broker account's last window before today, as its next window would.
        start = max((d for d in (date_of(w["day"]) for w in window_reports.windows(self.ledger, 200) if w["broker"] == name)
                     if d < today), default=today)
        since = datetime.combine(start - timedelta(days=1), time(0), ZoneInfo("America/New_York"))
        return compare(self._adapter(name), rows.side(name), since=since, start=start, end=today,
                       order_windows=rows.order_windows, uncollected=rows.uncollected,
                       accepted=rows.accepted(name),
                       tolerance=Tolerance(self.settings.reconcile_shares, self.settings.reconcile_cents))

    def _reconcile_names(self, broker: str | None) -> list[str]:
        return [self.settings.broker_named(broker).name] if broker else [b.name for b in self.settings.brokers]

    def reconciliation(self, broker: str | None = None) -> dict[str, Any]:
        """The ledger against each broker account (or the one named) now: per symbol the
        accounts' shares, the house's, the broker's, the difference and its likely cause;
        the cash likewise; whether trading waits; the last acceptances. A broker account no
        account uses yet, or a broker that does not answer, says so in its `error`."""
        from adapters.broker.port import BrokerError
        from adapters.ledger.reconcile_repo import Reconciliations
        out = []
        for name in self._reconcile_names(broker):
            doc: dict[str, Any] = {"broker": name, "error": None, "agrees": None, "waits": None, "lines": [],
                                   "tolerance": {"shares": str(self.settings.reconcile_shares),
                                                 "cash": str(dollars(self.settings.reconcile_cents))}}
            if self.ledger.house(name) is None:
                doc["error"] = "no account uses this broker account yet: nothing to compare"
            else:
                try:
                    doc.update(self._reconcile(name).to_json())
                except BrokerError as e:
                    why = str(e).splitlines()[0] if str(e) else type(e).__name__
                    doc["error"] = f"the broker does not answer: {why}"
            doc["accepted"] = Reconciliations(self.ledger).log(name, 20)
            out.append(doc)
        return {"brokers": out, "waits": any(d["waits"] for d in out)}

    def accept_breaks(self, reason: str, *, caller, broker: str | None = None) -> dict[str, Any]:
        """An operator accepts the unexplained breaks of a broker account as they are now
        (each line and its difference exactly), with a reason: the next window goes on past
        them while they stay the same. Audited under `caller` (refusals too)."""
        from adapters.ledger.reconcile_repo import Reconciliations
        from engine.core.reconcile import acceptable
        name = broker or self.settings.broker_name
        args = {"broker": name, "reason": reason}

        def accept() -> dict[str, Any]:
            why = (reason or "").strip()
            if not why:
                raise LedgerError("accepting a break needs a reason (--reason): what was checked and why it is right")
            if len(why) > MAX_REASON or any(ord(c) < 32 and c not in "\t" for c in why):
                raise LedgerError(f"the reason must be one line of at most {MAX_REASON} characters")
            b = self.settings.broker_named(name).name
            if self.ledger.house(b) is None:
                raise LedgerError(f"broker account {b!r}: no account uses it yet, nothing to accept")
            lines = acceptable(self._reconcile(b))
            if not lines:
                raise LedgerError(f"broker account {b!r}: no unexplained break to accept "
                                  f"(`pies reconcile` shows the comparison)")
            ids = Reconciliations(self.ledger).accept(b, lines, why, caller.name)
            return {"broker": b, "reason": why, "by": caller.name,
                    "accepted": [{"id": i, "symbol": sym, "difference": str(d)} for i, (sym, d) in zip(ids, lines)]}
        return self.audited(caller, "accept reconciliation", args, accept)

    # --- access: tokens and the audit -----------------------------------------------------------

    def create_token(self, name: str, role: str) -> str:
        """The token's text: shown once, kept only as a hash."""
        return self.access.create(name, role)

    def tokens(self) -> dict[str, Any]:
        return {"tokens": self.access.list()}

    def revoke_token(self, name: str) -> dict[str, Any]:
        self.access.revoke(name)
        return {"name": name, "revoked": True}

    def audit_log(self, limit: int = 100) -> dict[str, Any]:
        return {"audit": self.access.audit_log(limit)}

    def audited(self, who, action: str, args: dict[str, Any], fn: Callable[[], Any]) -> Any:
        """Run a write for `who` (an API or console caller) and record it in the audit log:
        "ok", or "refused: <the first line of why>" before the error goes on to the caller."""
        try:
            result = fn()
        except AUDITED_REFUSALS as e:
            self.refused(who, action, args, e)
            raise
        self.access.audit(who, action, args, "ok")
        return result

    def refused(self, who, action: str, args: dict[str, Any], error: Exception) -> None:
        """Record in the audit log that a write was refused, and the first line of why."""
        self.access.audit(who, action, args,
                          f"refused: {str(error).splitlines()[0] if str(error) else type(error).__name__}")


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
        return {**window_reports.window_of(self.service.ledger, self.broker, self.day, self.name), "already_closed": False}

    def release(self) -> None:
        self.lock.release()
