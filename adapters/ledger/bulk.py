"""Many rows in and out of the ledger at once, inside the caller's transaction.

On PostgreSQL rows are written with COPY (an update goes through a temporary table that
COPY fills, then one `UPDATE ... FROM`), and sums are taken by the database, whose NUMERIC
is exact. SQLite keeps money as exact text, so it gets executemany and sums in Python.
Values must already be exact: `Decimal` quantized to the column's places (money from cents,
shares from the core's 9-place rounding), never float.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sqlalchemy import ARRAY, Integer, String, Table, any_, bindparam, func, insert, literal, select, update

if TYPE_CHECKING:                  # an annotation only: a command that imports this never pays for the ORM
    from sqlalchemy.orm import Session

ZERO = Decimal(0)
_temp_names = itertools.count(1)


def on_postgres(s: Session) -> bool:
    return s.get_bind().dialect.name == "postgresql"


def _copy(s: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          json_columns: Sequence[str] = ()) -> int:
    raw = s.connection().connection.driver_connection
    at = [columns.index(c) for c in json_columns]
    n = 0
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            if at:      # JSON columns get their text; COPY parses it by the column's type
                row = list(row)
                for i in at:
                    row[i] = None if row[i] is None else json.dumps(row[i])
            cp.write_row(row)
            n += 1
    return n


def _by_index(conn, sql: str) -> None:
    """Run an UPDATE/DELETE joined to a temporary table as index lookups into the target.
    A shard's few thousand keys against a table of millions: the planner otherwise often
    prefers a hash join over a scan of the whole table (measured: 160 ms instead of a few
    ms per shard at a million accounts, a cost of shards times accounts)."""
    conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
    conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")
    conn.exec_driver_sql(sql)
    conn.exec_driver_sql("RESET enable_hashjoin")
    conn.exec_driver_sql("RESET enable_mergejoin")


def fetch(s: Session, stmt) -> list[tuple]:
    """The rows of a SELECT as plain tuples. On PostgreSQL straight from the driver (NUMERIC
    comes back as an exact Decimal already), about twice as fast as through SQLAlchemy's
    result processing for the window's large reads; elsewhere through SQLAlchemy, whose
    types turn SQLite's exact text into Decimal."""
    if not on_postgres(s):
        return [tuple(r) for r in s.execute(stmt)]
    compiled = stmt.compile(dialect=s.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    with s.connection().connection.driver_connection.cursor() as cur:
        cur.execute(str(compiled), compiled.construct_params())
        return cur.fetchall()


def insert_rows(s: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                batch: int = 20_000, json_columns: Sequence[str] = ()) -> int:
    """Insert rows (tuples in `columns` order); returns how many."""
    if on_postgres(s):
        return _copy(s, table.name, columns, rows, json_columns)
    return _executemany(s, insert(table), (dict(zip(columns, r)) for r in rows), batch)


def update_rows(s: Session, table: Table, keys: Sequence[str], columns: Sequence[str],
                rows: Iterable[Sequence[Any]], batch: int = 20_000) -> int:
    """Set `columns` of the rows matched by `keys` (each row: keys then columns)."""
    if on_postgres(s):
        sets = ", ".join(f"{c} = u.{c}" for c in columns)
        return _through_temp(s, table, [*keys, *columns], keys, rows,
                             lambda tmp, match: f"UPDATE {table.name} AS t SET {sets} FROM {tmp} AS u WHERE {match}")
    stmt = update(table).where(*[table.c[k] == bindparam(f"k_{k}") for k in keys]) \
        .values({c: bindparam(f"v_{c}") for c in columns})
    return _executemany(s, stmt, ({**{f"k_{k}": v for k, v in zip(keys, r)},
                                   **{f"v_{c}": v for c, v in zip(columns, r[len(keys):])}} for r in rows), batch)


def delete_rows(s: Session, table: Table, keys: Sequence[str], rows: Iterable[Sequence[Any]],
                batch: int = 20_000) -> int:
    """Delete the rows matched by `keys`."""
    if on_postgres(s):
        return _through_temp(s, table, keys, keys, rows,
                             lambda tmp, match: f"DELETE FROM {table.name} AS t USING {tmp} AS u WHERE {match}")
    stmt = table.delete().where(*[table.c[k] == bindparam(f"k_{k}") for k in keys])
    return _executemany(s, stmt, ({f"k_{k}": v for k, v in zip(keys, r)} for r in rows), batch)


def _through_temp(s: Session, table: Table, columns: Sequence[str], keys: Sequence[str],
                  rows: Iterable[Sequence[Any]], statement) -> int:
    """COPY rows into a temporary table shaped like `table`'s `columns`, then run
    `statement(temporary table, key match)` joining it to `table` by `keys`. No rows, no
    temporary table (a books shard of buys changes no lot)."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    rows = itertools.chain((first,), rows)
    tmp = f"pies_rows_{next(_temp_names)}"
    conn = s.connection()
    conn.exec_driver_sql(f"CREATE TEMP TABLE {tmp} ON COMMIT DROP AS "
                         f"SELECT {', '.join(columns)} FROM {table.name} WITH NO DATA")
    n = _copy(s, tmp, columns, rows)
    # Without statistics the planner guesses the temporary table's size and may scan
    # the whole target table to hash-join it; with them it looks rows up by index.
    conn.exec_driver_sql(f"ANALYZE {tmp}")
    _by_index(conn, statement(tmp, " AND ".join(f"t.{k} = u.{k}" for k in keys)))
    conn.exec_driver_sql(f"DROP TABLE {tmp}")
    return n


def _executemany(s: Session, stmt, params: Iterable[dict], batch: int) -> int:
    n = 0
    for chunk in _chunks(params, batch):
        s.connection().execute(stmt, chunk)
        n += len(chunk)
    return n


def id_in(s: Session, column, ids: Sequence[int]):
    """`column IN ids`: on PostgreSQL one array parameter (`= ANY`), however many ids."""
    if on_postgres(s):
        return column == any_(literal(list(ids), ARRAY(Integer)))
    return column.in_(list(ids))


def text_in(s: Session, column, values: Sequence[str]):
    """`column IN values` for strings: on PostgreSQL one array parameter (`= ANY`)."""
    if on_postgres(s):
        return column == any_(literal(list(values), ARRAY(String)))
    return column.in_(list(values))


def sums_by(s: Session, key, value, *where) -> dict[Any, Decimal]:
    """key -> exact sum of `value` over the rows matching `where`."""
    if on_postgres(s):
        return {k: Decimal(v) for k, v in s.execute(select(key, func.sum(value)).where(*where).group_by(key))}
    out: dict[Any, Decimal] = {}
    for k, v in s.execute(select(key, value).where(*where)):
        out[k] = out.get(k, ZERO) + v
    return out


def _chunks(rows: Iterable[Any], size: int) -> Iterable[list]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk
