"""The one registry from rule action names to the algorithms that carry them out.

Its keys must be exactly the language's actions (rules/vocabulary.py); the check below runs
at import, so a mismatch fails every test at once instead of a trading window later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from rules import vocabulary

from . import allocate

Split = Callable[[int, Sequence[int], Sequence[int]], list[int]]


@dataclass(frozen=True, slots=True)
class Algorithm:
    kind: str                  # buy | sell | hold | rebalance | none | liquidate
    split: Split | None = None


REGISTRY: dict[str, Algorithm] = {
    "buy underweight-first": Algorithm("buy", allocate.fill_underweight_first),
    "buy pro-rata": Algorithm("buy", allocate.fill_pro_rata),
    "hold-cash": Algorithm("hold"),
    "sell overweight-first": Algorithm("sell", allocate.drain_overweight_first),
    "sell pro-rata": Algorithm("sell", allocate.drain_pro_rata),
    "rebalance": Algorithm("rebalance", allocate.rebalance_to),
    "no-trade": Algorithm("none"),
    "liquidate": Algorithm("liquidate"),
}

if set(REGISTRY) != set(vocabulary.ACTION_PARAMS):   # pragma: no cover - a programming error
    raise RuntimeError(f"engine registry {sorted(REGISTRY)} != language actions {sorted(vocabulary.ACTION_PARAMS)}")


def algorithm(name: str) -> Algorithm:
    return REGISTRY[name]
