"""`pies lots`, `pies gains` and `pies performance`: an account's books (docs/books.md,
docs/performance.md). Each parses its arguments, asks the service and prints; `--json`
prints the service's document as it is."""

from __future__ import annotations

import re
from datetime import date

import click
from rich.table import Table
from rich.text import Text

from engine.shell.cli.shared import ledger_of, print_json, service_of
from engine.shell.console import UserError, out


def date_option(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r} is not a date like 2026-11-24") from None


def percent(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.2f}%"


@click.command("performance")
@click.argument("name")
@click.option("--from", "start", metavar="YYYY-MM-DD", help="The first day (default: the account's first window).")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="The last day (default: its last window).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def performance(ctx: click.Context, name: str, start: str | None, end: str | None, as_json: bool) -> None:
    """Time- and money-weighted return, value, flows, dividends, and realized and
    unrealized gain of an account, from its window history."""
    first, last = date_option(start, "--from"), date_option(end, "--to")
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).performance(name, first, last)
    if as_json:
        print_json(doc)
        return
    if not doc["windows"]:
        out.print(Text(f"{name}: no closed window in the period"))
        return
    t = Table(title=f"{name}: {doc['from']} to {doc['to']} ({doc['windows']} windows)", title_justify="left",
              show_header=False)
    t.add_column("", justify="left")
    t.add_column("", justify="right")
    rows = [("time-weighted return", percent(doc["twr"])), ("money-weighted return (annual)", percent(doc["mwr"])),
            ("start value", doc["start_value"]), ("end value", doc["end_value"]), ("deposits", doc["deposits"]),
            ("withdrawals", doc["withdrawals"]), ("net flows", doc["net_flows"]), ("dividends", doc["dividends"])]
    if "realized" in doc:
        rows += [("realized gain, short-term", doc["realized"]["short"]),
                 ("realized gain, long-term", doc["realized"]["long"]),
                 ("unrealized gain", doc["unrealized"]["gain"])]
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
