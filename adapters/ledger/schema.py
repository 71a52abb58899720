"""The ledger's tables: the source of truth for who owns what.

Accounts follow a pie of a policy version; holdings are shares per (account, slice path);
events are append-only with an idempotency key; windows, intents, orders, fills and
allocations record every step of a trading window. A house account per broker account
holds what no account owns (rounding residue, unowned cash), visibly.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import Money, Shares


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(t: datetime) -> datetime:
    """SQLite gives back naive UTC datetimes; PostgreSQL aware ones."""
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class PolicyVersion(Base):
    __tablename__ = "policy_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("file", "sha256"),)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    pie: Mapped[str | None] = mapped_column(String(200))          # None for a house account
    policy_version_id: Mapped[int | None] = mapped_column(ForeignKey("policy_versions.id"))
    rules: Mapped[str] = mapped_column(String(100), default="m1")
    broker: Mapped[str] = mapped_column(String(100))
    cash: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    is_house: Mapped[bool] = mapped_column(Boolean, default=False)
    last_rebalanced: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(10), default="active")   # active | closing | closed
    owner: Mapped[str | None] = mapped_column(String(100), index=True)  # wash sales span an owner; None: itself

    @property
    def owner_id(self) -> str:
        """Who owns the account for wash sales (docs/books.md): its owner, by default itself."""
        return self.owner or self.name


class PolicyApply(Base):
    """One application of a policy version to the accounts following its file (a rollback
    is applying an older version's text again)."""

    __tablename__ = "policy_applies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"), index=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    source: Mapped[str] = mapped_column(String(20))                   # cli | daemon | auto
    accounts: Mapped[int] = mapped_column(Integer)                    # accounts moved to the version
    liquidations: Mapped[int] = mapped_column(Integer)                # liquidation events queued


class Holding(Base):
    __tablename__ = "holdings"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(500), primary_key=True)   # slice path; the symbol for the house
    symbol: Mapped[str] = mapped_column(String(20), index=True)
    shares: Mapped[Decimal] = mapped_column(Shares)


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)          # idempotency key
    kind: Mapped[str] = mapped_column(String(20))    # deposit withdrawal dividend rebalance target_change liquidation
    amount: Mapped[Decimal | None] = mapped_column(Money)
    path: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending planned done rejected canceled
    reason: Mapped[str | None] = mapped_column(Text)
    cause: Mapped[str | None] = mapped_column(String(30))           # engine.core.window.model.Cause
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_events_status", "status"), Index("ix_events_window_account", "window_id", "account_id"))


class Window(Base):
    __tablename__ = "windows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broker: Mapped[str] = mapped_column(String(100))
    trading_date: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(50))
    step: Mapped[str] = mapped_column(String(20), default="opened")   # the last step persisted (engine/shell/window.py)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    prices: Mapped[dict | None] = mapped_column(JSON)                # symbol -> price string, as planned
    report: Mapped[dict | None] = mapped_column(JSON)
    __table_args__ = (UniqueConstraint("broker", "trading_date", "name"),)


class WindowAccount(Base):
    """An account's part in a window: what its plan said about cash, and whether it was rejected."""

    __tablename__ = "window_accounts"
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(10))                  # planned | rejected
    reason: Mapped[str | None] = mapped_column(Text)
    cash_before: Mapped[Decimal] = mapped_column(Money)
    deposits: Mapped[Decimal] = mapped_column(Money)
    dividends: Mapped[Decimal] = mapped_column(Money)
    withdrawals: Mapped[Decimal] = mapped_column(Money)              # asked
    withdrawn: Mapped[Decimal | None] = mapped_column(Money)         # paid, at close
    cash_after: Mapped[Decimal | None] = mapped_column(Money)        # at close
    advance: Mapped[Decimal | None] = mapped_column(Money)           # the house covered, at close
    rebalanced: Mapped[bool] = mapped_column(Boolean, default=False) # the whole portfolio


class Intent(Base):
    """One slice trade an account intends in a window (planned dollars, signed)."""

    __tablename__ = "intents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    path: Mapped[str] = mapped_column(String(500))
    symbol: Mapped[str] = mapped_column(String(20))
    planned: Mapped[Decimal] = mapped_column(Money)                  # as planned, + buy, - sell
    amount: Mapped[Decimal] = mapped_column(Money)                   # after deferral and scaling
    sell_all: Mapped[bool] = mapped_column(Boolean, default=False)   # the whole holding goes
    events: Mapped[list | None] = mapped_column(JSON)                # event ids behind it
    __table_args__ = (Index("ix_intents_window_symbol", "window_id", "symbol"),)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id"), index=True)
    client_order_id: Mapped[str] = mapped_column(String(128), unique=True)
    phase: Mapped[str] = mapped_column(String(4), default="sell")     # sell orders go first, then buy
    symbol: Mapped[str] = mapped_column(String(20))
    side: Mapped[str] = mapped_column(String(4))
    notional: Mapped[Decimal | None] = mapped_column(Money)
    qty: Mapped[Decimal | None] = mapped_column(Shares)
    status: Mapped[str] = mapped_column(String(20), default="planned")  # planned submitted <broker status> skipped
    broker_id: Mapped[str | None] = mapped_column(String(100))
    filled_qty: Mapped[Decimal | None] = mapped_column(Shares)
    filled_avg_price: Mapped[Decimal | None] = mapped_column(Shares)
    note: Mapped[str | None] = mapped_column(Text)


