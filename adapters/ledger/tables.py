"""The ledger's tables: the source of truth for who owns what.

Accounts follow a pie of a policy version; holdings are shares per (account, slice path);
events are append-only with an idempotency key; windows, intents, orders, fills and
allocations record every step of a trading window. A house account per broker account
holds what no account owns (rounding residue, unowned cash), visibly.

SQLAlchemy Core tables: cheap to import, and all a command that reads or writes a few rows
needs (bench/cli.py). The ORM classes mapped onto them, for the repositories that load and
change rows as objects (the window, the books), are schema.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import (JSON, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint)

from .types import Money, Shares


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(t: datetime) -> datetime:
    """SQLite gives back naive UTC datetimes; PostgreSQL aware ones."""
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


metadata = MetaData()


policy_versions = Table(
    "policy_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("file", String(500), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), default=utcnow, nullable=False),
    UniqueConstraint("file", "sha256"),
)


accounts = Table(
    "accounts", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), unique=True, nullable=False),
    Column("pie", String(200)),          # None for a house account
    Column("policy_version_id", ForeignKey("policy_versions.id")),
    Column("rules", String(100), default="m1", nullable=False),
    Column("broker", String(100), nullable=False),
    Column("cash", Money, default=Decimal("0"), nullable=False),
    Column("is_house", Boolean, default=False, nullable=False),
    Column("last_rebalanced", Date),
    Column("created_at", DateTime(timezone=True), default=utcnow, nullable=False),
    Column("status", String(10), default="active", nullable=False),   # active | closing | closed
    Column("owner", String(100), index=True),  # wash sales span an owner; None: itself
)


policy_applies = Table(
    "policy_applies", metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", ForeignKey("policy_versions.id"), index=True, nullable=False),
    Column("applied_at", DateTime(timezone=True), default=utcnow, nullable=False),
    Column("source", String(20), nullable=False),                   # cli | daemon | auto
    Column("accounts", Integer, nullable=False),                    # accounts moved to the version
    Column("liquidations", Integer, nullable=False),                # liquidation events queued
)


holdings = Table(
    "holdings", metadata,
    Column("account_id", ForeignKey("accounts.id"), primary_key=True),
    Column("path", String(500), primary_key=True),   # slice path; the symbol for the house
    Column("symbol", String(20), index=True, nullable=False),
    Column("shares", Shares, nullable=False),
)


events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", ForeignKey("accounts.id"), index=True, nullable=False),
    Column("key", String(200), unique=True, nullable=False),          # idempotency key
    Column("kind", String(20), nullable=False),    # deposit withdrawal dividend rebalance target_change liquidation
    Column("amount", Money),
    Column("path", String(500)),
    Column("status", String(10), default="pending", nullable=False),  # pending planned done rejected canceled
    Column("reason", Text),
    Column("cause", String(30)),           # engine.core.window.model.Cause
    Column("window_id", ForeignKey("windows.id")),
    Column("created_at", DateTime(timezone=True), default=utcnow, nullable=False),
    Index("ix_events_status", "status"),
    Index("ix_events_window_account", "window_id", "account_id"),
)


windows = Table(
    "windows", metadata,
    Column("id", Integer, primary_key=True),
    Column("broker", String(100), nullable=False),
    Column("trading_date", Date, nullable=False),
    Column("name", String(50), nullable=False),
    Column("step", String(20), default="opened", nullable=False),   # the last step persisted (engine/shell/window.py)
    Column("opened_at", DateTime(timezone=True), default=utcnow, nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("prices", JSON),                # symbol -> price string, as planned
    Column("report", JSON),
    UniqueConstraint("broker", "trading_date", "name"),
)


window_accounts = Table(
    "window_accounts", metadata,
    Column("window_id", ForeignKey("windows.id"), primary_key=True),
    Column("account_id", ForeignKey("accounts.id"), primary_key=True),
    Column("status", String(10), nullable=False),                  # planned | rejected
    Column("reason", Text),
    Column("cash_before", Money, nullable=False),
    Column("deposits", Money, nullable=False),
    Column("dividends", Money, nullable=False),
    Column("withdrawals", Money, nullable=False),              # asked
    Column("withdrawn", Money),         # paid, at close
    Column("cash_after", Money),        # at close
    Column("advance", Money),           # the house covered, at close
    Column("rebalanced", Boolean, default=False, nullable=False), # the whole portfolio
)


intents = Table(
    "intents", metadata,
    Column("id", Integer, primary_key=True),
    Column("window_id", ForeignKey("windows.id"), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("path", String(500), nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("planned", Money, nullable=False),                  # as planned, + buy, - sell
    Column("amount", Money, nullable=False),                   # after deferral and scaling
    Column("sell_all", Boolean, default=False, nullable=False),   # the whole holding goes
    Column("events", JSON),                # event ids behind it
    Index("ix_intents_window_symbol", "window_id", "symbol"),
)


orders = Table(
    "orders", metadata,
    Column("id", Integer, primary_key=True),
    Column("window_id", ForeignKey("windows.id"), index=True, nullable=False),
    Column("client_order_id", String(128), unique=True, nullable=False),
    Column("phase", String(4), default="sell", nullable=False),     # sell orders go first, then buy
    Column("symbol", String(20), nullable=False),
    Column("side", String(4), nullable=False),
    Column("notional", Money),
    Column("qty", Shares),
    Column("status", String(20), default="planned", nullable=False),  # planned submitted <broker status> skipped
    Column("broker_id", String(100)),
    Column("filled_qty", Shares),
    Column("filled_avg_price", Shares),
    Column("note", Text),
)


fills = Table(
    "fills", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False),
    Column("seq", Integer, nullable=False),                          # 1, 2, ... per order
    Column("qty", Shares, nullable=False),
    Column("price", Shares, nullable=False),
    Column("amount", Money, nullable=False),
    UniqueConstraint("order_id", "seq"),
)


allocations = Table(
    "allocations", metadata,
    Column("id", Integer, primary_key=True),
    Column("window_id", ForeignKey("windows.id"), nullable=False),
    Column("order_id", ForeignKey("orders.id")),   # None: an internal cross
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("path", String(500), nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("shares", Shares, nullable=False),                  # + received, - delivered
    Column("amount", Money, nullable=False),                   # + paid, - received
    Index("ix_allocations_window_account", "window_id", "account_id"),
)


api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), unique=True, nullable=False),
    Column("role", String(20), nullable=False),                     # viewer | operator | analyst | admin
    Column("hash", String(64), unique=True, nullable=False),        # sha256 of the token
    Column("hint", String(12), nullable=False),                     # its first characters, to tell tokens apart
    Column("created_at", DateTime(timezone=True), default=utcnow, nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
)


audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), default=utcnow, index=True, nullable=False),
    Column("token", String(100), nullable=False),
    Column("action", String(100), nullable=False),
    Column("arguments", JSON),
    Column("outcome", String(200), nullable=False),
)


window_shards = Table(
    "window_shards", metadata,
    Column("window_id", ForeignKey("windows.id"), primary_key=True),
    Column("step", String(20), primary_key=True),
    Column("shard", Integer, primary_key=True),
)


lots = Table(
    "lots", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, nullable=False),       # no foreign keys here: docs/books.md
    Column("symbol", String(20), nullable=False),
    Column("bought", Date, nullable=False),
    Column("acquired", Date, nullable=False),
    Column("shares", Shares, nullable=False),
    Column("basis", Money, nullable=False),
    Column("wash_adjustment", Money, default=Decimal("0"), nullable=False),
    Column("replaced", Shares, default=Decimal("0"), nullable=False),   # shares already a wash-sale replacement
    Column("window_id", Integer),                     # the window that opened it
    Column("closed", Boolean, default=False, nullable=False),
    Index("ix_lots_account_closed", "account_id", "closed"),
)   # on PostgreSQL its pages are filled to 90 %, so a sale's partial update stays on its page (migration 0013)


realized = Table(
    "realized", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, nullable=False),       # no foreign keys here: docs/books.md
    Column("lot_id", Integer, nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("acquired", Date, nullable=False),
    Column("sold", Date, nullable=False),
    Column("shares", Shares, nullable=False),
    Column("proceeds", Money, nullable=False),
    Column("basis", Money, nullable=False),
    Column("wash_sale_disallowed", Money, default=Decimal("0"), nullable=False),
    Column("washed", Shares, default=Decimal("0"), nullable=False),     # shares of the loss matched by replacements
    Column("window_id", Integer),
    Index("ix_realized_account_sold", "account_id", "sold"),
)


corporate_actions = Table(
    "corporate_actions", metadata,
    Column("broker", String(100), primary_key=True),
    Column("action_id", String(100), primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("new_symbol", String(20)),
    Column("effective", Date, nullable=False),
    Column("old_rate", String(50), nullable=False),
    Column("new_rate", String(50), nullable=False),
    Column("cash_rate", String(50), nullable=False),
    Column("source_keeps", Boolean, nullable=False),
    Column("window_id", ForeignKey("windows.id"), index=False),
    Column("applied_at", DateTime(timezone=True), default=utcnow, nullable=False),
    Column("summary", JSON),
    Index("ix_corporate_actions_window", "window_id"),
)


reconciliation_accepts = Table(
    "reconciliation_accepts", metadata,
    Column("id", Integer, primary_key=True),
    Column("broker", String(100), nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("difference", Shares, nullable=False),               # shares, or dollars on the cash line
    Column("reason", Text, nullable=False),
    Column("accepted_by", String(100), nullable=False),
    Column("accepted_at", DateTime(timezone=True), default=utcnow, nullable=False),
    Index("ix_reconciliation_accepts_broker", "broker", "symbol"),
)

