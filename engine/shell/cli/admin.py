"""Running pies: the API server, tokens, the audit log, settings, the database schema, the
daemon, and the demo."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import click

import rules
from engine.core.errors import PiesError
from engine.shell.cli.accounts import account_show
from engine.shell.cli.policy import print_plan
from engine.shell.cli.shared import QUIET, ask, compact_logs, ledger_of, print_rows, service_of, settings_of
from engine.shell.console import UserError, err, out
from engine.shell import policies


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: [api] host, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default: [api] port, 8080).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the HTTP API and the web console until stopped."""
    try:
        from engine.shell.api import serve as serve_api
        serve_api(settings_of(ctx), host, port, say=lambda line: out.print(line, markup=False))
    except PiesError as e:
        raise UserError.of(e) from None


@click.group()
def token() -> None:
    """API tokens: made once, kept only as a hash."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "analyst", "admin"]), required=True)
@click.pass_context
def token_create(ctx: click.Context, name: str, role: str) -> None:
    """Make a token; it is printed this once and never stored."""
    text = ask(ctx, lambda service: service.create_token(name, role))
    err.print(f"token {name!r} ({role}); it is shown once, store it now:", style="bold", markup=False)
    click.echo(text)


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """Tokens: name, role, the first characters, created, last used, revoked."""
    rows = ask(ctx, lambda service: service.tokens())["tokens"]
    print_rows({"tokens": rows}, "tokens", as_json, "tokens", {
        "name": lambda r: r["name"], "role": lambda r: r["role"], "hint": lambda r: r["hint"],
        "created": lambda r: r["created_at"][:16], "last used": lambda r: (r["last_used_at"] or "")[:16],
        "revoked": lambda r: "yes" if r["revoked"] else ""})


@token.command("revoke")
@click.argument("name")
@click.pass_context
def token_revoke(ctx: click.Context, name: str) -> None:
    """Revoke a token at once."""
    ask(ctx, lambda service: service.revoke_token(name))
    out.print(f"token {name!r} revoked")


@token.command("role")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "analyst", "admin"]), required=True)
@click.pass_context
def token_role(ctx: click.Context, name: str, role: str) -> None:
    """Change a token's role; its console sessions end at once."""
    ask(ctx, lambda service: service.access.set_role(name, role))
    out.print(f"token {name!r} is now {role}")


@click.command("audit")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Writes made through the API and the console, newest first."""
    rows = ask(ctx, lambda service: service.audit_log(limit))["audit"]
    print_rows({"audit": rows}, "audit", as_json, "audit", {
        "at": lambda r: r["at"][:19], "token": lambda r: r["token"], "action": lambda r: r["action"],
        "arguments": lambda r: json.dumps(r["arguments"]), "outcome": lambda r: r["outcome"]}, fold=True)


@click.command("settings")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def settings_cmd(ctx: click.Context, as_json: bool) -> None:
    """The settings in effect: every key, its value and where it was set (secrets masked)."""
    rows = [{"key": k, "value": v, "source": src} for k, v, src in settings_of(ctx).effective()]
    print_rows({"settings": rows}, "settings", as_json, "settings in effect",
               {col: (lambda r, col=col: r[col]) for col in ("key", "value", "source")}, fold=True)


@click.group()
def db() -> None:
    """The ledger database."""


@db.command("init")
@click.pass_context
def db_init(ctx: click.Context) -> None:
    """Create the ledger (its directory, file or tables) where the settings say, and say where."""
    from engine.shell.wiring import open_ledger
    s = settings_of(ctx)
    where = s.describe()["database_url"]
    try:
        led = open_ledger(s)
    except PiesError as e:
        raise UserError.of(e) from None
    except OSError as e:
        raise UserError(f"cannot create the ledger at {where}: {e}") from None
    led.dispose()
    out.print(f"{'created the ledger' if led.created else 'the ledger exists already'} at {where}")


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring the ledger's schema to the newest version."""
    from engine.shell.wiring import upgrade_ledger
    s = settings_of(ctx)
    before, after = upgrade_ledger(s)
    out.print(f"ledger at {s.describe()['database_url']}: schema {before or 'empty'} -> {after}")



@click.command()
@click.pass_context
def daemon(ctx: click.Context) -> None:
    """Run the trading daemon: every configured window, every market day, until SIGTERM."""
    from engine.shell import logs
    from engine.shell.alerts import Alerter
    from engine.shell.daemon import Daemon
    s = settings_of(ctx)
    alerter = Alerter(s.webhooks, timeout=s.alert_timeout, retries=s.alert_retries) if s.webhooks else None
    logs.configure(alerts=alerter)
    try:
        code = Daemon(s).serve()
    except PiesError as e:
        raise UserError.of(e) from None
    except OSError as e:              # its pid file in a read-only data directory
        raise UserError(f"the daemon cannot start: {e.strerror or e}: {e.filename or ''}") from None
    finally:
        if alerter is not None:
            alerter.close()              # what is queued goes out before the process ends
    raise SystemExit(code)


