"""Migration 0009 rebuilds the books exactly from the window history a ledger holds.

How the old ledger is made, honestly: windows run with today's code (deposits, withdrawals
that sell, a rebalance, a policy change that liquidates slices, prices both ways), which
books as it goes; then the ledger is downgraded to the previous head, which drops the
lots, the realized rows and the owner column and leaves exactly the tables and rows that
revision knows (nothing before it depends on the books, and the windows' allocations are what
the code before the books wrote: the books step only reads them). Upgrading to 0009 must rebuild the
books the windows kept, row for row (ids aside: shards commit in any order)."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlalchemy import inspect, select, text

from adapters.ledger import migrate
from adapters.ledger.schema import Account, LotRow, RealizedRow
from adapters.ledger.store import Ledger

from books.window_world import LESS, World, book_problems

PREVIOUS = "0011"       # the head before the books (0008 when they were written; main's 0011 since)
from test_crash import books_snapshot


def snapshot(led: Ledger):
    with led.read() as s:
        names = {a.id: a.name for a in s.scalars(select(Account))}
        return books_snapshot(s, names)


def history(w: World) -> None:
    for i, name in enumerate(w.names):
        w.deposit(name, f"{2000 + 311 * i}.{i:02d}")
    w.window()
    for gap, moves in ((3, {"VTI": -8, "BND": 3, "AAPL": -12, "MSFT": 5}), (20, {"VTI": 6, "TIP": -4, "AAPL": 9}),
                       (40, {"VTI": -15, "VXUS": -10, "NVDA": 20}), (200, {"VTI": 30, "MSFT": -5})):
        w.move_prices(moves)
        w.withdraw("a1", "400")
        w.withdraw("a2", "650.55")
        w.deposit("a3", "125.10")
        w.rebalance("a4")
        w.window(gap)
    w.change_policy(LESS)           # VXUS and NVDA liquidated, their proceeds to the parents
    w.move_prices({"VXUS": -20, "NVDA": 15})
    w.window(3)
    w.withdraw("a0", "100000")      # more than it has: refused
    w.withdraw("a5", "900")
    w.window(400)


def test_migration_rebuilds_the_books_from_the_window_history(db_url, tmp_path):
    w = World(tmp_path / "w", db_url)
    history(w)
    kept = snapshot(w.led)
    lots, realized = kept
    assert len(realized) >= 10 and any(x[-1] for x in lots)                  # sells and closed lots
    assert {r[0] for r in realized} >= {"a1", "a2"}
    assert book_problems(w.led) == []
    w.close()

    led = Ledger(db_url, upgrade=False)
    cfg = migrate._config(led.engine)
    with led.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, PREVIOUS)
    assert migrate.current(led.engine) == PREVIOUS
    tables = inspect(led.engine).get_table_names()
    assert "lots" not in tables and "realized" not in tables
    assert migrate.upgrade(led.engine) == (PREVIOUS, migrate.HEAD)
    assert snapshot(led) == kept
    assert book_problems(led) == []
    # the ids go on after the rebuilt ones
    with led.tx() as s:
        top = max(s.scalars(select(LotRow.id)))
        s.add(LotRow(account_id=1, symbol="X", bought=date(2030, 1, 1), acquired=date(2030, 1, 1), shares=1,
                     basis=1))
        s.flush()
        assert max(s.scalars(select(LotRow.id))) == top + 1
        s.rollback()
    led.dispose()


def test_0013_drops_the_books_foreign_keys_and_keeps_every_row(db_url, tmp_path):
    """0013 takes the foreign keys off lots and realized (each was a per-row check on the
    window's largest writes), leaves room on lots' pages on PostgreSQL, and keeps their
    rows; downgrading puts the keys back."""
    w = World(tmp_path / "w", db_url, accounts=3)
    for name in w.names:
        w.deposit(name, "2500")
    w.window()
    w.move_prices({"VTI": -10, "AAPL": 12})
    w.withdraw("a1", "700")
    w.window(4)
    kept = snapshot(w.led)
    assert kept[1]                                             # realized rows to keep
    w.close()

    def keys(led):
        found = inspect(led.engine)
        return {t: sorted(fk["referred_table"] for fk in found.get_foreign_keys(t)) for t in ("lots", "realized")}

    def fill(led):
        """lots' storage options on PostgreSQL (SQLite has none)."""
        if led.engine.dialect.name != "postgresql":
            return None
        with led.engine.connect() as c:
            return c.execute(text("select reloptions from pg_class where oid = 'lots'::regclass")).scalar()

    led = Ledger(db_url, upgrade=False)
    assert keys(led) == {"lots": [], "realized": []}
    postgres = led.engine.dialect.name == "postgresql"
    assert fill(led) == (["fillfactor=90"] if postgres else None)
    cfg = migrate._config(led.engine)
    with led.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    assert keys(led) == {"lots": ["accounts", "windows"], "realized": ["accounts", "lots", "windows"]}
    assert fill(led) is None
    assert snapshot(led) == kept
    assert migrate.upgrade(led.engine) == ("0010", "0013")
    assert keys(led) == {"lots": [], "realized": []}
    assert fill(led) == (["fillfactor=90"] if postgres else None)
    assert [ix["name"] for t in ("lots", "realized") for ix in inspect(led.engine).get_indexes(t)] == \
        ["ix_lots_account_closed", "ix_realized_account_sold"]        # SQLite copied the tables: indexes too
    assert snapshot(led) == kept and book_problems(led) == []
    led.dispose()
