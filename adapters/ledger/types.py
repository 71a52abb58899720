"""Exact numbers in both databases: NUMERIC in PostgreSQL, text in SQLite (whose NUMERIC
is a float underneath). Python sees `Decimal` either way, never float."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Numeric, String
from sqlalchemy.types import TypeDecorator


class Exact(TypeDecorator):
    """A Decimal with a fixed number of places, stored exactly."""

    impl = Numeric
    cache_ok = True

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale
        self.quantum = Decimal(1).scaleb(-scale)

    def __repr__(self) -> str:   # what Alembic writes into a migration
        return f"Exact({self.scale})"

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(28, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money and shares are never floats")
        d = Decimal(value)
        if d != d.quantize(self.quantum):
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        d = d.quantize(self.quantum)
        return str(d) if dialect.name == "sqlite" else d

    def process_result_value(self, value, dialect):
        if value is None or isinstance(value, Decimal):
            return value          # PostgreSQL's NUMERIC(28, scale) comes back with its places
        return Decimal(value).quantize(self.quantum)


Money = Exact(2)
Shares = Exact(9)
