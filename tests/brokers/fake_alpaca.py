"""A fake Alpaca behind the real adapter: a `requests` transport mounted on the adapter's
sessions that answers from a little state (orders fill at once at fixed prices) with the
bodies of the committed cassettes (Alpaca's documented shapes), on a fake clock. It writes
down the clock's time of every request, so a test can count requests per sliding minute
without sleeping."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from urllib.parse import parse_qs, urlsplit

import requests
import yaml
from requests.adapters import BaseAdapter

from conftest_helpers import CASSETTES

EPOCH = datetime(2026, 11, 24, 14, 35, tzinfo=timezone.utc)


def _body(cassette: str, method: str, path_end: str):
    for i in yaml.safe_load((CASSETTES / cassette).read_text())["interactions"]:
        if i["request"]["method"] == method and urlsplit(i["request"]["uri"]).path.endswith(path_end):
            return json.loads(i["response"]["body"]["string"])
    raise LookupError(f"{cassette}: no {method} {path_end}")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeAlpaca(BaseAdapter):
    def __init__(self, clock: FakeClock, prices: dict[str, Decimal], cash: Decimal):
        super().__init__()
        self.clock, self.prices, self.cash = clock, prices, cash
        self.times: list[float] = []               # the fake time of every request
        self.paths: list[tuple[str, str]] = []
        self.unknown: list[str] = []
        self.orders: dict[str, dict] = {}          # by client order id, in submission order
        self.positions: dict[str, Decimal] = {}
        self._order_t = _body("contract_notional_buy_fills.yaml", "POST", "/orders")
        self._asset_t = _body("contract_prices_and_assets.yaml", "GET", "/assets")[0]
        self._trade_t = next(iter(_body("contract_prices_and_assets.yaml", "GET", "/trades/latest")["trades"].values()))
        self._position_t = _body("contract_positions_and_balance.yaml", "GET", "/positions")[0]
        self._account_t = _body("contract_positions_and_balance.yaml", "GET", "/account")

    def close(self) -> None:
        pass

    def send(self, request, **kw):
        self.times.append(self.clock())
        url = urlsplit(request.url)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        self.paths.append((request.method, path))
        status, body = 200, None
        if request.method == "GET" and path.endswith("/account/activities/DIV"):
            body = []
        elif request.method == "GET" and path.endswith("/stocks/trades/latest"):
            body = {"trades": {s: dict(self._trade_t, p=float(self.prices[s])) for s in q["symbols"].split(",")}}
        elif request.method == "GET" and path.endswith("/v2/assets"):
            body = [dict(self._asset_t, symbol=s, id=str(uuid.uuid5(uuid.NAMESPACE_URL, s))) for s in self.prices]
        elif request.method == "POST" and path.endswith("/v2/orders"):
            body = self._place(json.loads(request.body))
        elif request.method == "GET" and path.endswith("/v2/orders"):
            after = datetime.fromisoformat(q["after"])
            listed = [o for o in self.orders.values() if datetime.fromisoformat(o["submitted_at"]) > after]
            body = listed[:int(q.get("limit", 50))]
        elif request.method == "GET" and path.endswith("/orders:by_client_order_id"):
            o = self.orders.get(q["client_order_id"])
            status, body = (200, o) if o else (404, {"code": 40410000, "message": "order not found"})
        elif request.method == "GET" and path.endswith("/v2/positions"):
            body = [dict(self._position_t, symbol=s, qty=str(n), market_value=str((n * self.prices[s]).quantize(
                Decimal("0.01")))) for s, n in sorted(self.positions.items()) if n]
        elif request.method == "GET" and path.endswith("/v2/account"):
            body = dict(self._account_t, cash=str(self.cash))
        elif request.method == "GET" and path.endswith("/v1/corporate-actions"):
            body = {"corporate_actions": {}, "next_page_token": None}
        else:
            self.unknown.append(f"{request.method} {path}")
            status, body = 404, {"code": 40410000, "message": "not found"}
        r = requests.Response()
        r.status_code, r.url, r.request = status, request.url, request
        r._content = json.dumps(body).encode()
        r.headers["Content-Type"] = "application/json"
        return r

    def _place(self, req: dict) -> dict:
        """The order, filled at once (a notional buy: its notional / price, 9 decimals down)."""
        coid, sym = req["client_order_id"], req["symbol"]
        if coid in self.orders:
            return self.orders[coid]
        price = self.prices[sym]
        notional = Decimal(req["notional"])
        qty = (notional / price).quantize(Decimal("0.000000001"), rounding=ROUND_DOWN)
        at = EPOCH + timedelta(seconds=self.clock(), microseconds=len(self.orders))
        o = copy.deepcopy(self._order_t)
        o.update(id=str(uuid.uuid5(uuid.NAMESPACE_URL, coid)), client_order_id=coid, symbol=sym, side=req["side"],
                 notional=req["notional"], qty=None, status="filled", filled_qty=str(qty),
                 filled_avg_price=str(price), submitted_at=at.isoformat(), created_at=at.isoformat(),
                 updated_at=at.isoformat(), filled_at=at.isoformat())
        self.orders[coid] = o
        self.positions[sym] = self.positions.get(sym, Decimal(0)) + qty
        self.cash -= notional
        return o

    def most_in_a_minute(self) -> int:
        """The most requests in any window (t - 60 s, t] ending at a request."""
        times, worst, lo = sorted(self.times), 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - 60:
                lo += 1
            worst = max(worst, hi - lo + 1)
        return worst
