"""`pies account ...`, `pies accounts` and `pies plan`: the accounts, what they hold and what
the next window would trade for them."""

from __future__ import annotations

import click
import rules
from engine.shell.cli.shared import ask, ledger_of, print_json, print_rows, service_of, settings_of
from engine.shell.console import UserError, out


@click.group(invoke_without_command=True)
@click.pass_context
def account(ctx: click.Context) -> None:
    """Add or show an account."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@account.command("add")
@click.argument("name")
@click.option("--pie", "pie", required=True, help="The top-level pie the account follows.")
@click.option("--policy", "policy_file", help="Its policy file (default: the first in the settings).")
@click.option("--rules", "rules_name", default=rules.DEFAULT_RULES, show_default=True)
@click.option("--broker", "broker_name", help="The broker account (default: from the settings).")
@click.option("--owner", "owner", help="Who owns it, for wash sales across accounts (default: the account itself).")
@click.pass_context
def account_add(ctx: click.Context, name: str, pie: str, policy_file: str | None, rules_name: str,
                broker_name: str | None, owner: str | None) -> None:
    """Open an account that follows PIE."""
    s = settings_of(ctx)
    file = policy_file or (s.policy_files[0] if s.policy_files else None)
    if not file:
        raise UserError("no --policy given and no policy files in the settings")
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).add_account(name, pie, file, rules=rules_name, broker=broker_name, owner=owner)
    out.print(f"account {name!r} follows {pie!r} of {file} with rules {rules_name!r} on {doc['broker']!r}"
              + (f", owned by {doc['owner']!r}" if doc["owner"] != name else ""))


@account.command("set-owner")
@click.argument("name")
@click.argument("owner")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def account_set_owner(ctx: click.Context, name: str, owner: str, as_json: bool) -> None:
    """Set who owns the account: wash sales count across all accounts of one owner
    (OWNER = the account's own name makes it its own owner again)."""
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).set_owner(name, owner)
    if as_json:
        print_json(doc)
        return
    out.print(f"account {name!r} is owned by {doc['owner']!r}")


@account.command("move")
@click.argument("name")
@click.option("--pie", "pie", required=True, help="The top-level pie the account follows from now on.")
@click.option("--policy", "policy_file", help="Its policy file (default: the version the account follows).")
@click.option("--rules", "rules_name", help="Its rule set (default: the account's own).")
@click.pass_context
def account_move(ctx: click.Context, name: str, pie: str, policy_file: str | None, rules_name: str | None) -> None:
    """Move an account to another pie or rule set: held slices the new pie lacks are
    liquidated into it at the next window; the rest waits for a cash event or rebalance."""
    with ledger_of(ctx) as led:
        queued = service_of(ctx, led).move_account(name, pie, policy_file, rules_name)["queued"]
    out.print(f"account {name!r} follows {pie!r}" + ("" if queued else " (nothing changes)"))
    for q in queued:
        out.print(f"  queued {q}")


@account.command("close")
@click.argument("name")
@click.pass_context
def account_close(ctx: click.Context, name: str) -> None:
    """Close an account: the next window sells everything and withdraws all its cash."""
    doc = ask(ctx, lambda service: service.close_account(name))
    out.print(f"account {name!r} is closing (event #{doc['event']}): the next window sells everything and "
              f"withdraws its cash; `pies plan {name}` shows what it will trade")


