"""Alembic environment: the ledger's metadata, the URL from the caller (never from a file)."""

from alembic import context

from adapters.ledger.schema import Base

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is None:
    raise SystemExit("run migrations with `pies db upgrade`, which passes the ledger's connection")
run(connection)
