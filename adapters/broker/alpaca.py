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
numbers of at most 2 (notional) or 9 (qty) decimals, whose shortest float repr is exact.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time as _time
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence, TypeVar
from zoneinfo import ZoneInfo

import requests
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockLatestTradeRequest
from alpaca.trading.client import TradingClient
from alpaca.common.enums import Sort
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest, MarketOrderRequest

from .port import (Asset, Balance, CashActivity, CorporateAction, Clock, MarketDay, OrderNotFound, OrderRejected, OrderRequest,
                   OrderState, Position, RetryLater, StopTrading, check_minimum, whole_shares)

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

    def __init__(self, config: AlpacaConfig = AlpacaConfig(), *, env: Mapping[str, str] = os.environ,
                 sleep: Callable[[float], None] = _time.sleep, rng: random.Random | None = None):
        if not config.paper and not config.allow_live:
            log.error("live trading refused", hint="set allow_live = true in the broker settings to trade real money")
            raise StopTrading("live trading is not allowed (paper = false without allow_live = true)")
        key, secret = env.get(config.key_env), env.get(config.secret_env)
        if not key or not secret:
            raise StopTrading(f"Alpaca keys missing: set the environment variables {config.key_env} "
                              f"and {config.secret_env}")
        self.config = config
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.trading = TradingClient(key, secret, paper=config.paper, url_override=config.url_override)
        self.data = StockHistoricalDataClient(key, secret, url_override=config.data_url_override)
        for client in (self.trading, self.data):
            client._retry = 0   # alpaca-py would retry POST /orders without a client id check
            client._session.request = functools.partial(client._session.request, timeout=config.timeout)
        self._assets: dict[str, Asset] = {}
        log.info("alpaca broker ready", paper=config.paper, feed=config.feed)

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
        for s in symbols:
            if s not in self._assets:
                a = self._read(functools.partial(self.trading.get_asset, s), symbol=s)
                self._assets[s] = Asset(s, bool(a.tradable), bool(a.fractionable))
        return {s: self._assets[s] for s in symbols}

    def latest_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        if not symbols:
            return {}
        req = StockLatestTradeRequest(symbol_or_symbols=list(symbols), feed=DataFeed(self.config.feed))
        trades = self._read(lambda: self.data.get_stock_latest_trade(req))
        missing = [s for s in symbols if s not in trades]
        if missing:
            raise RetryLater(f"no latest trade for {', '.join(missing)} on the {self.config.feed} feed")
        return {s: Decimal(str(trades[s].price)) for s in symbols}

    # --- orders ---------------------------------------------------------------------------

    def submit(self, order: OrderRequest) -> OrderState:
        check_minimum(order)
        asset = self.assets([order.symbol])[order.symbol]
        if not asset.tradable:
            raise OrderRejected(f"{order.symbol} is not tradable at Alpaca", symbol=order.symbol,
                                client_order_id=order.client_order_id)
        note = ""
        if not asset.fractionable:
            order, note = whole_shares(order, self.latest_prices([order.symbol])[order.symbol])
        req = MarketOrderRequest(
            symbol=order.symbol, side=OrderSide(order.side), time_in_force=TimeInForce.DAY,
            client_order_id=order.client_order_id,
            notional=None if order.notional is None else float(order.notional),
            qty=None if order.qty is None else float(order.qty))
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
                    placed = self.trading.submit_order(req)
                except Exception as e:  # noqa: BLE001 - translated below
                    err = translate(e, **ctx)
                    if isinstance(err, OrderRejected) and "client_order_id must be unique" in str(err):
                        return self._with_note(self.order(order.client_order_id), note)
                    raise err from None
                log.info("order submitted", **ctx, side=order.side, notional=str(order.notional or ""),
                         qty=str(order.qty or ""))
                return _order_state(placed, note)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _with_note(state: OrderState, note: str) -> OrderState:
        return state if not note or state.note else replace(state, note=note)

    def order(self, client_order_id: str) -> OrderState:
        o = self._read(functools.partial(self.trading.get_order_by_client_id, client_order_id),
                       client_order_id=client_order_id)
        return _order_state(o)

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
        deadline = _time.monotonic() + timeout
        states: dict[str, OrderState] = {}
        pause = 0.5
        while True:
            for c in client_order_ids:
                if c not in states or not states[c].terminal:
                    states[c] = self.order(c)
            if all(s.terminal for s in states.values()) or _time.monotonic() >= deadline:
                return states
            self._sleep(min(pause, max(0.0, deadline - _time.monotonic())))
            pause = min(pause * 2, 5.0)

    def orders_since(self, since: datetime) -> list[OrderState]:
        """Every order submitted since `since`, all pages (Alpaca gives at most 500 per page)."""
        out: list[OrderState] = []
        after = since
        seen: set[str] = set()
        while True:
            req = GetOrdersRequest(status=QueryOrderStatus.ALL, after=after, limit=self.ORDER_PAGE,
                                   direction=Sort.ASC)
            page = self._read(functools.partial(self.trading.get_orders, req))
            fresh = [o for o in page if str(o.id) not in seen]
            for o in fresh:
                seen.add(str(o.id))
                out.append(_order_state(o))
            if len(page) < self.ORDER_PAGE or not fresh:
                return out
            after = max(o.submitted_at for o in page)

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
        """None yet (the corporate-actions issue fills this in)."""
        return []

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


def _order_state(o: Any, note: str = "") -> OrderState:
    side = getattr(o.side, "value", o.side)
    status = getattr(o.status, "value", o.status)
    return OrderState(o.client_order_id, str(o.id), o.symbol, str(side), str(status), _dec(o.notional), _dec(o.qty),
                      _dec(o.filled_qty) or Decimal("0"), _dec(o.filled_avg_price), note)
