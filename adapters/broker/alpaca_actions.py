"""Alpaca's corporate-actions body (`GET /v1/corporate-actions`) as the core's
`CorporateAction` values. No alpaca-py import: any adapter reading a body of this shape
(the Alpaca adapter; a file in the same shape) can use it.

Rates must arrive as `Decimal`s parsed from the JSON text (`json.loads(text,
parse_float=Decimal)`): a rate that went through a float is refused, never rounded.
Each kind takes effect on the day the issue's Decisions name: `ex_date` for splits,
reverse splits, stock dividends and spin-offs; `effective_date` for mergers and unit
splits; `process_date` for name changes, removals and redemptions.

What pies does not handle is not dropped silently: a rights distribution comes back as
`ActionKind.RIGHTS_DISTRIBUTION`, which stops a window that holds the symbol; a kind this module does not know is returned in
`Parsed.unknown` for the adapter to raise on (docs/brokers.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Mapping, Sequence

from engine.core.corporate_actions import ActionKind, CorporateAction

ONE = Decimal(1)
ZERO = Decimal(0)

# The body's keys (plural) -> the kind; cash dividends are left out on purpose: the cash a
# broker pays arrives as a dividend activity (Broker.cash_activities), the one source.
KINDS: Mapping[str, ActionKind] = {
    "forward_splits": ActionKind.FORWARD_SPLIT,
    "reverse_splits": ActionKind.REVERSE_SPLIT,
    "unit_splits": ActionKind.UNIT_SPLIT,
    "stock_dividends": ActionKind.STOCK_DIVIDEND,
    "spin_offs": ActionKind.SPIN_OFF,
    "cash_mergers": ActionKind.CASH_MERGER,
    "stock_mergers": ActionKind.STOCK_MERGER,
    "stock_and_cash_mergers": ActionKind.STOCK_AND_CASH_MERGER,
    "redemptions": ActionKind.REDEMPTION,
    "name_changes": ActionKind.NAME_CHANGE,
    "worthless_removals": ActionKind.WORTHLESS_REMOVAL,
    "rights_distributions": ActionKind.RIGHTS_DISTRIBUTION,
}
IGNORED = frozenset({"cash_dividends"})


class BodyError(ValueError):
    """An entry that cannot be read: names the kind, the entry's id and the field."""


@dataclass(frozen=True)
class Unknown:
    """An entry of a kind pies does not know: its kind, id and the symbols it names."""

    kind: str
    id: str
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class Parsed:
    actions: list[CorporateAction] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)


def _rate(kind: str, e: Mapping[str, Any], name: str, default: Decimal | None = None) -> Decimal:
    v = e.get(name)
    if v is None:
        if default is not None:
            return default
        raise BodyError(f"{kind} {e.get('id', '?')}: {name} is missing")
    if isinstance(v, float):
        raise BodyError(f"{kind} {e.get('id', '?')}: {name} was parsed as a float ({v!r}); "
                        f"parse the body with parse_float=Decimal")
    if isinstance(v, bool):
        raise BodyError(f"{kind} {e.get('id', '?')}: {name} is not a number: {v!r}")
    try:
        d = Decimal(v) if isinstance(v, (int, Decimal)) else Decimal(str(v).strip())
    except ArithmeticError:
        raise BodyError(f"{kind} {e.get('id', '?')}: {name} is not a number: {v!r}") from None
    if not d.is_finite() or d < 0:
        raise BodyError(f"{kind} {e.get('id', '?')}: {name} must be a finite number >= 0, not {v!r}")
    return d


def _day(kind: str, e: Mapping[str, Any], name: str) -> date:
    v = e.get(name)
    try:
        return date.fromisoformat(str(v)[:10])
    except (TypeError, ValueError):
        raise BodyError(f"{kind} {e.get('id', '?')}: {name} is not a date: {v!r}") from None


def _sym(kind: str, e: Mapping[str, Any], name: str) -> str:
    v = e.get(name)
    if not isinstance(v, str) or not v.strip():
        raise BodyError(f"{kind} {e.get('id', '?')}: {name} is missing")
    return v.strip()


