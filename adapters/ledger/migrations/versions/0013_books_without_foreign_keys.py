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

from engine.core.errors import Conflict


revision = '0013'
down_revision = '0010'
branch_labels = None
depends_on = None

# Each table's keys: (column, referenced table).
KEYS = {
    "lots": (("account_id", "accounts"), ("window_id", "windows")),
    "realized": (("account_id", "accounts"), ("lot_id", "lots"), ("window_id", "windows")),
}
# SQLite's keys have no names (0009 made them so): batch mode names them as it reflects them.
SQLITE_NAMES = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}


def upgrade() -> None:
    bind = op.get_bind()
    # The same revision changed how the books step cuts its shards (a shard is known by
    # its number): a window stopped inside that step must finish on the code that began it.
    stopped = bind.execute(sa.text(
        "SELECT DISTINCT s.window_id FROM window_shards s JOIN windows w ON w.id = s.window_id "
        "WHERE s.step = 'booked' AND w.closed_at IS NULL ORDER BY s.window_id")).scalars().all()
    if stopped:
        raise Conflict(f"window {', '.join(map(str, stopped))} stopped in its books step: run it to its close "
                       "with the previous version of pies, then upgrade")
    if bind.dialect.name == "sqlite":
        # SQLite drops a key by copying the table; realized first, which names lots.
        for table in ("realized", "lots"):
            with op.batch_alter_table(table, naming_convention=SQLITE_NAMES, recreate="always") as t:
                for column, _ in KEYS[table]:
                    t.drop_constraint(f"{table}_{column}_fkey", type_="foreignkey")
        return
    inspector = sa.inspect(bind)
    for table in ("realized", "lots"):
        for fk in inspector.get_foreign_keys(table):
            op.drop_constraint(fk["name"], table, type_="foreignkey")
    op.execute("ALTER TABLE lots SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("ALTER TABLE lots RESET (fillfactor)")
    for table in ("lots", "realized"):
        with op.batch_alter_table(table) as t:
            for column, target in KEYS[table]:
                t.create_foreign_key(f"{table}_{column}_fkey", target, [column], ["id"])
