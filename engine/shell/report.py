"""A window's report, for people: per account what was bought and sold and why, per order
what the broker did, and any disagreement between ledger and broker."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def replaced_orders(report: dict[str, Any]) -> str:
    """One sentence for the buy orders planned and replaced before they were sent ("dropped"
    rows): the buys were scaled to the cash the sells brought and netted again, so the rows
    in the orders table are the ones sent, and a symbol is never listed twice."""
    dropped = [o for o in report.get("orders", []) if o["status"] == "dropped"]
    if not dropped:
        return ""
    what = ", ".join(f"{o['symbol']} {o['side']} " + (f"${o['notional']}" if o["notional"] else f"{o['qty']} sh")
                     for o in dropped)
    scaled = "; ".join(f"asked ${x['asked']}, spent ${x['spent']}" for x in report.get("scaled", [])
                       if "asked" in x and "spent" in x)
    return (f"replaced before sending: {what}: the buys were scaled to the cash the sells brought"
            f"{' (' + scaled + ')' if scaled else ''} and netted again; the orders above are the ones sent")


def print_breaks(out: Console, report: dict[str, Any]) -> None:
    """The comparison with the broker before planning (and after closing, when it broke):
    each break, its difference and its likely cause (docs/reconciliation.md)."""
    held = report.get("held")
    if held:
        out.print(Text(f"held before planning: {held['reason']}; see `pies reconcile`, then "
                       f"`pies reconcile accept --reason ...`", style="red"))
    rec = report.get("reconciliation") or {}
    for when, doc in (("before planning", rec.get("before")), ("after closing", rec.get("after"))):
        for x in (doc or {}).get("breaks", []):
            out.print(Text(f"{when}: {x['symbol']} ledger {x['ledger']} + house {x['house']}, broker {x['broker']} "
                           f"(difference {x['difference']}): {x['cause']}: {x['detail']}",
                           style="red" if x["waits"] else "yellow"))


def print_report(out: Console, report: dict[str, Any]) -> None:
    print_breaks(out, report)
    if report.get("held") and "window" not in report:
        return                                # held before planning: nothing traded yet
    out.print(f"[bold]window {report.get('window')}[/bold] {report.get('day')} {report.get('name')} "
              f"on {report.get('broker')}")
    orders = Table(title="orders", title_justify="left")
    for col in ("symbol", "side", "notional", "qty", "status", "filled", "price", "note"):
        orders.add_column(col)
    for o in report.get("orders", []):
        if o["status"] != "dropped":
            orders.add_row(o["symbol"], o["side"], o["notional"] or "", o["qty"] or "", o["status"],
                           o["filled_qty"] or "", o["price"] or "", o["note"] or "")
    out.print(orders)
    replaced = replaced_orders(report)
    if replaced:
        out.print(Text(replaced, style="dim"))
    accts = Table(title="accounts", title_justify="left")
    for col in ("account", "events", "trades", "cash after", "notes"):
        accts.add_column(col)
    for a in report.get("accounts", []):
        if a["status"] == "rejected":
            accts.add_row(a["account"], "", "", "", f"[red]rejected: {a['reason']}[/red]")
            continue
        events = ", ".join(f"#{e['id']} {e['kind']}" + (f" ${e['amount']}" if e["amount"] else "")
                           + (f" {e['path']}" if e["path"] else "") for e in a["events"]) or "(rules)"
        trades = "\n".join(f"{'buy ' if t['amount'][0] != '-' else 'sell'} {t['slice']} ${t['amount'].lstrip('-')}"
                           f" ({t['shares'].lstrip('-')} sh)" for t in a["trades"])
        notes = []
        if a.get("deferred_or_scaled"):
            notes.append("deferred/scaled: " + ", ".join(f"{d['slice']} ${d['amount']}" for d in a["deferred_or_scaled"]))
        if a.get("house_advance"):
            notes.append(f"[red]house advanced ${a['house_advance']}[/red]")
        if a.get("held_back"):
            notes.append(f"[yellow]{escape(a['held_back'])}[/yellow]")
        accts.add_row(a["account"], events, trades, a["cash"], "\n".join(notes))
    out.print(accts)
    for x in report.get("corporate_actions", []):
        out.print(Text(f"corporate action {x['id']}: {x['description']}: {x['account_count']} accounts"
                       + (f", ${x['cash']} paid to them" if x.get("cash") not in (None, "0", "0.00") else "")
                       + (f", {x['liquidating']} new slices sold into their parent pies" if x.get("liquidating") else ""),
                       style="cyan"))
    for r in report.get("retried", []):
        out.print(Text(f"pending again: {r['account']} {r['path']}: {r['reason']}", style="yellow"))
    for e in (e for a in report.get("accounts", []) for e in a.get("events", [])
              if e["status"] == "done" and e.get("reason") and e["kind"] == "withdrawal"):
        out.print(Text(f"withdrawal #{e['id']}: {e['reason']}", style="yellow"))
    if report.get("uncollected_dividends"):
        out.print(Text(f"dividends of ${report['uncollected_dividends']} arrived during the window; the next "
                       f"window collects them", style="yellow"))
    for p in report.get("problems", []):
        out.print(f"[red]ledger and broker disagree:[/red] {p}")
    if not report.get("problems"):
        out.print("[green]ledger agrees with the broker[/green]")
