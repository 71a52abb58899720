"""What a window collects before it plans: broker dividends split over the slices that
hold the symbol, and the recurring deposits that fall due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Collection, Mapping, Sequence

from engine.core.admission import HouseCash, admit_deposit
from engine.core.allocate import apportion
from engine.core.money import cents


@dataclass(frozen=True, slots=True)
class DividendSplit:
    parts: tuple[tuple[int, int], ...]   # (account id, cents), accounts in id order, no zeros
    house_cents: int


def split_dividend(cents: int, holders: Sequence[tuple[int, str, Decimal]], house_id: int) -> DividendSplit:
    """`cents` shared by (account, path, shares) holders in proportion to their shares, exact
    to the cent by largest remainder (ties to the earlier account and path). The house's own
    holding takes its part; with no holder the house takes all."""
    rows = sorted((aid, path, shares) for aid, path, shares in holders if shares > 0)
    if not rows:
        return DividendSplit((), cents)
    units = [int(shares.scaleb(9)) for _, _, shares in rows]
    parts = apportion(cents, [cents * u for u in units], sum(units), range(len(units)))
    by_account: dict[int, int] = {}
    for (aid, _, _), p in zip(rows, parts):
        by_account[aid] = by_account.get(aid, 0) + p
    house = by_account.pop(house_id, 0)
    return DividendSplit(tuple((aid, c) for aid, c in sorted(by_account.items()) if c), house)


@dataclass(frozen=True)
class Recurring:
    """A deposit that repeats: every day, or every week/month from its `day` on (ISO
    weekday 1-7, or day of the month), in the first window of the period."""

    account: str
    amount: Decimal
    every: str          # day | week | month
    day: int = 1

    def period(self, today: date) -> str | None:
        """The period key when due on `today`, else None."""
        if self.every == "day":
            return today.isoformat()
        if self.every == "week":
            y, wk, wd = today.isocalendar()
            return f"{y}-W{wk:02d}" if wd >= self.day else None
        if self.every == "month":
            return f"{today:%Y-%m}" if today.day >= self.day else None
        raise ValueError(f"recurring deposit every {self.every!r}: use day, week or month")


@dataclass(frozen=True, slots=True)
class DueDeposit:
    account_id: int
    key: str
    cents: int
    funded: bool                       # False: the house has too little unowned cash


def recurring_due(recurring: Sequence[Recurring], today: date, account_ids: Mapping[str, int],
                  recorded: Collection[str], house: HouseCash) -> tuple[tuple[DueDeposit, ...], tuple[str, ...]]:
    """The recurring deposits due today that are not recorded yet (their key names the
    period, so each is recorded once), funded in settings order while the house's unowned
    cash lasts (admitted as a recorded deposit is). Also returns the names of unknown accounts."""
    out: list[DueDeposit] = []
    unknown: list[str] = []
    for r in recurring:
        aid = account_ids.get(r.account)
        if aid is None:
            unknown.append(r.account)
            continue
        period = r.period(today)
        if period is None:
            continue
        key = f"recurring:{aid}:{r.every}:{period}"
        if key in recorded:
            continue
        due = cents(r.amount)                # the settings parsed it: whole cents
        funded = admit_deposit(due, r.account, house, in_batch=True).admitted
        if funded:
            house = house.after(due)
        out.append(DueDeposit(aid, key, due, funded))
    return tuple(out), tuple(unknown)
