"""How far each slice of an account is from its target: rows for tables and trees. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Mapping

from engine.core.money import cents
from rules.model import Pie, Security


@dataclass(frozen=True, slots=True)
class SliceRow:
    path: str
    depth: int
    name: str
    is_pie: bool
    target_bp: int            # of its parent pie
    value: int                # cents
    share_bp: int | None      # of its parent's value, rounded down; None when the parent is empty
    drift_bp: int | None      # share - target, in basis points


def slice_rows(pie: Pie, values: Mapping[str, int]) -> list[SliceRow]:
    """Every slice, parents before children, with its value (a pie's is its securities')."""
    rows: list[SliceRow] = []
    below: dict[str, int] = {}            # pie path -> the values of every path under it, summed once
    for p, v in values.items():
        parts = p.split("/")
        for i in range(1, len(parts)):
            key = "/".join(parts[:i])
            below[key] = below.get(key, 0) + v

    def value_of(path: str, s) -> int:
        return values.get(path, 0) if isinstance(s, Security) else below.get(path, 0)

    def walk(p: Pie, prefix: str, depth: int, parent_value: int) -> None:
        for s in p.slices:
            path = prefix + s.name
            v = value_of(path, s)
            share = v * 10_000 // parent_value if parent_value else None
            rows.append(SliceRow(path, depth, s.name, isinstance(s, Pie), s.target_bp, v, share,
                                 None if share is None else share - s.target_bp))
            if isinstance(s, Pie):
                walk(s, path + "/", depth + 1, v)

    walk(pie, "", 0, sum(values.values()))
    return rows


def max_drift_bp(rows: list[SliceRow]) -> int | None:
    drifts = [abs(r.drift_bp) for r in rows if r.drift_bp is not None]
    return max(drifts) if drifts else None


class MissingPrice(LookupError):
    """A held symbol has no price: the caller names the account in its message."""

    def __init__(self, symbol: str):
        super().__init__(symbol)
        self.symbol = symbol


def slice_values(held: Mapping[str, tuple[str, Decimal]], prices: Mapping[str, Decimal]) -> dict[str, int]:
    """Cents per slice path of (path -> (symbol, shares)) holdings at `prices`, each to the
    nearest cent; empty holdings are left out. Raises MissingPrice for a held symbol without
    a price (the first by path, so the message is the same in every process)."""
    out: dict[str, int] = {}
    for path, (sym, shares) in sorted(held.items()):
        if shares:
            if sym not in prices:
                raise MissingPrice(sym)
            out[path] = cents(shares * prices[sym], ROUND_HALF_EVEN)
    return out
