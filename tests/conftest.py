"""Database fixture: every ledger and window test runs on SQLite and on PostgreSQL.

PostgreSQL comes from PIES_TEST_POSTGRES_URL (default: the local server, database `test`);
each test gets a schema of its own. Without a server the PostgreSQL cases skip with the
reason, except where PIES_REQUIRE_POSTGRES=1 (CI): there they fail.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("PIES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_or_skip() -> None:
    try:
        with create_engine(PG_URL).connect() as c:
            c.execute(text("select 1"))
    except Exception as e:  # noqa: BLE001 - any failure to connect means "no server"
        reason = f"PostgreSQL not reachable at {PG_URL}: {type(e).__name__}"
        if os.environ.get("PIES_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (PIES_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    _pg_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'create schema "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()
