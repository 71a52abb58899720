"""One notion of now and today for every command and the daemon.

Today is always a window's own today: the date in the window's time zone (a window at
09:35 New York time belongs to New York's date, wherever the server is). `PIES_NOW` (an
ISO date-time with an offset) pins the clock, for tests and for rehearsing a day.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo


class ClockError(ValueError):
    pass


def now() -> datetime:
    pinned = os.environ.get("PIES_NOW")
    if pinned:
        try:
            t = datetime.fromisoformat(pinned)
        except ValueError:
            raise ClockError(f"PIES_NOW {pinned!r} is not a date-time like 2026-11-24T09:35:00-05:00") from None
        if t.tzinfo is None:
            raise ClockError(f"PIES_NOW {pinned!r} needs a UTC offset, like 2026-11-24T09:35:00-05:00")
        return t
    return datetime.now(timezone.utc)


def today(tz: str = "America/New_York") -> date:
    return now().astimezone(ZoneInfo(tz)).date()
