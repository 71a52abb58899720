"""the books' tables without foreign keys, and lots with room to change in place: lots and
realized rows are written by the hundred thousand per window, each key was checked row by
row, and a sale's lot updates found their pages full

A window of a million accounts writes about 365,000 lots, 210,000 realized rows and
updates 210,000 lots. On PostgreSQL every foreign key is a trigger that looks the
referenced row up and locks it (FOR KEY SHARE) for each row written: five keys doubled
the time of the books' COPYs (docs/books.md, "What it costs"). What they guarded cannot
happen through the ledger: accounts, windows and lots are never deleted, and the ids a
window writes are read from those rows in the same transaction. The books' tests check
every reference after every window instead (tests/books/window_world.py, book_problems).

On PostgreSQL, lots' pages are filled to 90 % (new pages: a ledger's existing lots keep
their pages until a VACUUM FULL): a sale that consumes part of a lot rewrites its row,
and with room on its page the new version stays there without touching the indexes (a
heap-only tuple), where on a full page it moved and added an entry to both indexes.

Revision ID: 0013
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

from adapters.ledger.types import Money, Shares


revision = '0013'
down_revision = '0010'
branch_labels = None
depends_on = None

# Each table's keys: (column, referenced table).
KEYS = {
    "lots": (("account_id", "accounts"), ("window_id", "windows")),
    "realized": (("account_id", "accounts"), ("lot_id", "lots"), ("window_id", "windows")),
}


def _lots(keys: bool) -> sa.Table:
    fk = (lambda target: [sa.ForeignKey(target)]) if keys else (lambda target: [])
    return sa.Table(
        'lots', sa.MetaData(),
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('account_id', sa.Integer(), *fk('accounts.id'), nullable=False),
        sa.Column('symbol', sa.String(length=20), nullable=False),
        sa.Column('bought', sa.Date(), nullable=False),
        sa.Column('acquired', sa.Date(), nullable=False),
        sa.Column('shares', Shares, nullable=False),
        sa.Column('basis', Money, nullable=False),
        sa.Column('wash_adjustment', Money, nullable=False),
        sa.Column('replaced', Shares, nullable=False),
        sa.Column('window_id', sa.Integer(), *fk('windows.id'), nullable=True),
        sa.Column('closed', sa.Boolean(), nullable=False),
        sa.Index('ix_lots_account_closed', 'account_id', 'closed'),
    )


def _realized(keys: bool) -> sa.Table:
    fk = (lambda target: [sa.ForeignKey(target)]) if keys else (lambda target: [])
    return sa.Table(
        'realized', sa.MetaData(),
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('account_id', sa.Integer(), *fk('accounts.id'), nullable=False),
        sa.Column('lot_id', sa.Integer(), *fk('lots.id'), nullable=False),
        sa.Column('symbol', sa.String(length=20), nullable=False),
        sa.Column('acquired', sa.Date(), nullable=False),
        sa.Column('sold', sa.Date(), nullable=False),
        sa.Column('shares', Shares, nullable=False),
        sa.Column('proceeds', Money, nullable=False),
        sa.Column('basis', Money, nullable=False),
        sa.Column('wash_sale_disallowed', Money, nullable=False),
        sa.Column('washed', Shares, nullable=False),
        sa.Column('window_id', sa.Integer(), *fk('windows.id'), nullable=True),
        sa.Index('ix_realized_account_sold', 'account_id', 'sold'),
    )


def _sqlite_recreate(keys: bool) -> None:
    """SQLite cannot drop or add a key: the tables are copied into their new shape, in
    the order that never drops a table another's key names (realized names lots)."""
    for table in ((_lots(keys), _realized(keys)) if keys else (_realized(keys), _lots(keys))):
        with op.batch_alter_table(table.name, copy_from=table, recreate="always"):
            pass


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite_recreate(keys=False)
        return
    inspector = sa.inspect(bind)
    for table in ("realized", "lots"):
        for fk in inspector.get_foreign_keys(table):
            op.drop_constraint(fk["name"], table, type_="foreignkey")
    op.execute("ALTER TABLE lots SET (fillfactor = 90)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite_recreate(keys=True)
        return
    op.execute("ALTER TABLE lots RESET (fillfactor)")
    for table in ("lots", "realized"):
        for column, target in KEYS[table]:
            op.create_foreign_key(f"{table}_{column}_fkey", table, target, [column], ["id"])
