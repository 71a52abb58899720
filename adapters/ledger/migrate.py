"""Schema migrations with Alembic, driven from code (`pies db upgrade`, and whenever a
ledger is opened). Alembic is imported only when there is something to migrate: a command
on an up-to-date ledger checks one row and goes on (a test keeps HEAD equal to the
newest migration)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

HERE = Path(__file__).parent / "migrations"
HEAD = "0013"  # 0008 -> 0011 -> 0009 -> 0012 -> 0010 (corporate actions) -> 0013 (books without foreign keys)


def _config(engine: Engine):
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    return cfg


def up_to_date(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            return conn.execute(text("select version_num from alembic_version")).scalar() == HEAD
    except DBAPIError:
        return False                      # no table yet: a new ledger


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    from alembic import command
    before = current(engine)
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head()


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    from alembic.script import ScriptDirectory
    return ScriptDirectory(str(HERE)).get_current_head() or ""


def autogenerate(engine: Engine, message: str) -> None:  # pragma: no cover - a developer's tool
    from alembic import command
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
