"""Events for the next window: deposits, withdrawals, rebalances, their bulk import, canceling
one, and an account's history.

Each command is one ledger transaction; a mistake prints one line and exits 2 with nothing
written."""

from __future__ import annotations

from decimal import Decimal

import click
from engine.core.money import MoneyError, parse_dollars
from engine.shell.cli.shared import ledger_of, print_rows, service_of
from engine.shell.console import UserError, say


def _event_command(kind: str):
    @click.argument("name")
    @click.argument("amount")
    @click.option("--key", help="Idempotency key: the same key is recorded once (e.g. the bank reference).")
    @click.pass_context
    def cmd(ctx: click.Context, name: str, amount: str, key: str | None) -> None:
        try:
            cents = parse_dollars(amount, what=kind)     # refused before anything else is asked
        except MoneyError as e:
            raise UserError(str(e)) from None
        with ledger_of(ctx) as led:
            doc = service_of(ctx, led).record(kind, name, cents, key=key)
        word = "recorded" if doc["created"] else "already recorded"
        say(f"{kind} #{doc['event']} {word}: {name} {doc['amount_text']} (pending until the next window)")
    cmd.__doc__ = f"Record a {kind} for the next window."
    return cmd


# "-5" is an amount to refuse in words, not an unknown option.
deposit = click.command("deposit", context_settings={"ignore_unknown_options": True})(_event_command("deposit"))
withdraw = click.command("withdraw", context_settings={"ignore_unknown_options": True})(_event_command("withdrawal"))


@click.group("import")
def import_group() -> None:
    """Bulk input."""


@import_group.command("events")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
def import_events(ctx: click.Context, file: str) -> None:
    """Record the events of a CSV file (header: account,kind,amount,key,path; kind is
    deposit, withdrawal or rebalance) in one transaction: all of them, or none with every
    mistake listed by line."""
    import csv
    try:
        with open(file, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"account", "kind"} - set(reader.fieldnames or ())
            if missing:
                raise UserError(f"{file}:1: the header needs the columns account, kind, amount "
                                f"(and optionally key, path); missing: {', '.join(sorted(missing))}")
            unknown = set(reader.fieldnames or ()) - {"account", "kind", "amount", "key", "path"}
            if unknown:
                raise UserError(f"{file}:1: unknown columns: {', '.join(sorted(unknown))}")
            rows = list(reader)
    except OSError as e:
        raise UserError(f"{file}: cannot read: {e.strerror or e}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{file}: not a UTF-8 CSV file: {e}") from None
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).import_events(rows, where=file)
    say(f"{file}: {doc['recorded']} event(s) recorded, {doc['already_recorded']} already recorded "
        f"(pending until the next window)")


@import_group.command("accounts")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
def import_accounts(ctx: click.Context, file: str) -> None:
    """Open the accounts of a CSV file (header: name,pie and optionally policy, rules,
    broker) in one transaction: all of them, or none with every mistake listed by line.
    An account that exists already as asked is skipped."""
    from engine.shell.csv_input import read_rows
    rows = read_rows(file, required={"name", "pie"}, optional={"policy", "rules", "broker"})
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).add_accounts(rows, label=lambda i: f"{file}:{i + 2}")
    say(f"{file}: {doc['created']} account(s) opened, {doc['existing']} there already")


@click.command()
@click.argument("name")
@click.argument("path", required=False, default="")
@click.option("--key", help="Idempotency key.")
@click.pass_context
def rebalance(ctx: click.Context, name: str, path: str, key: str | None) -> None:
    """Request a rebalance of the whole portfolio, or of the nested pie at PATH."""
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).record("rebalance", name, path=path, key=key)
    say(f"rebalance #{doc['event']} of {name}{' ' + path if path else ''} "
        f"{'recorded' if doc['created'] else 'already recorded'}")


@click.command()
@click.argument("event_id", type=int)
@click.pass_context
def cancel(ctx: click.Context, event_id: int) -> None:
    """Cancel a pending event."""
    with ledger_of(ctx) as led:
        service_of(ctx, led).cancel(event_id)
    say(f"event #{event_id} canceled")


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history(ctx: click.Context, name: str, as_json: bool) -> None:
    """An account's events, oldest first."""
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).history(name)
    print_rows(doc, "events", as_json, f"{name}: history",
               {"#": lambda e: e["id"], "when (UTC)": lambda e: e["recorded_at"][:16].replace("T", " "),
                "event": lambda e: e["kind"], "amount": lambda e: e["amount"] or "", "slice": lambda e: e["path"] or "",
                "status": lambda e: e["status"], "reason": lambda e: e["reason"] or ""})
    if doc["trades"] and not as_json:
        print_rows(doc, "trades", False, f"{name}: trades",
                   {"day": lambda x: x["day"], "window": lambda x: x["window"], "slice": lambda x: x["slice"],
                    "symbol": lambda x: x["symbol"], "shares": lambda x: f"{Decimal(x['shares']):+}",
                    "cash": lambda x: f"{Decimal(x['cash']):+}"}, right=("shares", "cash"))
