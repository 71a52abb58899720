"""One request budget for a broker account: every HTTP request of an adapter (trading,
market data, corporate actions) waits here for its turn, so a window of thousands of
symbols stays under Alpaca's 200 requests a minute instead of collecting 429s.

The sliding-window log is pyrate-limiter's (an `InMemoryBucket` with one `Rate`); the
clock and the sleep are this module's, injected, so a test runs a whole window on a fake
clock without sleeping. A request at t counts against every window [t - 60 s, t].
"""

from __future__ import annotations

import threading
import time as _time
from typing import Callable

import structlog
from pyrate_limiter import Duration, InMemoryBucket, Rate, RateItem

log = structlog.get_logger("pies.broker.pacing")
MINUTE = 60.0


class Pacer:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = _time.monotonic,
                 sleep: Callable[[float], None] = _time.sleep, name: str = "alpaca"):
        if per_minute < 1:
            raise ValueError(f"requests_per_minute must be at least 1, not {per_minute}")
        self.per_minute = per_minute
        self.name = name
        self._clock, self._sleep = clock, sleep
        self._bucket = InMemoryBucket([Rate(per_minute, Duration.MINUTE)])
        self._lock = threading.Lock()
        self._pacing = False            # logged once per stretch of waiting, not per request
        self.waited = 0.0               # seconds slept so far (for the log and tests)
        self.requests = 0

    def _ms(self) -> int:
        return int(self._clock() * 1000)

    def acquire(self) -> float:
        """Wait until one more request fits in the last minute; the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._ms()
                item = RateItem(self.name, now)
                if self._bucket.put(item):
                    self._bucket.leak(now)           # forget what left the window
                    self.requests += 1
                    if waited == 0.0 and self._pacing:
                        self._pacing = False
                    return waited
                pause = max(1, int(self._bucket.waiting(item))) / 1000
                if not self._pacing:
                    self._pacing = True
                    log.info("rate limit: pacing requests", per_minute=self.per_minute, wait=round(pause, 2))
                self._sleep(pause)
                waited += pause
                self.waited += pause

    def seconds_for(self, requests: int) -> float:
        """About how long `requests` more requests take from now at this budget (0 when
        they fit in what is left of the current minute)."""
        with self._lock:
            now = self._ms()
            self._bucket.leak(now)
            room = self.per_minute - self._bucket.count()
        beyond = requests - room
        return 0.0 if beyond <= 0 else MINUTE * (beyond / self.per_minute)
