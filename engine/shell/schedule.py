"""When windows run: whether one is due now, when each runs next, and how long a late
start may still run it. Read by the daemon (its jobs and catch-up) and by the service's
status (so the service never imports the daemon, which serves the API over the service).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from adapters.broker.port import BrokerError
from config.settings import Settings, Window


@dataclass(frozen=True)
class Due:
    run: bool
    reason: str
    final: bool = False          # today's window will not run any more (closed market, past its cut-off)


def window_due(w: Window, now: datetime, trading_day: bool) -> Due:
    """Should window `w` run now? Between its time and its cut-off on a trading day."""
    local = now.astimezone(ZoneInfo(w.timezone))
    if not trading_day:
        return Due(False, f"the market is closed on {local.date()}", final=True)
    if local.time() < w.at:
        return Due(False, f"before {w.at:%H:%M}")
    if local.time() >= w.cutoff:
        return Due(False, f"after the {w.cutoff:%H:%M} cut-off", final=True)
    return Due(True, "due")


def next_window(w: Window, now: datetime, market_day: Callable[[date], object | None],
                closed: Callable[[date], bool] = lambda d: False) -> datetime | None:
    """When window `w` next runs: today's time (or now, when it is due and not closed yet),
    else its time on the next market day; None if no market day within two weeks."""
    tz = ZoneInfo(w.timezone)
    local = now.astimezone(tz)
    for k in range(15):
        day = local.date() + timedelta(days=k)
        if market_day(day) is None or closed(day):
            continue
        if k == 0:
            if local.time() >= w.cutoff:
                continue
            return max(datetime.combine(day, w.at, tz), local)
        return datetime.combine(day, w.at, tz)
    return None


def upcoming_windows(settings: Settings, now: datetime, calendar: Callable[[str], Callable[[date], object | None]],
                     windows: list[dict]) -> list[dict]:
    """Per broker account, its upcoming windows soonest first (today's skipped once closed,
    from `windows`, the ledger's list), or the error its calendar gave."""
    closed = {(w["broker"], w["day"], w["name"]) for w in windows if w["step"] == "closed"}
    out = []
    for b in settings.brokers:
        try:
            cal = calendar(b.name)
        except BrokerError as e:
            out.append({"broker": b.name, "next": [], "error": str(e)})
            continue
        nxt = [(w, next_window(w, now, cal, lambda d, w=w: (b.name, d.isoformat(), w.name) in closed))
               for w in settings.windows]
        out.append({"broker": b.name, "error": None, "next": sorted(
            ({"window": w.name, "at": t.isoformat(), "timezone": w.timezone} for w, t in nxt if t),
            key=lambda x: x["at"])})
    return out


def grace_seconds(w: Window) -> int:
    start = datetime.combine(date(2000, 1, 3), w.at)
    end = datetime.combine(date(2000, 1, 3), w.cutoff)
    return max(1, int((end - start).total_seconds()))
