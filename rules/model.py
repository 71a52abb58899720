"""The compiled plan: immutable, typed, exact. This is what the engine consumes.

Targets are integer basis points (hundredths of a percent; a pie's children sum to 10000),
cash settings integer cents. Source positions ride along but do not take part in equality,
so a reformatted file compiles to an equal plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterator, Union

from .diagnostics import Source

FULL = 10_000  # 100% in basis points


def percent(bp: int) -> Decimal:
    """Basis points as a percentage, e.g. 3334 -> Decimal('33.34')."""
    return (Decimal(bp) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class Security:
    symbol: str
    target_bp: int
    source: Source | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.symbol

    @property
    def target(self) -> Decimal:
        return percent(self.target_bp)


@dataclass(frozen=True, slots=True)
class Pie:
    name: str
    target_bp: int
    slices: tuple["Slice", ...]
    uses: str | None = None          # set when this slice is `use "Name"` of a top-level pie
    source: Source | None = field(default=None, compare=False, repr=False)

    @property
    def target(self) -> Decimal:
        return percent(self.target_bp)

    def walk(self, prefix: str = "") -> Iterator[tuple[str, "Slice"]]:
        """(path, slice) for every slice below this pie, parents before children."""
        for s in self.slices:
            path = f"{prefix}{s.name}"
            yield path, s
            if isinstance(s, Pie):
                yield from s.walk(path + "/")

    def find(self, path: str) -> "Slice | None":
        node: Slice = self
        for part in path.split("/"):
            if not isinstance(node, Pie):
                return None
            node = next((s for s in node.slices if s.name == part), None)  # type: ignore[assignment]
            if node is None:
                return None
        return node


Slice = Union[Security, Pie]


@dataclass(frozen=True, slots=True)
class Action:
    name: str                                   # e.g. "buy underweight-first"
    params: tuple[tuple[str, str], ...] = ()    # e.g. (("proceeds-to", "parent"),)

    def param(self, key: str) -> str | None:
        return dict(self.params).get(key)

    def __str__(self) -> str:
        return " ".join([self.name, *(f"{k} {v}" for k, v in self.params)])


@dataclass(frozen=True, slots=True)
class RuleSet:
    name: str
    deposit: Action
    dividend: Action
    withdrawal: Action
    rebalance: Action
    target_change: Action
    removal: Action
    cash_reserve_cents: int = 0
    invest_minimum_cents: int = 0
    drift_threshold_bp: int | None = None      # `when drift > X% rebalance`
    every: str | None = None                   # `every month rebalance`
    lot_method: str = "tax-min"                # `lots tax-min|fifo|lifo|hifo` (engine.core.lots.LotMethod)
    avoid_wash_sales: bool = False             # `avoid wash-sales`: no buy of a symbol the owner sold at a loss lately
    source: Source | None = field(default=None, compare=False, repr=False)

    def action(self, event: str) -> Action:
        return getattr(self, event.replace("-", "_"))


@dataclass(frozen=True, slots=True)
class Policy:
    """One compiled policy file: its top-level pies (with `use` expanded) and rule sets."""

    file: str
    pies: dict[str, Pie]
    rules: dict[str, RuleSet]

    def __hash__(self) -> int:  # dicts are not hashable; a policy is identified by its file
        return hash(self.file)
