"""Alpaca paper trading through alpaca-py, behind the broker port.

alpaca-py's defaults are not safe for an unattended window, so this adapter changes three:
- it passes no timeout to `requests` (a hung connection blocks forever): every request
  here has `timeout` seconds;
- it retries 429 and 504 on every method, order submission included: its retries are
  switched off and this adapter owns the policy (reads retry with backoff and jitter; an
  order is only ever re-sent with the same client order id, after looking it up);
- `APIError.code` raises on a plain-text body (a 429 can be one): bodies are read here,
  defensively.
Amounts arrive as strings or JSON numbers and become `Decimal(str(x))`; they leave as JSON
strings ("500.00", "0.123456789"): orders are posted here, not through alpaca-py's
`MarketOrderRequest`, whose qty and notional are floats. Corporate-action rates are parsed
from the JSON text as `Decimal`s (alpaca_actions.py).

Every request of the three clients (trading, market data, corporate actions) waits for its
turn in one `Pacer` (pacing.py): under `requests_per_minute` in any sliding minute.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time as _time
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence, TypeVar
from zoneinfo import ZoneInfo

import requests
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.historical.corporate_actions import CorporateActionsClient
from alpaca.data.requests import CorporateActionsRequest, StockLatestTradeRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.models import Order
from alpaca.trading.requests import GetCalendarRequest

from . import alpaca_actions
from .pacing import Pacer
from .port import (Asset, Balance, CashActivity, CorporateAction, Clock, MarketDay, OrderNotFound, OrderRejected, OrderRequest,
                   OrderState, Position, RetryLater, StopTrading, check_minimum, follow_replacements, whole_shares)

NY = ZoneInfo("America/New_York")
log = structlog.get_logger("pies.broker.alpaca")
T = TypeVar("T")


@dataclass(frozen=True)
class AlpacaConfig:
    key_env: str = "APCA_API_KEY_ID"           # names of the environment variables, not the keys
    secret_env: str = "APCA_API_SECRET_KEY"
    paper: bool = True
    allow_live: bool = False                   # live trading only when a person says so here
    feed: str = "iex"                          # iex (free accounts) or sip
    timeout: float = 10.0                      # seconds per HTTP request
    retries: int = 4                           # for reads and same-id order re-sends
    backoff: float = 0.5                       # seconds, doubled per attempt, with jitter
    url_override: str | None = None            # e.g. a local fake for tests
    data_url_override: str | None = None
    requests_per_minute: int = 190             # Alpaca allows 200 a minute; a margin for clock skew
    # None: live accounts apply corporate actions (the start-of-day sync), paper accounts
    # do not (Alpaca-API #181, open since 2021).
    applies_corporate_actions: bool | None = None


class _ExactActionsClient(CorporateActionsClient):
    """alpaca-py's corporate-actions client, reading bodies with JSON numbers as Decimal:
    its own `response.json()` (and its models) make floats of the rates."""

    def _one_request(self, method: str, url: str, opts: dict, retry: int) -> dict:
        response = self._session.request(method, url, **opts)
        try:
            response.raise_for_status()
        except requests.HTTPError as http_error:
            raise APIError(response.text, http_error) from None
        return json.loads(response.text, parse_float=Decimal) if response.text else {}


def _dec(x: Any) -> Decimal | None:
    return None if x is None or x == "" else Decimal(str(x))


def _body(err: APIError) -> tuple[int | None, str]:
    """(code, message) of an error body, JSON or plain text, never raising."""
    text = str(err)
    try:
        data = json.loads(text)
    except ValueError:
        return None, text.strip()[:200]
    if not isinstance(data, dict):
        return None, text.strip()[:200]
    code = data.get("code")
    return (code if isinstance(code, int) else None), str(data.get("message", text))[:200]


def _status(err: APIError) -> int | None:
    try:
        return err.status_code
    except Exception:  # noqa: BLE001 - alpaca-py builds this from optional parts
        return None


def translate(err: Exception, *, symbol: str | None = None, client_order_id: str | None = None) -> Exception:
    """alpaca-py / requests errors -> the port's errors, by what the caller must do."""
    if isinstance(err, (requests.Timeout, requests.ConnectionError)):
        return RetryLater(f"Alpaca did not answer: {type(err).__name__}")
    if not isinstance(err, APIError):
        return err
    status, (code, message) = _status(err), _body(err)
    where = f"{symbol}: " if symbol else ""
    if status == 429 or (status is not None and status >= 500):
        return RetryLater(f"Alpaca {status}: {message}")
    if status == 401 or code == 40110000 or (status == 403 and "forbidden" in message.lower()):
        return StopTrading(f"Alpaca refused the credentials ({status}): {message}")
    if status == 404:
        return OrderNotFound(f"{where}{message}")
    if status in (403, 422) or code in (40310000, 40010001):
        return OrderRejected(f"{where}{message}", symbol=symbol, client_order_id=client_order_id)
    return StopTrading(f"Alpaca {status}: {message}")


