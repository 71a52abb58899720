"""Market calendars for the simulated broker: a real exchange's (NYSE, from the
`exchange_calendars` package: holidays and early closes) or plain weekdays.

The exchange calendar is built once per process (about a second: it loads pandas) and only
when a day is asked for, so commands that never look at the calendar never pay for it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from .port import MarketDay

NY = ZoneInfo("America/New_York")


class Weekdays:
    """Monday to Friday, 09:30 to 16:00 New York, less the given holidays."""

    def __init__(self, holidays: frozenset[date] = frozenset(), early_closes: dict[date, time] | None = None):
        self.holidays = holidays
        self.early_closes = early_closes or {}

    def market_day(self, day: date) -> MarketDay | None:
        if day.weekday() >= 5 or day in self.holidays:
            return None
        close = self.early_closes.get(day, time(16, 0))
        return MarketDay(day, datetime.combine(day, time(9, 30), NY), datetime.combine(day, close, NY))


class Exchange(Weekdays):
    """An exchange's sessions (e.g. XNYS), plus any extra holidays; outside the years the
    package knows (it looks about a year ahead), plain weekdays."""

    def __init__(self, code: str = "XNYS", holidays: frozenset[date] = frozenset()):
        super().__init__(holidays)
        self.code = code

    def market_day(self, day: date) -> MarketDay | None:
        if day in self.holidays:
            return None
        sessions = _sessions(self.code)
        if not (sessions.first <= day <= sessions.last):
            return super().market_day(day)
        if day not in sessions.days:
            return None
        opens, closes = sessions.hours(day)
        return MarketDay(day, opens, closes)


class _Sessions:
    def __init__(self, code: str):
        import exchange_calendars as xcals
        today = date.today()
        self.cal = xcals.get_calendar(code, start=date(today.year - 5, 1, 1).isoformat(),
                                      end=(today + timedelta(days=730)).isoformat())
        self.days = frozenset(d.date() for d in self.cal.sessions)
        self.first, self.last = min(self.days), max(self.days)
        self._hours: dict[date, tuple[datetime, datetime]] = {}

    def hours(self, day: date) -> tuple[datetime, datetime]:
        if day not in self._hours:
            o, c = self.cal.session_open(day), self.cal.session_close(day)
            self._hours[day] = (o.to_pydatetime().astimezone(NY), c.to_pydatetime().astimezone(NY))
        return self._hours[day]


@cache
def _sessions(code: str) -> _Sessions:
    return _Sessions(code)
