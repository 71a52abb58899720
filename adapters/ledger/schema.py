"""The ORM classes of the ledger's tables (tables.py), for the repositories that load and
change rows as objects: the window, the books, policies, tokens. A command that reads or
writes a few rows uses the tables alone and never imports the ORM (bench/cli.py).
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from . import tables
from .tables import aware, utcnow  # noqa: F401 (their old home)


class Base(DeclarativeBase):
    metadata = tables.metadata


class PolicyVersion(Base):
    __table__ = tables.policy_versions


class Account(Base):
    __table__ = tables.accounts

    @property
    def owner_id(self) -> str:
        """Who owns the account for wash sales (docs/books.md): its owner, by default itself."""
        return self.owner or self.name


class PolicyApply(Base):
    """One application of a policy version to the accounts following its file (a rollback
    is applying an older version's text again)."""

    __table__ = tables.policy_applies


class Holding(Base):
    __table__ = tables.holdings


class Event(Base):
    __table__ = tables.events


class Window(Base):
    __table__ = tables.windows


class WindowAccount(Base):
    """An account's part in a window: what its plan said about cash, and whether it was rejected."""

    __table__ = tables.window_accounts


class Intent(Base):
    """One slice trade an account intends in a window (planned dollars, signed)."""

    __table__ = tables.intents


class Order(Base):
    __table__ = tables.orders


class Fill(Base):
    """One part of an order's fill as the broker reported it (an order may fill in parts)."""

    __table__ = tables.fills


class Allocation(Base):
    """How a fill (or an internal cross) was split across accounts and slices."""

    __table__ = tables.allocations


class ApiToken(Base):
    """A token for the HTTP API and the console: only its hash is kept (shown once)."""

    __table__ = tables.api_tokens


class AuditEntry(Base):
    """Every write through the API or the console: who, what, with which arguments, when."""

    __table__ = tables.audit_log


class WindowShard(Base):
    """A shard of a window step done: the step's shards commit on their own, and a resumed
    step skips the ones recorded here."""

    __table__ = tables.window_shards


class LotRow(Base):
    """A tax lot (engine.core.lots.Lot): shares of a symbol an account bought in one window.
    `shares` and `basis` are what is still open (basis with its wash adjustment); a lot
    whose shares are all sold is kept, closed, for the realized rows that name it."""

    __table__ = tables.lots


class RealizedRow(Base):
    """One consumed lot's part of a sale (engine.core.lots.Realized; a Form 8949 row)."""

    __table__ = tables.realized


class CorporateActionRow(Base):
    """A corporate action this broker account's ledger applied, once (keyed by the source's
    id). Rates are the source's exact decimals as text. Renames here are the aliases an old
    symbol in a policy keeps working through (docs/corporate-actions.md)."""

    __table__ = tables.corporate_actions


class ReconciliationAccept(Base):
    """An operator's acceptance of one break between the ledger and the broker: its line
    (a symbol, or `$cash`) and its difference exactly; trading goes on past this break
    while it stays the same (engine/core/reconcile.py)."""

    __table__ = tables.reconciliation_accepts