class AlpacaBroker:
    name = "alpaca"
    ORDER_PAGE = 500          # Alpaca's largest page of orders
    PRICE_CHUNK = 200         # symbols per latest-trades request (the URL stays short)
    ACTION_CHUNK = 100        # symbols per corporate-actions request
    ACTION_MARGIN = 10        # days around the asked range (Alpaca filters on process_date)
    MAX_REPLACEMENTS = 10     # a replaced order is followed this far

    def __init__(self, config: AlpacaConfig = AlpacaConfig(), *, env: Mapping[str, str] = os.environ,
                 sleep: Callable[[float], None] = _time.sleep, rng: random.Random | None = None,
                 clock: Callable[[], float] = _time.monotonic, today: Callable[[], date] | None = None):
        if not config.paper and not config.allow_live:
            log.error("live trading refused", hint="set allow_live = true in the broker settings to trade real money")
            raise StopTrading("live trading is not allowed (paper = false without allow_live = true)")
        key, secret = env.get(config.key_env), env.get(config.secret_env)
        if not key or not secret:
            raise StopTrading(f"Alpaca keys missing: set the environment variables {config.key_env} "
                              f"and {config.secret_env}")
        self.config = config
        self.applies_corporate_actions = (not config.paper if config.applies_corporate_actions is None
                                          else config.applies_corporate_actions)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._today = today or (lambda: datetime.now(NY).date())
        self.pacer = Pacer(config.requests_per_minute, clock=clock, sleep=sleep)
        self.trading = TradingClient(key, secret, paper=config.paper, url_override=config.url_override)
        self.data = StockHistoricalDataClient(key, secret, url_override=config.data_url_override)
        self.actions = _ExactActionsClient(key, secret, raw_data=True, url_override=config.data_url_override)
        for client in (self.trading, self.data, self.actions):
            client._retry = 0   # alpaca-py would retry POST /orders without a client id check
            client._session.request = functools.partial(self._paced(client._session.request), timeout=config.timeout)
        self._assets: dict[str, Asset] = {}
        self._assets_day: date | None = None
        self._submitted: dict[str, datetime] = {}     # client order id -> submitted_at, as seen
        log.info("alpaca broker ready", paper=config.paper, feed=config.feed,
                 requests_per_minute=config.requests_per_minute,
                 applies_corporate_actions=self.applies_corporate_actions)

    def _paced(self, send: Callable[..., Any]) -> Callable[..., Any]:
        def request(method: str, url: str, **kw: Any) -> Any:
            self.pacer.acquire()
            return send(method, url, **kw)
        return request

    def request_seconds(self, requests: int) -> float:
        """About how long `requests` more requests take under the rate limit."""
        return self.pacer.seconds_for(requests)

    # --- the retry policy -----------------------------------------------------------------

    def _retrying(self, event: str, **ctx: Any) -> Retrying:
        """Up to `retries` more tries on RetryLater, `backoff` * 2^n seconds apart with jitter
        (x0.5 to x1.5); anything else, or RetryLater on the last try, is raised as it is."""
        exponential = wait_exponential(multiplier=self.config.backoff)

        def wait(rs: RetryCallState) -> float:
            return exponential(rs) * (0.5 + self._rng.random())

        def warn(rs: RetryCallState) -> None:
            log.warning(event, **ctx, attempt=rs.attempt_number, wait=round(rs.next_action.sleep, 2),
                        reason=str(rs.outcome.exception()))
        return Retrying(stop=stop_after_attempt(self.config.retries + 1), wait=wait,
                        retry=retry_if_exception_type(RetryLater), sleep=self._sleep, before_sleep=warn, reraise=True)

    def _read(self, fn: Callable[[], T], **ctx: Any) -> T:
        """A read: retried on RetryLater with exponential backoff and jitter, bounded."""
        def once() -> T:
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - translated
                raise translate(e, **ctx) from None
        return self._retrying("alpaca retry")(once)

    # --- clock, calendar, assets, prices --------------------------------------------------

    def clock(self) -> Clock:
        c = self._read(self.trading.get_clock)
        return Clock(c.timestamp.astimezone(NY), c.is_open, c.next_open.astimezone(NY), c.next_close.astimezone(NY))

    def market_day(self, day: date) -> MarketDay | None:
        days = self._read(lambda: self.trading.get_calendar(GetCalendarRequest(start=day, end=day)))
        for d in days:
            if d.date == day:   # Calendar times are naive US/Eastern
                return MarketDay(day, d.open.replace(tzinfo=NY), d.close.replace(tzinfo=NY))
        return None

    def assets(self, symbols: Sequence[str]) -> dict[str, Asset]:
        """From Alpaca's asset list, read once per trading day (one request, not one per
        symbol): inactive, not tradable and not fractionable symbols change overnight."""
        today = self._today()
        if self._assets_day != today:
            rows = self._read(functools.partial(self.trading.get, "/assets", {"asset_class": "us_equity"}))
            fresh: dict[str, Asset] = {}
            for a in rows if isinstance(rows, list) else []:
                sym = str(a.get("symbol", ""))
                active = str(a.get("status", "")).lower() == "active"
                tradable = bool(a.get("tradable")) and active
                note = "" if tradable else ("inactive at Alpaca" if not active else "not tradable at Alpaca")
                fresh[sym] = Asset(sym, tradable, bool(a.get("fractionable")), note)
            self._assets, self._assets_day = fresh, today
            log.info("asset list refreshed", day=today.isoformat(), assets=len(fresh),
                     tradable=sum(a.tradable for a in fresh.values()))
        return {s: self._assets.get(s) or Asset(s, False, False, "not listed at Alpaca") for s in symbols}

    def latest_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        symbols = list(symbols)
        trades: dict[str, Any] = {}
        for i in range(0, len(symbols), self.PRICE_CHUNK):
            req = StockLatestTradeRequest(symbol_or_symbols=symbols[i:i + self.PRICE_CHUNK],
                                          feed=DataFeed(self.config.feed))
            trades.update(self._read(lambda: self.data.get_stock_latest_trade(req)))
        missing = [s for s in symbols if s not in trades]
        if missing:
            raise RetryLater(f"no latest trade for {', '.join(missing)} on the {self.config.feed} feed")
        return {s: Decimal(str(trades[s].price)) for s in symbols}

    # --- orders ---------------------------------------------------------------------------

    def submit(self, order: OrderRequest) -> OrderState:
        check_minimum(order)
        asset = self.assets([order.symbol])[order.symbol]
        if not asset.tradable:
            raise OrderRejected(f"{order.symbol} is {asset.note or 'not tradable at Alpaca'}", symbol=order.symbol,
                                client_order_id=order.client_order_id)
        note = ""
        if not asset.fractionable:
            order, note = whole_shares(order, self.latest_prices([order.symbol])[order.symbol])
        # Amounts go out as JSON strings: alpaca-py's MarketOrderRequest would make floats of them.
        body = {"symbol": order.symbol, "side": order.side, "type": "market", "time_in_force": "day",
                "client_order_id": order.client_order_id}
        if order.notional is not None:
            body["notional"] = str(order.notional)
        else:
            body["qty"] = str(order.qty)
        ctx = {"symbol": order.symbol, "client_order_id": order.client_order_id}
        for attempt in self._retrying("order retry", **ctx):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    # The order may have gone through before the failure: look before re-sending.
                    try:
                        return self._with_note(self.order(order.client_order_id), note)
                    except (OrderNotFound, RetryLater):
                        pass
                try:
                    placed = self.trading.post("/orders", dict(body))
                except Exception as e:  # noqa: BLE001 - translated below
                    err = translate(e, **ctx)
                    if isinstance(err, OrderRejected) and "client_order_id must be unique" in str(err):
                        return self._with_note(self.order(order.client_order_id), note)
                    raise err from None
                log.info("order submitted", **ctx, side=order.side, notional=str(order.notional or ""),
                         qty=str(order.qty or ""))
                return self._seen(_raw_order(placed), note)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _with_note(state: OrderState, note: str) -> OrderState:
        return state if not note or state.note else replace(state, note=note)

    def _seen(self, o: Order, note: str = "") -> OrderState:
        if o.client_order_id and o.submitted_at:
            self._submitted[o.client_order_id] = o.submitted_at
        return _order_state(o, note)

    def _by_id(self, broker_id: str) -> Order:
        return _raw_order(self._read(functools.partial(self.trading.get, f"/orders/{broker_id}")))

    def _followed(self, o: Order, listed: Mapping[str, Order] | None = None) -> OrderState:
        """An order's state; a replaced one followed to its replacement (Alpaca closes a
        replaced order and goes on under `replaced_by`, a new id and client order id)."""
        chain = [o]
        while _order_status(chain[-1]) == "replaced" and chain[-1].replaced_by and len(chain) <= self.MAX_REPLACEMENTS:
            nxt = str(chain[-1].replaced_by)
            chain.append((listed or {}).get(nxt) or self._by_id(nxt))
        if len(chain) > 1:
            log.warning("order replaced at the broker", client_order_id=o.client_order_id,
                        replaced_by=[str(x.id) for x in chain[1:]], status=_order_status(chain[-1]), alert=True)
        self._seen(o)
        return follow_replacements([_order_state(x) for x in chain])

    def order(self, client_order_id: str) -> OrderState:
        raw = self._read(functools.partial(self.trading.get, "/orders:by_client_order_id",
                                           {"client_order_id": client_order_id}), client_order_id=client_order_id)
        return self._followed(_raw_order(raw))

    def cancel(self, client_order_id: str) -> OrderState:
        state = self.order(client_order_id)
        if not state.terminal:
            try:
                self._read(functools.partial(self.trading.cancel_order_by_id, state.broker_id),
                           client_order_id=client_order_id)
            except OrderRejected:
                pass   # 422: the order is no longer cancelable (it filled meanwhile)
            state = self.order(client_order_id)
        return state

    def wait(self, client_order_ids: Sequence[str], timeout: float) -> dict[str, OrderState]:
        """One listing of the orders per poll (GET /v2/orders, status=all, after the
        earliest of them; more pages only past 500 orders), not one request per order."""
        deadline = self._clock() + timeout
        states: dict[str, OrderState] = {}
        pause = 0.5
        while True:
            open_ = [c for c in client_order_ids if c not in states or not states[c].terminal]
            states.update(self._poll(open_))
            if all(states[c].terminal for c in client_order_ids) or self._clock() >= deadline:
                return {c: states[c] for c in client_order_ids}
            self._sleep(min(pause, max(0.0, deadline - self._clock())))
            pause = min(pause * 2, 5.0)

    def _poll(self, client_order_ids: Sequence[str]) -> dict[str, OrderState]:
        if not client_order_ids:
            return {}
        known = [self._submitted[c] for c in client_order_ids if c in self._submitted]
        if len(known) == len(client_order_ids):
            after = min(known) - timedelta(seconds=1)
        else:   # orders placed by another run: from the start of yesterday (New York)
            after = datetime.combine(self._today() - timedelta(days=1), time(0), NY)
        listed = self._list_orders(after)
        by_client = {o.client_order_id: o for o in listed.values()}
        out: dict[str, OrderState] = {}
        for c in client_order_ids:
            o = by_client.get(c)
            out[c] = self._followed(o, listed) if o is not None else self.order(c)   # not listed: one look
        return out

    def _list_orders(self, since: datetime) -> dict[str, Order]:
        """Every order submitted after `since`, all pages, by broker id (in submission order)."""
        out: dict[str, Order] = {}
        after = since
        while True:
            params = {"status": "all", "after": after.isoformat(), "limit": self.ORDER_PAGE, "direction": "asc"}
            page = self._read(functools.partial(self.trading.get, "/orders", params))
            fresh = [o for o in map(_raw_order, page if isinstance(page, list) else []) if str(o.id) not in out]
            for o in fresh:
                out[str(o.id)] = o
            if len(page) < self.ORDER_PAGE or not fresh:
                return out
            after = max(o.submitted_at for o in fresh)

    def orders_since(self, since: datetime) -> list[OrderState]:
        """Every order submitted since `since`, all pages (Alpaca gives at most 500 per page);
        a replaced order followed to its replacement."""
        listed = self._list_orders(since)
        return [self._followed(o, listed) for o in listed.values() if not o.replaces]

    # --- account --------------------------------------------------------------------------

    def positions(self) -> dict[str, Position]:
        out: dict[str, Position] = {}
        for p in self._read(self.trading.get_all_positions):
            out[p.symbol] = Position(p.symbol, Decimal(str(p.qty)), _dec(p.market_value) or Decimal("0"))
        return out

    def balance(self) -> Balance:
        a = self._read(self.trading.get_account)
        return Balance(_dec(a.cash) or Decimal("0"), _dec(a.buying_power) or Decimal("0"),
                       _dec(a.equity) or Decimal("0"))

    def corporate_actions(self, symbols: Sequence[str], start: date, end: date) -> list[CorporateAction]:
        """The actions on `symbols` taking effect from `start` to `end`, all pages, rates
        exact. Alpaca filters on process_date, which can differ from the effective day:
        the request reaches ACTION_MARGIN days further each way and the result is cut here.
        A rights distribution comes back as such (the window stops if it holds the symbol);
        a kind pies does not know raises StopTrading naming it."""
        wanted = sorted(set(symbols))
        out: list[CorporateAction] = []
        unknown: list[alpaca_actions.Unknown] = []
        margin = timedelta(days=self.ACTION_MARGIN)
        for i in range(0, len(wanted), self.ACTION_CHUNK):
            req = CorporateActionsRequest(symbols=wanted[i:i + self.ACTION_CHUNK], start=start - margin,
                                          end=end + margin, limit=None)
            body = self._read(lambda: self.actions.get_corporate_actions(req))
            try:
                parsed = alpaca_actions.parse(body or {})
            except alpaca_actions.BodyError as e:
                log.error("corporate action unreadable", reason=str(e), alert=True)
                raise StopTrading(f"Alpaca corporate actions: {e}") from None
            out.extend(a for a in parsed.actions if a.symbol in wanted and start <= a.effective <= end)
            unknown.extend(u for u in parsed.unknown if set(u.symbols) & set(wanted))
        for a in out:
            if a.kind == alpaca_actions.ActionKind.RIGHTS_DISTRIBUTION:
                log.error("corporate action not handled", id=a.id, kind=a.kind.value, symbol=a.symbol,
                          new_symbol=a.new_symbol, effective=a.effective.isoformat(), alert=True)
        if unknown:
            for u in unknown:
                log.error("corporate action of an unknown kind", id=u.id, kind=u.kind, symbols=list(u.symbols),
                          alert=True)
            names = "; ".join(f"{u.kind} {u.id} ({', '.join(u.symbols)})" for u in unknown)
            raise StopTrading(f"Alpaca reports corporate actions pies does not handle: {names}")
        unique = {a.id: a for a in out}          # the chunks never overlap; ids make sure
        return sorted(unique.values(), key=lambda a: (a.effective, a.id))

    def cash_activities(self, since: datetime) -> list[CashActivity]:
        """Dividends since `since` (paper accounts have none; the endpoint answers all the same)."""
        out: list[CashActivity] = []
        params: dict[str, Any] = {"after": since.astimezone(NY).date().isoformat(), "direction": "asc",
                                  "page_size": 100}
        while True:
            page = self._read(functools.partial(self.trading.get, "/account/activities/DIV", dict(params)))
            if not isinstance(page, list):
                page = []
            for a in page:
                out.append(CashActivity(str(a["id"]), "dividend", date.fromisoformat(str(a["date"])[:10]),
                                        a.get("symbol"), Decimal(str(a["net_amount"]))))
            if len(page) < params["page_size"]:
                return out
            params["page_token"] = page[-1]["id"]


def _raw_order(raw: Any) -> Order:
    """alpaca-py's Order model over a raw body (amounts stay the strings Alpaca sent)."""
    if not isinstance(raw, dict):
        raise RetryLater(f"Alpaca answered an order request with {type(raw).__name__}")
    return Order(**raw)


def _order_status(o: Any) -> str:
    return str(getattr(o.status, "value", o.status))


def _order_state(o: Any, note: str = "") -> OrderState:
    side = getattr(o.side, "value", o.side)
    return OrderState(o.client_order_id, str(o.id), o.symbol, str(side), _order_status(o), _dec(o.notional), _dec(o.qty),
                      _dec(o.filled_qty) or Decimal("0"), _dec(o.filled_avg_price), note)
