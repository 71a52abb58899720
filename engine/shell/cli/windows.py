"""Trading windows: `pies window run/show`, `pies windows` and `pies status`."""

from __future__ import annotations

import click
from engine.shell.cli.shared import QUIET, ask, compact_logs, day_of, ledger_of, print_json, print_rows, service_of
from engine.shell.console import out


@click.group()
def window() -> None:
    """Trading windows: run one now, or show one."""


@window.command("run")
@click.option("--date", "day", help="Trading date (default: today in the window's time zone).")
@click.option("--name", default=None, help="Window name from the settings (default: the first).")
@click.option("--broker", "broker_name", default=None, help="Broker account (default: the first).")
@click.option("--replay", is_flag=True, help="Resume a past window that was opened and never closed.")
@click.option("--force", is_flag=True, help="Run even if the broker's calendar says the market is closed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@QUIET
@click.pass_context
def window_run(ctx: click.Context, day: str | None, name: str | None, broker_name: str | None, replay: bool,
               force: bool, as_json: bool, quiet: bool) -> None:
    """Run (or resume) today's trading window and print its report."""
    from engine.shell.report import print_report
    compact_logs(ctx, quiet)
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).run_window(name=name, broker=broker_name, day=day_of(day) if day else None,
                                              replay=replay, force=force)
    report = doc["report"]
    if as_json:
        print_json(report)
        return
    if doc["already_closed"]:
        out.print(f"window {doc['id']} ({doc['name']} on {doc['day']}) closed at {doc['closed_at'][:16]} UTC; "
                  f"its report:")
    print_report(out, report)
    if report.get("problems") and not doc["already_closed"]:
        raise SystemExit(3)


@window.command("show")
@click.argument("window_id", type=int, required=False)
@click.option("--date", "day", help="Trading date (default: today in the window's time zone).")
@click.option("--name", default=None)
@click.option("--broker", "broker_name", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def window_show(ctx: click.Context, window_id: int | None, day: str | None, name: str | None,
                broker_name: str | None, as_json: bool) -> None:
    """Print a window's report: by id, or by date and name."""
    from engine.shell.report import print_report
    with ledger_of(ctx) as led:
        svc = service_of(ctx, led)
        doc = svc.window(window_id) if window_id is not None else \
            svc.window_on(name=name, broker=broker_name, day=day_of(day) if day else None)
    if as_json:
        print_json(doc)
        return
    if doc["step"] != "closed":
        out.print(f"window {doc['id']} is at step {doc['step']!r} (not closed yet)")
    print_report(out, doc["report"] or {})


@click.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The next window of each broker account, pending events per account, and each
    broker account's last window."""
    doc = ask(ctx, lambda service: service.status())
    brokers = doc["brokers"]
    pending = {x["account"]: x["events"] for x in doc["pending"]}
    if as_json:
        print_json(doc)
        return
    from rich.text import Text
    for b in brokers:
        out.print(Text(f"{b['broker']} ({b['kind']})", style="bold"))
        if b["error"]:
            out.print(Text(f"  broker unavailable: {b['error']}", style="red"))
        for n in b["next"][:1]:
            out.print(Text(f"  next window: {n['window']} at {n['at']} ({n['timezone']})"))
        last = b["last_window"]
        if last:
            out.print(Text(f"  last window: #{last['id']} {last['name']} {last['day']} {last['step']}, "
                           f"{last['orders']} orders, {last['problems']} problems"))
    out.print(Text(f"pending events: {sum(pending.values())} in {len(pending)} account(s)"))
    for n, c in sorted(pending.items()):
        out.print(Text(f"  {n}: {c}"))


@click.command("windows")
@click.option("--limit", default=30, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def windows_list(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Trading windows, newest first: broker account, day, name, step, orders, problems."""
    doc = ask(ctx, lambda service: service.windows(limit))
    print_rows({"windows": doc["windows"]}, "windows", as_json, "windows",
               {k: (lambda r, k=k: r[k]) for k in ("id", "broker", "day", "name", "step", "accounts", "orders",
                                                 "problems")})
