"""`pies reconcile`: the ledger against each broker account now, each break with its
likely cause; `pies reconcile accept`: an operator lets trading go on past the unexplained
breaks as they are (docs/reconciliation.md)."""

from __future__ import annotations

import getpass
from decimal import Decimal

import click

from engine.core.roles import Caller
from engine.shell.cli.shared import ledger_of, print_json, service_of
from engine.shell.console import out


@click.group("reconcile", invoke_without_command=True)
@click.option("--broker", "broker_name", default=None, help="One broker account (default: every one in the settings).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def reconcile(ctx: click.Context, broker_name: str | None, as_json: bool) -> None:
    """Compare the ledger with the broker: per symbol the accounts' shares, the house's, the
    broker's, the difference and its likely cause; cash likewise. Exit 4 when an
    unexplained break bigger than the tolerance makes trading wait for an operator."""
    if ctx.invoked_subcommand is not None:
        return
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).reconciliation(broker_name)
    if as_json:
        print_json(doc)
    else:
        for b in doc["brokers"]:
            print_broker(b)
    if doc["waits"]:
        raise SystemExit(4)


def print_broker(b: dict) -> None:
    from rich.table import Table              # rich only when a table is printed (not for --json)
    from rich.text import Text
    out.print(Text(f"{b['broker']}", style="bold"))
    if b["error"]:
        out.print(Text(f"  {b['error']}", style="yellow"))
        return
    tol = b["tolerance"]
    table = Table(title_justify="left", title=f"ledger and broker (tolerance {tol['shares']} shares, ${tol['cash']})")
    for col in ("symbol", "ledger", "house", "broker", "difference", "likely cause"):
        table.add_column(col, justify="right" if col in ("ledger", "house", "broker", "difference") else "left")
    for x in b["lines"]:
        cause = x["cause"] or ""
        style = "red" if x["waits"] else ("yellow" if cause else "")
        said = f"{cause}: {x['detail']}" if cause else "agrees"
        if x.get("adjusted") and Decimal(x["adjusted"]):
            # A broker that does not apply corporate actions: its figure includes what it lacks.
            said += f" (broker: {x['adjusted']} of actions it does not apply added to what it reports)"
        table.add_row(Text(x["symbol"]), Text(x["ledger"]), Text(x["house"]), Text(x["broker"]),
                      Text(x["difference"], style=style), Text(said, style=style))
    out.print(table)
    verdict = ("trading waits for an operator: check the red lines, then `pies reconcile accept --reason ...`"
               if b["waits"] else "the ledger agrees with the broker" if b["agrees"]
               else "every break is explained or within the tolerance")
    out.print(Text(f"  {verdict}", style="red" if b["waits"] else ""))


@reconcile.command("accept")
@click.option("--reason", required=True, help="What was checked and why the broker's figures are right (audited).")
@click.option("--broker", "broker_name", default=None, help="Broker account (default: the first).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def accept(ctx: click.Context, reason: str, broker_name: str | None, as_json: bool) -> None:
    """Accept the unexplained breaks as they are now: the next window goes on past them
    while each stays the same (a changed difference waits again). Audited."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):          # no name for this uid (a container): still audited as the CLI
        user = "unknown"
    who = Caller(f"cli:{user}", "operator")
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).accept_breaks(reason, caller=who, broker=broker_name)
    if as_json:
        print_json(doc)
        return
    for a in doc["accepted"]:
        out.print(f"accepted #{a['id']}: {doc['broker']} {a['symbol']} difference {a['difference']}")
    out.print(f"by {doc['by']}: {doc['reason']}; run the window again (`pies window run`) to go on")
