"""Corporate actions in the body shape of Alpaca's `GET /v1/corporate-actions` response,
read into the core's `CorporateAction` values (docs/corporate-actions.md).

    {"corporate_actions": {"forward_splits": [{"id": ..., "symbol": "VTI", "new_rate": 2,
      "old_rate": 1, "ex_date": "2026-03-05", "process_date": "2026-03-05", ...}], ...},
     "next_page_token": null}

The field names per kind are alpaca-py's (alpaca/data/models/corporate_actions.py). Rates
are read from the JSON text as `Decimal` (never through float). The simulated broker reads
its `corporate_actions_file` here; a malformed entry is refused with one line naming the
file, the entry and the field.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

from engine.core.corporate_actions import ActionKind, CorporateAction
from engine.core.errors import Refused

SYMBOL = re.compile(r"[A-Z][A-Z0-9]*([.\-][A-Z0-9]+)*")
MAX_SYMBOL = 20
MAX_ENTRIES = 10_000
MAX_ID = 80                 # the ledger keys an action by its id (100 characters, a unit split adds "/alternate")
MAX_BYTES = 10 * 1024 * 1024
ONE = Decimal(1)
ZERO = Decimal(0)


class ActionsFileError(Refused):
    """The actions file is malformed; the message names the file, the entry and the field."""


class _Entry:
    """One entry of one kind, with the file and its place for messages."""

    def __init__(self, where: str, raw: Any):
        self.where = where
        if not isinstance(raw, dict):
            raise ActionsFileError(f"{where}: must be an object")
        self.raw = raw

    def fail(self, field: str, why: str) -> ActionsFileError:
        return ActionsFileError(f"{self.where}.{field}: {why}")

    def symbol(self, field: str, required: bool = True) -> str | None:
        v = self.raw.get(field)
        if v is None and not required:
            return None
        if not isinstance(v, str) or len(v) > MAX_SYMBOL or not SYMBOL.fullmatch(v):
            raise self.fail(field, f"must be a ticker symbol in capitals like VTI, not {_shown(v)}")
        return v

    def rate(self, field: str, *, zero: bool = False) -> Decimal:
        v = self.raw.get(field)
        if isinstance(v, bool) or not isinstance(v, (int, Decimal, str)):
            raise self.fail(field, f"must be a number, not {_shown(v)}")
        try:
            d = Decimal(v) if not isinstance(v, Decimal) else v
        except InvalidOperation:
            raise self.fail(field, f"must be a number, not {_shown(v)}") from None
        if not d.is_finite() or d < 0 or (d == 0 and not zero):
            raise self.fail(field, f"must be {'zero or more' if zero else 'positive'}, not {_shown(v)}")
        return d

    def day(self, field: str) -> date:
        v = self.raw.get(field)
        try:
            return date.fromisoformat(v)          # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise self.fail(field, f"must be a date like 2026-03-05, not {_shown(v)}") from None

    def ident(self, kind: str, index: int) -> str:
        v = self.raw.get("id")
        if v is None:
            return f"{kind}-{index}"
        if not isinstance(v, str) or not v or len(v) > MAX_ID or not v.isprintable():
            raise self.fail("id", f"must be text of 1-{MAX_ID} printable characters, not {_shown(v)}")
        return v


def _shown(v: Any) -> str:
    s = repr(str(v) if isinstance(v, Decimal) else v)
    return s if len(s) <= 40 else s[:40] + "..."


def _lieu(e: _Entry) -> Decimal:
    """pies's own optional field (not Alpaca's): dollars per share after the action paid in
    lieu of the fraction of a share the broker does not issue; absent: fractions stay."""
    return ZERO if e.raw.get("cash_in_lieu") is None else e.rate("cash_in_lieu")


def _forward_split(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.FORWARD_SPLIT, e.symbol("symbol"), e.day("ex_date"),
                            old_rate=e.rate("old_rate"), new_rate=e.rate("new_rate"), lieu_price=_lieu(e))]


def _reverse_split(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.REVERSE_SPLIT, e.symbol("symbol"), e.day("ex_date"),
                            old_rate=e.rate("old_rate"), new_rate=e.rate("new_rate"), lieu_price=_lieu(e))]


def _stock_dividend(e: _Entry, i: str) -> list[CorporateAction]:
    # `rate`: new shares per share held; the holding becomes 1 + rate shares per share.
    return [CorporateAction(i, ActionKind.STOCK_DIVIDEND, e.symbol("symbol"), e.day("ex_date"),
                            old_rate=ONE, new_rate=ONE + e.rate("rate"), lieu_price=_lieu(e))]


def _spin_off(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.SPIN_OFF, e.symbol("source_symbol"), e.day("ex_date"),
                            new_symbol=e.symbol("new_symbol"), old_rate=e.rate("source_rate"),
                            new_rate=e.rate("new_rate"), source_keeps=True)]


def _unit_split(e: _Entry, i: str) -> list[CorporateAction]:
    """A unit becomes `new_rate` shares of `new_symbol` and `alternate_rate` of
    `alternate_symbol` per `old_rate` units: two values, the alternate's first (its id
    sorts first), so that the units still exist when it is distributed."""
    old, day, old_rate = e.symbol("old_symbol"), e.day("effective_date"), e.rate("old_rate")
    out = []
    alternate = e.symbol("alternate_symbol", required=False)
    if alternate is not None and e.raw.get("alternate_rate") not in (None, 0, "0"):
        out.append(CorporateAction(f"{i}/alternate", ActionKind.UNIT_SPLIT, old, day, new_symbol=alternate,
                                   old_rate=old_rate, new_rate=e.rate("alternate_rate"), source_keeps=True))
    out.append(CorporateAction(f"{i}/new", ActionKind.UNIT_SPLIT, old, day, new_symbol=e.symbol("new_symbol"),
                               old_rate=old_rate, new_rate=e.rate("new_rate")))
    return out


def _cash_merger(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.CASH_MERGER, e.symbol("acquiree_symbol"), e.day("effective_date"),
                            new_symbol=None, cash_rate=e.rate("rate"))]


def _stock_merger(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.STOCK_MERGER, e.symbol("acquiree_symbol"), e.day("effective_date"),
                            new_symbol=e.symbol("acquirer_symbol"), old_rate=e.rate("acquiree_rate"),
                            new_rate=e.rate("acquirer_rate"))]


def _stock_and_cash_merger(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.STOCK_AND_CASH_MERGER, e.symbol("acquiree_symbol"),
                            e.day("effective_date"), new_symbol=e.symbol("acquirer_symbol"),
                            old_rate=e.rate("acquiree_rate"), new_rate=e.rate("acquirer_rate"),
                            cash_rate=e.rate("cash_rate", zero=True))]


def _redemption(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.REDEMPTION, e.symbol("symbol"), e.day("process_date"),
                            cash_rate=e.rate("rate", zero=True))]


def _name_change(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.NAME_CHANGE, e.symbol("old_symbol"), e.day("process_date"),
                            new_symbol=e.symbol("new_symbol"), new_rate=ONE)]


def _worthless_removal(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.WORTHLESS_REMOVAL, e.symbol("symbol"), e.day("process_date"))]


def _cash_dividend(e: _Entry, i: str) -> list[CorporateAction]:
    # Listed for completeness: dividends arrive as the broker's cash activity, not applied here.
    return [CorporateAction(i, ActionKind.CASH_DIVIDEND, e.symbol("symbol"), e.day("ex_date"),
                            cash_rate=e.rate("rate"))]


def _rights(e: _Entry, i: str) -> list[CorporateAction]:
    return [CorporateAction(i, ActionKind.RIGHTS_DISTRIBUTION, e.symbol("source_symbol"), e.day("ex_date"),
                            new_symbol=e.symbol("new_symbol"), new_rate=e.rate("rate"), source_keeps=True)]


KINDS: dict[str, Callable[[_Entry, str], list[CorporateAction]]] = {
    "forward_splits": _forward_split, "reverse_splits": _reverse_split, "unit_splits": _unit_split,
    "stock_dividends": _stock_dividend, "cash_dividends": _cash_dividend, "spin_offs": _spin_off,
    "cash_mergers": _cash_merger, "stock_mergers": _stock_merger, "stock_and_cash_mergers": _stock_and_cash_merger,
    "redemptions": _redemption, "name_changes": _name_change, "worthless_removals": _worthless_removal,
    "rights_distributions": _rights,
}


def parse_actions(text: str, name: str = "<actions>") -> list[CorporateAction]:
    """Every action of the body, in effective-date then id order. Refuses a malformed body
    (ActionsFileError naming `name`, the entry and the field)."""
    try:
        body = json.loads(text, parse_float=Decimal, parse_constant=lambda c: c)
    except json.JSONDecodeError as e:
        raise ActionsFileError(f"{name}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(body, dict) or not isinstance(body.get("corporate_actions"), dict):
        raise ActionsFileError(f"{name}: must be an object with \"corporate_actions\": {{kind: [entries]}}")
    out: list[CorporateAction] = []
    count = 0
    for kind, entries in body["corporate_actions"].items():
        if kind not in KINDS:
            raise ActionsFileError(f"{name}: corporate_actions.{_shown(kind)[1:-1]}: unknown kind "
                                   f"(known: {', '.join(sorted(KINDS))})")
        if not isinstance(entries, list):
            raise ActionsFileError(f"{name}: corporate_actions.{kind}: must be a list of entries")
        for k, raw in enumerate(entries):
            count += 1
            if count > MAX_ENTRIES:
                raise ActionsFileError(f"{name}: more than {MAX_ENTRIES} entries; the limit is {MAX_ENTRIES}")
            e = _Entry(f"{name}: corporate_actions.{kind}[{k}]", raw)
            out.extend(KINDS[kind](e, e.ident(kind, k)))
    ids = [a.id for a in out]
    if len(set(ids)) != len(ids):
        dup = sorted(i for i in ids if ids.count(i) > 1)[0]
        raise ActionsFileError(f"{name}: two entries have the id {dup!r}")
    return sorted(out, key=lambda a: (a.effective, a.id))


def read_actions(path: str | Path) -> list[CorporateAction]:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise ActionsFileError(f"{p}: larger than {MAX_BYTES // (1024 * 1024)} MB; the limit is that")
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ActionsFileError(f"{p}: cannot read the corporate actions file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ActionsFileError(f"{p}: not UTF-8 text") from None
    return parse_actions(text, str(p))
