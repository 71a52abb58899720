"""What `avoid wash-sales` needs at planning: the realized rows that the owners of some
accounts sold recently (any of their accounts), and who owns each planned account. Rows
in, rows out; which of them block a buy is the core's (engine/core/window/planning.py)."""

from __future__ import annotations

from datetime import date
from typing import Iterable

from sqlalchemy.orm import Session

from engine.core.lots import Realized

from .books_repo import accounts_of_owners, load_realized, owners_of
from .store import Ledger


def owners_recent_sales(s: Session, account_ids: Iterable[int], since: date) -> tuple[dict[int, str], list[Realized]]:
    """(planned account -> owner, the rows sold on or after `since` by any account of those owners)."""
    owner = owners_of(s, account_ids)
    if not owner:
        return {}, []
    everyone = accounts_of_owners(s, sorted(set(owner.values())))
    rows = load_realized(s, everyone, since=since)
    # Rows name accounts; the core matches them to owners through this map too.
    return {**everyone, **owner}, rows


def recent_sales(ledger: Ledger, account_ids: Iterable[int], since: date) -> tuple[dict[int, str], list[Realized]]:
    """owners_recent_sales in a read transaction of its own (the service's plan preview)."""
    with ledger.read() as s:
        return owners_recent_sales(s, account_ids, since)