class Fill(Base):
    """One part of an order's fill as the broker reported it (an order may fill in parts)."""

    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    seq: Mapped[int] = mapped_column(Integer)                          # 1, 2, ... per order
    qty: Mapped[Decimal] = mapped_column(Shares)
    price: Mapped[Decimal] = mapped_column(Shares)
    amount: Mapped[Decimal] = mapped_column(Money)
    __table_args__ = (UniqueConstraint("order_id", "seq"),)


class Allocation(Base):
    """How a fill (or an internal cross) was split across accounts and slices."""

    __tablename__ = "allocations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))   # None: an internal cross
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    path: Mapped[str] = mapped_column(String(500))
    symbol: Mapped[str] = mapped_column(String(20))
    shares: Mapped[Decimal] = mapped_column(Shares)                  # + received, - delivered
    amount: Mapped[Decimal] = mapped_column(Money)                   # + paid, - received
    __table_args__ = (Index("ix_allocations_window_account", "window_id", "account_id"),)


class ApiToken(Base):
    """A token for the HTTP API and the console: only its hash is kept (shown once)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))                     # viewer | operator | analyst | admin
    hash: Mapped[str] = mapped_column(String(64), unique=True)        # sha256 of the token
    hint: Mapped[str] = mapped_column(String(12))                     # its first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Every write through the API or the console: who, what, with which arguments, when."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    token: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    arguments: Mapped[dict | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(200))


class WindowShard(Base):
    """A shard of a window step done: the step's shards commit on their own, and a resumed
    step skips the ones recorded here."""

    __tablename__ = "window_shards"
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id"), primary_key=True)
    step: Mapped[str] = mapped_column(String(20), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)


class LotRow(Base):
    """A tax lot (engine.core.lots.Lot): shares of a symbol an account bought in one window.
    `shares` and `basis` are what is still open (basis with its wash adjustment); a lot
    whose shares are all sold is kept, closed, for the realized rows that name it."""

    __tablename__ = "lots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    symbol: Mapped[str] = mapped_column(String(20))
    bought: Mapped[date] = mapped_column(Date)
    acquired: Mapped[date] = mapped_column(Date)
    shares: Mapped[Decimal] = mapped_column(Shares)
    basis: Mapped[Decimal] = mapped_column(Money)
    wash_adjustment: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    replaced: Mapped[Decimal] = mapped_column(Shares, default=Decimal("0"))   # shares already a wash-sale replacement
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))    # the window that opened it
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_lots_account_closed", "account_id", "closed"),)


class RealizedRow(Base):
    """One consumed lot's part of a sale (engine.core.lots.Realized; a Form 8949 row)."""

    __tablename__ = "realized"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    symbol: Mapped[str] = mapped_column(String(20))
    acquired: Mapped[date] = mapped_column(Date)
    sold: Mapped[date] = mapped_column(Date)
    shares: Mapped[Decimal] = mapped_column(Shares)
    proceeds: Mapped[Decimal] = mapped_column(Money)
    basis: Mapped[Decimal] = mapped_column(Money)
    wash_sale_disallowed: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    washed: Mapped[Decimal] = mapped_column(Shares, default=Decimal("0"))     # shares of the loss matched by replacements
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    __table_args__ = (Index("ix_realized_account_sold", "account_id", "sold"),)


class ReconciliationAccept(Base):
    """An operator's acceptance of one break between the ledger and the broker: its line
    (a symbol, or `$cash`) and its difference exactly; trading goes on past this break
    while it stays the same (engine/core/reconcile.py)."""

    __tablename__ = "reconciliation_accepts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broker: Mapped[str] = mapped_column(String(100))
    symbol: Mapped[str] = mapped_column(String(20))
    difference: Mapped[Decimal] = mapped_column(Shares)               # shares, or dollars on the cash line
    reason: Mapped[str] = mapped_column(Text)
    accepted_by: Mapped[str] = mapped_column(String(100))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_reconciliation_accepts_broker", "broker", "symbol"),)