@click.command()
@click.pass_context
def reload(ctx: click.Context) -> None:
    """Ask the running daemon to reload its policy files (SIGHUP)."""
    from engine.shell.daemon import reload_running
    try:
        pid = reload_running(settings_of(ctx))
    except PiesError as e:
        raise UserError.of(e) from None
    out.print(f"asked daemon {pid} to reload its policies")


@click.command()
@QUIET
@click.pass_context
def demo(ctx: click.Context, quiet: bool) -> None:
    """Two days of three example accounts on their own simulated broker account ("demo"):
    first deposits; then a withdrawal, a rebalance after prices moved, and a policy change
    that liquidates a slice. A first look, on the embedded defaults."""
    import json
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo
    from adapters.broker.simulated import SimulatedBroker, SimulatedConfig
    from engine.shell import clock
    from engine.shell.report import print_report
    s = settings_of(ctx)
    compact_logs(ctx, quiet)
    home = s.data_dir / "demo"
    home.mkdir(parents=True, exist_ok=True)
    policy_file = home / "policy.pie"
    example = (Path(rules.__file__).parent / "examples" / "growth.pie").read_text(encoding="utf-8")
    if not policy_file.exists():
        policy_file.write_text(example, encoding="utf-8")

    day2 = clock.today()
    day1 = day2 - timedelta(days=1)
    # VTI splits 2-for-1 overnight: the broker doubles the position on day 2 (its clock is
    # the demo's day), the window applies the split to every account before planning.
    actions = home / "corporate-actions.json"
    actions.write_text(json.dumps({"corporate_actions": {"forward_splits": [
        {"id": f"demo-vti-split-{day2}", "symbol": "VTI", "cusip": "922908769", "new_rate": 2, "old_rate": 1,
         "process_date": day2.isoformat(), "ex_date": day2.isoformat()}]}, "next_page_token": None}, indent=1))

    def broker_on(prices: dict[str, str], name: str, day) -> SimulatedBroker:
        (home / name).write_text("".join(f"{k},{v}\n" for k, v in prices.items()))
        return SimulatedBroker(SimulatedConfig(state_file=home / "broker.json", prices_file=home / name,
                                               corporate_actions_file=actions),
                               now=lambda: datetime.combine(day, time(10, 0), ZoneInfo("America/New_York")))

    # Prices of the magnitude these funds and shares trade at (VTI quoted after its split on day 2).
    monday = {"VTI": "289.40", "VXUS": "64.12", "BND": "72.35", "TIP": "109.80", "AAPL": "228.50",
              "MSFT": "421.10", "NVDA": "139.60"}
    tuesday = {**monday, "VTI": "148.98", "NVDA": "151.20", "AAPL": "221.35"}
    with ledger_of(ctx) as led:
        svc = service_of(ctx, led)
        broker = broker_on(monday, "prices-day1.csv", day1)
        svc.ensure_house(broker, "demo")
        known = {a["account"] for a in svc.accounts(search="demo-")["accounts"]}
        for name, pie, amount in (("demo-alice", "Growth", 1_000_000), ("demo-bob", "Blend", 250_055),
                                  ("demo-carol", "Tech", 100_000)):
            if name not in known:
                svc.add_account(name, pie, str(policy_file), rules=rules.DEFAULT_RULES, broker="demo")
            svc.record("deposit", name, amount, key=f"demo:{name}:{day1}")
        out.print(f"ledger {s.describe()['database_url']}; demo broker account in {home}", style="bold", markup=False)
        out.print(f"day 1 ({day1}): first deposits", style="bold", markup=False)
        print_report(out, svc.run_window_on(broker, "demo", day1, "demo", settle_timeout=5))
        # Day 2: prices moved; bob withdraws, alice deposits and rebalances, and the Tech
        # pie drops NVDA, so carol's NVDA is sold and its proceeds buy the rest of Tech.
        broker = broker_on(tuesday, "prices-day2.csv", day2)
        prices = {k: Decimal(v) for k, v in tuesday.items()}
        svc.record("withdrawal", "demo-bob", 40_000, key=f"demo:bob-out:{day2}")
        svc.record("deposit", "demo-alice", 100_000, key=f"demo:alice-in:{day2}")
        svc.record("rebalance", "demo-alice", key=f"demo:alice-rebalance:{day2}")
        text = example.replace("    NVDA\n", "")
        plan = policies.plan(led, policy_file, text, lambda symbols: {k: prices[k] for k in symbols})
        out.print(f"day 2 ({day2}): VTI split 2-for-1 overnight; a withdrawal, a rebalance, and a policy change",
                  style="bold", markup=False)
        print_plan(plan)
        if plan.changed:
            policy_file.write_text(text, encoding="utf-8")
            policies.apply(led, policy_file, text, source="demo")
        print_report(out, svc.run_window_on(broker, "demo", day2, "demo", settle_timeout=5))
    for name in ("demo-alice", "demo-bob", "demo-carol"):
        ctx.invoke(account_show, name=name)
    out.print("next: pies accounts · pies history demo-carol · pies plan demo-alice · "
              "pies policy history · pies windows · pies daemon (the windows, every market day)",
              style="bold", markup=False)
