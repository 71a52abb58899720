"""Alerts: a JSON post to each configured webhook when something needs a person (a window
ends with problems or disagrees with the broker, a window pauses, trading stops, the
daemon stops unexpectedly).

Every log line marked `alert=True` becomes an alert, so the code that knows something is
wrong says so once, in its log line. Posts go out from a background thread with retries
(tenacity, exponential back-off) and never block a window; the payload carries the log
line's own fields after secrets are masked, never settings or keys.
"""

from __future__ import annotations

import queue
import socket
import sys
import threading
from typing import Any, Sequence

import httpx
from engine.shell import logs
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

log = logs.logger("pies.alerts")
_SKIP = {"alert", "_record", "_from_structlog"}


def _retryable(e: BaseException) -> bool:
    if isinstance(e, httpx.HTTPStatusError):
        return e.response.status_code >= 500 or e.response.status_code == 429
    return isinstance(e, httpx.TransportError)


class Alerter:
    def __init__(self, webhooks: Sequence[str], *, timeout: float = 5.0, retries: int = 3, backoff: float = 0.5):
        self.webhooks = tuple(webhooks)
        self._q: queue.Queue[dict | None] = queue.Queue()
        self._client = httpx.Client(timeout=timeout)
        self._post = retry(stop=stop_after_attempt(max(1, retries)), wait=wait_exponential(multiplier=backoff, max=30),
                           retry=retry_if_exception(_retryable), reraise=True)(self._post_once)
        self.sent = 0
        self.failed = 0
        self._worker = threading.Thread(target=self._run, name="pies-alerts", daemon=True)
        self._worker.start()

    def processor(self, _logger, _name, event: dict) -> dict:
        """A structlog processor: lines marked alert=True are queued (after masking)."""
        if event.get("alert") and self.webhooks:
            payload = {k: _plain(v) for k, v in event.items() if k not in _SKIP}
            payload.setdefault("host", socket.gethostname())
            self._q.put({"source": "pies", "alert": payload.get("event", ""), **payload})
        return event

    def _post_once(self, url: str, body: dict) -> None:
        self._client.post(url, json=body).raise_for_status()

    def _run(self) -> None:
        while True:
            body = self._q.get()
            try:
                if body is None:
                    return
                for url in self.webhooks:
                    try:
                        self._post(url, body)
                        self.sent += 1
                    except Exception as e:  # noqa: BLE001 - an alert that cannot go out must not stop pies
                        self.failed += 1
                        print(f'{{"event": "alert not delivered", "error": "{type(e).__name__}"}}', flush=True,
                              file=sys.stderr)
            finally:
                self._q.task_done()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait (a bounded time) for queued alerts to go out, e.g. before the daemon exits."""
        done = threading.Event()
        threading.Thread(target=lambda: (self._q.join(), done.set()), daemon=True).start()
        done.wait(timeout)

    def close(self) -> None:
        self.flush()
        self._q.put(None)
        self._client.close()


def _plain(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)
