"""`pies preview`: what one account would trade, from a policy, holdings and events.

Reads its inputs, calls the pure planner, prints a table or the JSON contract.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping

from rich.table import Table

from engine.core import events as ev
from engine.core.errors import Refused
from engine.core.money import MoneyError, fmt, market_cents, to_cents
from engine.core.planner import Plan
from rules.model import Pie


class InputError(Refused):
    """Bad input to preview; the message is the one line the user sees."""


def read_holdings(path: str) -> dict[str, int]:
    """{"A": "15000", "Pie 1/E": "7500.50"} -> cents per slice path (market values round to the cent)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read holdings: {e.strerror or e}") from None
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: holdings must be a JSON object of slice path -> dollar value")
    out: dict[str, int] = {}
    for key, value in data.items():
        try:
            d = Decimal(value) if isinstance(value, (str, Decimal)) else None
        except InvalidOperation:
            d = None
        if d is None or not d.is_finite():
            raise InputError(f"{path}: holding {key!r}: {value!r} is not a dollar amount")
        if d < 0:
            raise InputError(f"{path}: holding {key!r} cannot be negative ({value})")
        out[key.strip("/")] = market_cents(d)
    return out


def parse_event(text: str) -> ev.Event:
    """deposit:AMOUNT | withdraw:AMOUNT | dividend:AMOUNT | rebalance | rebalance:PIE/PATH."""
    kind, _, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind == "rebalance":
        return ev.Rebalance(arg.strip().strip("/"))
    makers = {"deposit": ev.Deposit, "withdraw": ev.Withdrawal, "withdrawal": ev.Withdrawal,
              "dividend": ev.Dividend}
    if kind not in makers:
        raise InputError(f"event {text!r}: use deposit:AMOUNT, withdraw:AMOUNT, dividend:AMOUNT, "
                         f"rebalance or rebalance:PIE/PATH")
    try:
        cents = to_cents(arg.strip().lstrip("$").replace(",", ""), what=f"event {text!r}:")
    except MoneyError as e:
        raise InputError(str(e)) from None
    if cents <= 0:
        raise InputError(f"event {text!r}: the amount must be positive")
    return makers[kind](cents)


def plan_json(plan: Plan) -> dict[str, object]:
    """The JSON contract of `pies preview --json`."""
    return {
        "trades": {p: fmt(c) for p, c in plan.trades.items()},
        "orders": [{"symbol": o.symbol, "side": o.side, "notional": fmt(o.cents)} for o in plan.orders],
        "deferred": [{"symbol": d.symbol, "side": d.side, "notional": fmt(d.cents), "reason": d.reason}
                     for d in plan.deferred],
        "holdings_after": {p: fmt(c) for p, c in plan.holdings_after.items()},
    }


def _pct(num: int, den: int) -> str:
    if den == 0:
        return "-"
    return f"{(Decimal(num) * 100 / Decimal(den)).quantize(Decimal('0.01'))}%"


def plan_table(pie: Pie, holdings: Mapping[str, int], plan: Plan) -> Table:
    """slice, target, value, drift, trade, after; pies show the sums of their slices."""
    table = Table(title=f'{pie.name}: preview', title_justify="left")
    for col in ("slice", "target", "value", "drift", "trade", "after"):
        table.add_column(col, justify="left" if col == "slice" else "right")

    def total(mapping: Mapping[str, int], prefix: str) -> int:
        return sum(v for p, v in mapping.items() if p.startswith(prefix))

    def rows(p: Pie, prefix: str, depth: int) -> None:
        parent_value = total(holdings, prefix)
        for s in p.slices:
            path = prefix + s.name
            is_pie = isinstance(s, Pie)
            key = path + "/" if is_pie else path
            value = total(holdings, key) if is_pie else holdings.get(path, 0)
            after = total(plan.holdings_after, key) if is_pie else plan.holdings_after.get(path, 0)
            trade = total(plan.trades, key) if is_pie else plan.trades.get(path, 0)
            drift = "-" if not parent_value else _pct(value * 10_000 - s.target_bp * parent_value, parent_value * 10_000)
            if drift not in ("-",) and not drift.startswith("-") and drift != "0.00%":
                drift = "+" + drift
            style = "bold cyan" if is_pie else None
            label = "  " * depth + (s.name if not is_pie else f"{s.name}/")
            table.add_row(label, f"{s.target}%", fmt(value), drift,
                          fmt(trade, signed=True) if trade else "", fmt(after), style=style)
            if is_pie:
                rows(s, path + "/", depth + 1)

    rows(pie, "", 0)
    for path in sorted(set(holdings) | set(plan.trades)):
        if pie.find(path) is None:
            table.add_row(f"{path} (removed)", "0%", fmt(holdings.get(path, 0)), "",
                          fmt(plan.trades.get(path, 0), signed=True), fmt(plan.holdings_after.get(path, 0)),
                          style="yellow")
    return table