@account.command("show")
@click.argument("name")
@click.option("--live", is_flag=True, help="Price at the broker's latest prices (default: the last window's).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def account_show(ctx: click.Context, name: str, live: bool, as_json: bool) -> None:
    """The account's pie as a tree: target, actual share, drift and value per slice."""
    doc = ask(ctx, lambda service: service.account(name, live=live))
    if as_json:
        print_json(doc)
        return
    from rich.text import Text
    from rich.tree import Tree
    root = Tree(f"[bold cyan]{doc['account']}[/bold cyan]: {doc['pie']}  value ${doc['value']}  cash "
                f"${doc['cash']}  rules {doc['rules']}  broker {doc['broker']}"
                + ("" if doc["status"] == "active" else f"  {doc['status']}"))
    nodes = {"": root}
    for r in doc["slices"]:
        parent = nodes[r["path"].rpartition("/")[0]]
        drift = "" if r["drift"] is None else f"  drift {r['drift']}"
        label = f"[bold{' cyan' if r['pie'] else ''}]{r['name']}[/]  target {r['target']}  " \
                f"actual {r['actual'] or '-'}{drift}  ${r['value']}"
        nodes[r["path"]] = parent.add(label)
    for x in doc["not_in_pie"]:
        root.add(f"[yellow]{x['path']} (not in the pie: liquidated at the next window)[/yellow]  ${x['value']}")
    out.print(root)
    for e in doc["pending"]:
        out.print(Text(f"  pending #{e['id']} {e['kind']}" + (f" ${e['amount']}" if e["amount"] else "")
                       + (f" {e['path']}" if e["path"] else "")))
    if doc["basis"]:
        from rich.table import Table
        t = Table(title="cost basis and unrealized gain", title_justify="left")
        for col in ("symbol", "shares", "value", "basis", "unrealized", "long-term", "long-term share"):
            t.add_column(col, justify="left" if col == "symbol" else "right")
        for r in doc["basis"] + [{"symbol": "total", "shares": "", **doc["unrealized"]}]:
            t.add_row(r["symbol"], r["shares"], r["value"], r["basis"], r["unrealized"], r["long_term"],
                      r["long_term_share"] or "-")
        out.print(t)


@click.command("plan")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def plan_next(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """What the next window would trade right now, at current prices, for one account
    (or every account it would plan, with the orders netted across them). Writes nothing."""
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).plan(name)
    day = doc["day"]
    if as_json:
        print_json(doc)
        return
    if not doc["accounts"]:
        out.print(f"nothing to trade: no account has pending events or a trigger due ({day})")
    for a in doc["accounts"]:
        head = f"[bold]{a['account']}[/bold]: " + ("closing: sells everything and withdraws all cash"
                                                 if a["closing"] else f"cash ${a['cash']}")
        if a["status"] == "refused":
            head += f"  [red]refused: {a['reason']}[/red]"
        out.print(head)
        for t in a["trades"]:
            out.print(f"  {t['side']:<4} {t['slice']:<28} ${t['amount']:>12}" + ("  (all of it)" if t["whole_holding"] else ""))
        for e in a["events"]:
            out.print(f"  event #{e['id']}: {e['outcome']}" + (f" ({e['reason']})" if e["reason"] else ""))
        for h in a["held_back"]:
            from rich.text import Text
            out.print(Text(f"  {h['reason']}", style="yellow"))
        if a["tax"]["total"] != "0.00" or any(t["side"] == "sell" for t in a["trades"]):
            out.print(f"  estimated realized gain: short-term ${a['tax']['short']}, long-term ${a['tax']['long']}")
    if len(doc["accounts"]) > 1 or not name:
        if len(doc["accounts"]) > 1:
            out.print(f"estimated realized gain in all: short-term ${doc['tax']['short']}, "
                      f"long-term ${doc['tax']['long']}")
        for o in doc["orders"]:
            out.print(f"  order {o['side']:<4} {o['symbol']:<8} " + (f"${o['notional']}" if o["notional"] else f"{o['qty']} sh"))


@click.command()
@click.option("--live", is_flag=True, help="Price at the broker's latest prices (default: the last window's).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--page", default=1, show_default=True)
@click.option("--size", default=0, help="Accounts per page (0: all).")
@click.option("--search", default="", help="Only accounts whose name contains this.")
@click.option("--after", default=None, metavar="NAME", help="The page after this account (the `next` of a page).")
@click.pass_context
def accounts(ctx: click.Context, live: bool, as_json: bool, page: int, size: int, search: str,
             after: str | None) -> None:
    """Every account (or a page of them): value, cash, largest drift, pending events."""
    doc = ask(ctx, lambda service: service.accounts(page=page, size=size, search=search, live=live, after=after))
    print_rows(doc, "accounts", as_json, "accounts" + (f" (page {page}, {'' if doc['total_exact'] else 'about '}{doc['total']} in all)"
                                                  if size else ""), {
        "account": lambda a: a["account"], "pie": lambda a: a["pie"], "broker": lambda a: a["broker"],
        "value": lambda a: a["value"], "cash": lambda a: a["cash"], "max drift": lambda a: a["max_drift"] or "-",
        "pending": lambda a: a["pending"]}, right=("value", "cash", "max drift", "pending"))
