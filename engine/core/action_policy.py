"""What applied corporate actions mean for policies (docs/corporate-actions.md).

A policy written before an action may still name a symbol that is gone. A renamed symbol
keeps working through an alias (the slice keeps its path and name; its trades use the new
symbol). A symbol cash-merged, merged into another, redeemed or removed is never bought
again: its slice is treated as excluded (0%, its share going to its siblings pro rata). In
both cases a warning names the file and line to edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Iterable, Mapping, Sequence

from rules.model import FULL, Pie, Security, Slice

from .corporate_actions import ActionKind, CorporateAction
from .corporate_moves import describe, gone_symbol


@dataclass(frozen=True, slots=True)
class SymbolChanges:
    """`renamed`: old symbol -> (its current name, the day of the first rename); `gone`:
    symbol -> the line that says what became of it."""

    renamed: Mapping[str, tuple[str, date]] = field(default_factory=dict)
    gone: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.renamed or self.gone)

    def current(self, symbol: str) -> str:
        return self.renamed[symbol][0] if symbol in self.renamed else symbol

    def key(self) -> tuple:
        return (tuple(sorted((k, v[0]) for k, v in self.renamed.items())), tuple(sorted(self.gone)))


def symbol_changes(actions: Iterable[CorporateAction]) -> SymbolChanges:
    """The renames (followed through chains: SQ -> XYZ -> ABC makes SQ an alias of ABC) and
    the symbols gone, from the actions applied, in effective-date then id order."""
    renamed: dict[str, tuple[str, date]] = {}
    gone: dict[str, str] = {}
    for a in sorted(actions, key=lambda a: (a.effective, a.id)):
        if a.kind == ActionKind.NAME_CHANGE and a.new_symbol:
            for old, (new, day) in list(renamed.items()):
                if new == a.symbol:
                    renamed[old] = (a.new_symbol, day)
            renamed[a.symbol] = (a.new_symbol, a.effective)
            gone.pop(a.new_symbol, None)
        elif gone_symbol(a):
            gone[a.symbol] = describe(a)
    return SymbolChanges(renamed, gone)


def is_gone(symbol: str, changes: SymbolChanges) -> bool:
    return changes.current(symbol) in changes.gone


def without_gone(pie: Pie, changes: SymbolChanges) -> Pie:
    """The pie with every slice whose symbol is gone at 0%, its target shared among its
    siblings pro rata (largest remainder; ties by the slice's place). A pie left with no
    target anywhere is itself at 0% in its parent. Unchanged when nothing is gone."""
    if not changes.gone:
        return pie
    out = _exclude(pie, changes)
    return out if out is not None else pie


def _exclude(pie: Pie, changes: SymbolChanges) -> Pie | None:
    """None when nothing below changed."""
    slices: list[Slice] = []
    changed = False
    for s in pie.slices:
        if isinstance(s, Security):
            if s.target_bp and is_gone(s.symbol, changes):
                slices.append(replace(s, target_bp=0))
                changed = True
            else:
                slices.append(s)
        else:
            inner = _exclude(s, changes)
            if inner is not None:
                changed = True
                if not any(x.target_bp for x in inner.slices):
                    inner = replace(inner, target_bp=0)
                slices.append(inner)
            else:
                slices.append(s)
    if not changed:
        return None
    kept = [i for i, s in enumerate(slices) if s.target_bp]
    if kept:
        total = sum(slices[i].target_bp for i in kept)
        exact = [(FULL * slices[i].target_bp, i) for i in kept]
        bps = {i: n // total for n, i in exact}
        order = sorted(kept, key=lambda i: (-((FULL * slices[i].target_bp) % total), i))
        for i in order[:FULL - sum(bps.values())]:
            bps[i] += 1
        slices = [replace(s, target_bp=bps[i]) if i in bps else s for i, s in enumerate(slices)]
    return replace(pie, slices=tuple(slices))


def stale_names(pies: Sequence[Pie] | Mapping[str, Pie], changes: SymbolChanges) -> list[str]:
    """One warning per slice of these pies that names a renamed or gone symbol, with the
    file and line to edit, sorted and without repeats:
    `growth.pie:7: SQ was renamed XYZ on 2026-03-05; the policy still says SQ`."""
    if not changes:
        return []
    found: set[tuple[str, int, str]] = set()            # (file, line, warning)
    for pie in (pies.values() if isinstance(pies, Mapping) else pies):
        for _, s in pie.walk():
            if not isinstance(s, Security):
                continue
            file, line = (s.source.file, s.source.line) if s.source else (pie.name, 0)
            where = f"{file}:{line}" if s.source else file
            if s.symbol in changes.renamed:
                new, day = changes.renamed[s.symbol]
                if new in changes.gone:
                    found.add((file, line, f"{where}: {s.symbol} was renamed {new} on {day} and "
                                            f"{changes.gone[new]}; the policy still says {s.symbol}, "
                                            f"so it is never bought again"))
                else:
                    found.add((file, line, f"{where}: {s.symbol} was renamed {new} on {day}; "
                                            f"the policy still says {s.symbol}"))
            elif s.symbol in changes.gone:
                found.add((file, line, f"{where}: {changes.gone[s.symbol]}; the policy still says {s.symbol}, "
                                        f"so it is never bought again"))
    return [w for _, _, w in sorted(found)]