def action(key: str, e: Mapping[str, Any]) -> list[CorporateAction]:
    """One entry of `corporate_actions[key]` as CorporateAction values (two for a unit split
    with an alternate leg). Raises BodyError naming the field at fault."""
    kind = KINDS[key]
    aid = e.get("id")
    if not isinstance(aid, str) or not aid:
        raise BodyError(f"{key}: an entry has no id")
    k = kind.value
    if kind in (ActionKind.FORWARD_SPLIT, ActionKind.REVERSE_SPLIT):
        old, new = _rate(k, e, "old_rate"), _rate(k, e, "new_rate")
        if old == 0 or new == 0:
            raise BodyError(f"{k} {aid}: a split's rates must be positive")
        return [CorporateAction(aid, kind, _sym(k, e, "symbol"), _day(k, e, "ex_date"), old_rate=old, new_rate=new)]
    if kind == ActionKind.STOCK_DIVIDEND:
        # `rate` new shares per share held: the holding grows to 1 + rate.
        return [CorporateAction(aid, kind, _sym(k, e, "symbol"), _day(k, e, "ex_date"),
                                old_rate=ONE, new_rate=ONE + _rate(k, e, "rate"))]
    if kind == ActionKind.SPIN_OFF:
        old = _rate(k, e, "source_rate")
        if old == 0:
            raise BodyError(f"{k} {aid}: source_rate must be positive")
        return [CorporateAction(aid, kind, _sym(k, e, "source_symbol"), _day(k, e, "ex_date"),
                                new_symbol=_sym(k, e, "new_symbol"), old_rate=old, new_rate=_rate(k, e, "new_rate"),
                                source_keeps=True)]
    if kind == ActionKind.CASH_MERGER:
        return [CorporateAction(aid, kind, _sym(k, e, "acquiree_symbol"), _day(k, e, "effective_date"),
                                new_rate=ZERO, cash_rate=_rate(k, e, "rate"))]
    if kind in (ActionKind.STOCK_MERGER, ActionKind.STOCK_AND_CASH_MERGER):
        old = _rate(k, e, "acquiree_rate")
        if old == 0:
            raise BodyError(f"{k} {aid}: acquiree_rate must be positive")
        cash = _rate(k, e, "cash_rate") if kind == ActionKind.STOCK_AND_CASH_MERGER else ZERO
        return [CorporateAction(aid, kind, _sym(k, e, "acquiree_symbol"), _day(k, e, "effective_date"),
                                new_symbol=_sym(k, e, "acquirer_symbol"), old_rate=old,
                                new_rate=_rate(k, e, "acquirer_rate"), cash_rate=cash)]
    if kind == ActionKind.UNIT_SPLIT:
        old = _rate(k, e, "old_rate")
        if old == 0:
            raise BodyError(f"{k} {aid}: old_rate must be positive")
        source, day = _sym(k, e, "old_symbol"), _day(k, e, "effective_date")
        # Two values, as the actions file reader gives them (action_file._unit_split): the
        # alternate shares (usually warrants) distributed first, the units still held
        # (`<id>/alternate`, sorting first), then the units becoming the new symbol (`<id>/new`).
        out = []
        alt = _rate(k, e, "alternate_rate", ZERO)
        if alt > 0 and e.get("alternate_symbol"):
            out.append(CorporateAction(f"{aid}/alternate", kind, source, day,
                                       new_symbol=_sym(k, e, "alternate_symbol"), old_rate=old, new_rate=alt,
                                       source_keeps=True))
        out.append(CorporateAction(f"{aid}/new", kind, source, day, new_symbol=_sym(k, e, "new_symbol"), old_rate=old,
                                   new_rate=_rate(k, e, "new_rate")))
        return out
    if kind == ActionKind.REDEMPTION:
        return [CorporateAction(aid, kind, _sym(k, e, "symbol"), _day(k, e, "process_date"),
                                new_rate=ZERO, cash_rate=_rate(k, e, "rate"))]
    if kind == ActionKind.NAME_CHANGE:
        return [CorporateAction(aid, kind, _sym(k, e, "old_symbol"), _day(k, e, "process_date"),
                                new_symbol=_sym(k, e, "new_symbol"), old_rate=ONE, new_rate=ONE)]
    if kind == ActionKind.WORTHLESS_REMOVAL:
        return [CorporateAction(aid, kind, _sym(k, e, "symbol"), _day(k, e, "process_date"), new_rate=ZERO)]
    # Rights distributions: not handled; the window stops if it holds the source symbol.
    return [CorporateAction(aid, kind, _sym(k, e, "source_symbol"), _day(k, e, "ex_date"),
                            new_symbol=e.get("new_symbol") or None, new_rate=_rate(k, e, "rate", ZERO),
                            source_keeps=True)]


def _named_symbols(e: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted({str(v) for k, v in e.items() if k.endswith("symbol") and isinstance(v, str) and v}))


def parse(body: Mapping[str, Any]) -> Parsed:
    """Every entry of a body's `corporate_actions` mapping (kind -> entries), in effective
    date then id order; entries of unknown kinds apart."""
    out = Parsed()
    for key in sorted(body):
        entries = body[key] or []
        if key in IGNORED:
            continue
        if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
            raise BodyError(f"{key}: expected a list of actions")
        for e in entries:
            if not isinstance(e, Mapping):
                raise BodyError(f"{key}: an entry is not an object")
            if key not in KINDS:
                out.unknown.append(Unknown(key, str(e.get("id", "?")), _named_symbols(e)))
                continue
            out.actions.extend(action(key, e))
    out.actions.sort(key=lambda a: (a.effective, a.id))
    return out
