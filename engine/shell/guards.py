"""What stands between the network and the API: who the client is (X-Forwarded-For only from
trusted proxies), the failed-login limiter (bounded, forgetting), the request-body limit,
and the access log. ASGI middleware, so the API and the console share them.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

from engine.shell import logs

MAX_FAILURES = 5           # failed logins per client in WINDOW seconds before it must wait
WINDOW = 60.0
CAPACITY = 10_000          # clients (and token prefixes) remembered at most; the oldest go first
PREFIX = 9                 # a token's first characters: its `hint` ("pies_" and four more)
PROBLEM = "application/problem+json"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(addresses: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(a, strict=False) for a in addresses)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(text: str, proxies: tuple[Network, ...]) -> bool:
    a = _address(text)
    return a is not None and any(a in n for n in proxies)


def client_address(scope: dict[str, Any], proxies: tuple[Network, ...]) -> str:
    """The address a request came from: the peer's, unless the peer is a trusted proxy; then
    the right-most X-Forwarded-For hop that is not a trusted proxy (hops left of it are
    whatever the client wrote and prove nothing)."""
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            hops += [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            a = _address(hop)
            return str(a) if a is not None else peer       # garbage from a proxy: count it as the proxy
    return peer


def scheme(scope: dict[str, Any], proxies: tuple[Network, ...]) -> str:
    """"https" when the request came over TLS: directly, or to a trusted proxy that says so
    in X-Forwarded-Proto (then the session cookie is marked Secure)."""
    peer = scope["client"][0] if scope.get("client") else ""
    if proxies and _trusted(peer, proxies):
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-proto":
                return "https" if value.decode("latin-1").split(",")[-1].strip().lower() == "https" else "http"
    return scope.get("scheme", "http")


class Limiter:
    """Failed logins, counted per client address and per token prefix: after MAX_FAILURES
    within WINDOW seconds a client waits (429) until its oldest failure ages out, and so do
    wrong tokens sharing a prefix (guesses spread over many addresses). A valid token is
    refused only when its own client is locked out, so one client's failures never lock
    out another's valid token.

    Memory is bounded: keys are kept in the order of their last failure; those whose last
    failure is older than the window are forgotten on every write, and past CAPACITY keys
    the oldest go (hand-written because no limiter library here forgets by age and size
    and counts two keys at once)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, capacity: int = CAPACITY,
                 max_failures: int = MAX_FAILURES, window: float = WINDOW):
        self.clock, self.capacity, self.max_failures, self.window = clock, capacity, max_failures, window
        self._fails: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._fails)

    @staticmethod
    def _prefix(token: str) -> str | None:
        return "token:" + token[:PREFIX] if token else None

    def _wait(self, key: str | None, now: float) -> float:
        times = self._fails.get(key) if key else None
        if not times:
            return 0.0
        recent = [t for t in times if now - t <= self.window]
        return self.window - (now - recent[0]) if len(recent) >= self.max_failures else 0.0

    def wait(self, client: str, token: str = "") -> float:
        """Seconds `client` must wait (0: it may try); `token`, when given and not valid,
        is also held to its prefix's count."""
        with self._lock:
            now = self.clock()
            return max(self._wait("client:" + client, now), self._wait(self._prefix(token), now))

    def failed(self, client: str, token: str = "") -> None:
        with self._lock:
            now = self.clock()
            for key in ("client:" + client, self._prefix(token)):
                if key is None:
                    continue
                times = [t for t in self._fails.pop(key, []) if now - t <= self.window]
                self._fails[key] = (times + [now])[-self.max_failures:]    # newest last: order by last failure
            self._forget(now)

    def _forget(self, now: float) -> None:
        while self._fails:
            key, times = next(iter(self._fails.items()))
            if now - times[-1] <= self.window and len(self._fails) <= self.capacity:
                break
            self._fails.popitem(last=False)


async def _send_problem(send, status: int, title: str, detail: str, path: str,
                        headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail,
                       "instance": path}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuses a request body larger than `max_bytes` (or its route's own limit in `routes`,
    by exact path) with 413 problem details: at once
    from its Content-Length, or as soon as a streamed body passes the limit. What fits is
    read here and handed on, so nothing downstream ever holds more."""

    def __init__(self, app, max_bytes: int, routes: dict[str, int] | None = None):
        self.app, self.max_bytes, self.routes = app, max_bytes, routes or {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        limit = self.routes.get(path, self.max_bytes)     # uploads (backtest prices) have their own
        too_large = (f"the request body is larger than {limit} bytes, the limit "
                     f"{'of this route' if path in self.routes else '([api] max_body_kib)'}")
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return await _send_problem(send, 400, "invalid request", "Content-Length is not a number", path)
                if length > limit:
                    return await _send_problem(send, 413, "request body too large", too_large, path)
        held: list[dict] = []
        size = 0
        while True:
            message = await receive()
            held.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                return await _send_problem(send, 413, "request body too large", too_large, path)
            if not message.get("more_body", False):
                break

        async def replay() -> dict:
            return held.pop(0) if held else await receive()
        await self.app(scope, replay, send)


class AccessLog:
    """One line per request: method, path (no query string: it may hold search terms),
    status, milliseconds and the client's address (as the limiter sees it)."""

    def __init__(self, app, proxies: tuple[Network, ...] = ()):
        self.app, self.proxies = app, proxies
        self.log = logs.logger("pies.access")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, sending)
        finally:
            self.log.info("request", method=scope.get("method"), path=scope.get("path", "")[:200],
                          status=status[0], ms=round((time.perf_counter() - started) * 1000, 1),
                          client=client_address(scope, self.proxies))
