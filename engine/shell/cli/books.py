"""`pies lots`, `pies gains` and `pies performance`: an account's books (docs/books.md,
docs/performance.md). Each parses its arguments, asks the service and prints; `--json`
prints the service's document as it is."""

from __future__ import annotations

import re
from datetime import date

import click

from engine.shell.cli.shared import ask, ledger_of, print_json, print_rows, service_of
from engine.shell.console import UserError, out, say


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
    from rich.table import Table
    from rich.text import Text
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


@click.command("lots")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def lots(ctx: click.Context, name: str, as_json: bool) -> None:
    """The account's open tax lots: symbol, acquired, shares, basis (wash adjustment included)."""
    doc = ask(ctx, lambda service: service.lots(name))
    if not doc["lots"] and not as_json:
        say(f"{name}: no open lots")
        return
    print_rows(doc, "lots", as_json, f"{name}: open lots",
               {"lot": lambda x: x["id"], "symbol": lambda x: x["symbol"], "acquired": lambda x: x["acquired"],
                "shares": lambda x: x["shares"], "basis": lambda x: x["basis"],
                "wash adj.": lambda x: x["wash_adjustment"]},
               right=("lot", "shares", "basis", "wash adj."))


@click.command("gains")
@click.argument("name", required=False)
@click.option("--owner", help="Every account of this owner (instead of ACCOUNT).")
@click.option("--year", type=click.IntRange(1900, 9999), help="Only sales in this year.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True, help="Form 8949's columns, the term last.")
@click.pass_context
def gains(ctx: click.Context, name: str | None, owner: str | None, year: int | None, as_json: bool,
          as_csv: bool) -> None:
    """Realized gains of ACCOUNT (or of every account of --owner): one row per lot sold,
    with the short- and long-term totals."""
    from engine.shell.service import gains_csv
    if (name is None) == (owner is None):
        raise UserError("name an ACCOUNT or give --owner ID (one of them)")
    if as_json and as_csv:
        raise UserError("--json or --csv, not both")
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).gains(name, owner=owner, year=year)
    if as_json:
        print_json(doc)
        return
    if as_csv:
        click.echo(gains_csv(doc), nl=False)
        return
    who = f"owner {owner}" if owner else name
    columns = {"account": lambda r: r["account"]} if owner else {}
    columns.update({"symbol": lambda r: r["symbol"], "acquired": lambda r: r["acquired"], "sold": lambda r: r["sold"],
                    "shares": lambda r: r["shares"], "proceeds": lambda r: r["proceeds"],
                    "basis": lambda r: r["basis"], "wash sale": lambda r: r["wash_sale_disallowed"],
                    "gain": lambda r: r["gain"], "term": lambda r: r["term"]})
    print_rows(doc, "rows", False, f"{who}: realized gains" + (f" in {year}" if year else ""), columns,
               right=("shares", "proceeds", "basis", "wash sale", "gain"))
    out.print(f"short-term {doc['totals']['short']}  long-term {doc['totals']['long']}")
