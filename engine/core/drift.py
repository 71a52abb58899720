"""How far each slice of an account is from its target: rows for tables and trees. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

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

    def value_of(path: str, s) -> int:
        if isinstance(s, Security):
            return values.get(path, 0)
        prefix = path + "/"
        return sum(v for p, v in values.items() if p.startswith(prefix))

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
