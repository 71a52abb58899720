"""Operator commands: accounts, deposits, withdrawals, rebalances, history, policy versions.

Each command is one ledger transaction; a mistake prints one line and exits 2 with nothing
written; a policy that does not compile prints its errors and exits 1.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from decimal import Decimal
from typing import Iterator

import click
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

import rules
from adapters.broker.port import BrokerError
from adapters.ledger.store import Ledger, LedgerError
from config.settings import Settings, SettingsError
from config.settings import load as load_settings
from engine.core.money import MoneyError, parse_dollars
from engine.shell.console import UserError, err, out, print_policy_error
from engine.shell.wiring import ensure_house, open_broker, open_ledger, window_options


def settings_of(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        try:
            obj["settings"] = load_settings(obj.get("config"))
        except SettingsError as e:
            raise UserError(str(e)) from None
    return obj["settings"]


@contextmanager
def ledger_of(ctx: click.Context) -> Iterator[Ledger]:
    """The ledger, with user mistakes turned into one line and exit 2."""
    try:
        led = open_ledger(settings_of(ctx))
    except Exception as e:  # noqa: BLE001 - a database that cannot be opened is the operator's to fix
        raise UserError(f"cannot open the ledger at {settings_of(ctx).describe()['database_url']}: "
                        f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
    try:
        yield led
    except (LedgerError, SettingsError) as e:
        raise UserError(str(e)) from None
    except BrokerError as e:
        raise UserError(f"broker: {e}") from None
    except rules.PolicyError as e:
        print_policy_error(e)
        raise SystemExit(1) from None
    finally:
        led.dispose()


def _prices(ctx: click.Context, symbols: list[str]) -> dict[str, Decimal]:
    return open_broker(settings_of(ctx)).latest_prices(symbols) if symbols else {}


def service_of(ctx: click.Context, led: Ledger):
    """The service layer over this ledger: what the HTTP API calls too."""
    from engine.shell.service import Service
    return Service(settings_of(ctx), led, lambda symbols: _prices(ctx, symbols))


def _day(text: str | None):
    from datetime import date
    if not text:
        from engine.shell import clock
        return clock.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--date {text!r} is not a date like 2026-11-24") from None


def register(main: click.Group) -> None:
    @main.command("serve")
    @click.option("--host", default=None, help="Address to listen on (default: [api] host, 127.0.0.1).")
    @click.option("--port", default=None, type=int, help="Port (default: [api] port, 8080).")
    @click.pass_context
    def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
        """Serve the HTTP API and the web console until stopped."""
        import uvicorn
        from engine.shell.api import create_app
        s = settings_of(ctx)
        uvicorn.run(create_app(s), host=host or s.api_host, port=port or s.api_port, log_level="warning",
                    proxy_headers=True, server_header=False)

    @main.group()
    def token() -> None:
        """API tokens: made once, kept only as a hash."""

    @token.command("create")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["viewer", "operator", "analyst", "admin"]), required=True)
    @click.pass_context
    def token_create(ctx: click.Context, name: str, role: str) -> None:
        """Make a token; it is printed this once and never stored."""
        from adapters.ledger.access import Access
        with ledger_of(ctx) as led:
            text = Access(led).create(name, role)
        err.print(Text(f"token {name!r} ({role}); it is shown once, store it now:", style="bold"))
        click.echo(text)

    @token.command("list")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def token_list(ctx: click.Context, as_json: bool) -> None:
        """Tokens: name, role, the first characters, created, last used, revoked."""
        from adapters.ledger.access import Access
        with ledger_of(ctx) as led:
            rows = Access(led).list()
        if as_json:
            sys.stdout.write(json.dumps({"tokens": rows}, indent=2) + "\n")
            return
        table = Table(title="tokens", title_justify="left")
        for col in ("name", "role", "hint", "created", "last used", "revoked"):
            table.add_column(col)
        for r in rows:
            table.add_row(Text(r["name"]), r["role"], r["hint"], r["created_at"][:16], (r["last_used_at"] or "")[:16],
                          "yes" if r["revoked"] else "")
        out.print(table)

    @token.command("revoke")
    @click.argument("name")
    @click.pass_context
    def token_revoke(ctx: click.Context, name: str) -> None:
        """Revoke a token at once."""
        from adapters.ledger.access import Access
        with ledger_of(ctx) as led:
            Access(led).revoke(name)
        out.print(f"token {name!r} revoked")

    @main.command("audit")
    @click.option("--limit", default=100, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def audit(ctx: click.Context, limit: int, as_json: bool) -> None:
        """Writes made through the API and the console, newest first."""
        from adapters.ledger.access import Access
        with ledger_of(ctx) as led:
            rows = Access(led).audit_log(limit)
        if as_json:
            sys.stdout.write(json.dumps({"audit": rows}, indent=2) + "\n")
            return
        table = Table(title="audit", title_justify="left")
        for col in ("at", "token", "action", "arguments", "outcome"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r["at"][:19], Text(r["token"]), r["action"], Text(json.dumps(r["arguments"])),
                          Text(r["outcome"]))
        out.print(table)

    @main.command("settings")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def settings_cmd(ctx: click.Context, as_json: bool) -> None:
        """The settings in effect: every key, its value and where it was set (secrets masked)."""
        rows = settings_of(ctx).effective()
        if as_json:
            sys.stdout.write(json.dumps({"settings": [{"key": k, "value": v, "source": src}
                                                      for k, v, src in rows]}, indent=2) + "\n")
            return
        table = Table(title="settings in effect", title_justify="left")
        for col in ("key", "value", "source"):
            table.add_column(col, overflow="fold")
        for k, v, src in rows:
            table.add_row(Text(k), Text(v), Text(src))      # values are text, not markup
        out.print(table)

    @main.group()
    def db() -> None:
        """The ledger database."""

    @db.command("upgrade")
    @click.pass_context
    def db_upgrade(ctx: click.Context) -> None:
        """Bring the ledger's schema to the newest version."""
        from adapters.ledger import migrate
        s = settings_of(ctx)
        led = Ledger(s.database_url, upgrade=False)
        before, after = migrate.upgrade(led.engine)
        out.print(f"ledger at {s.describe()['database_url']}: schema {before or 'empty'} -> {after}")

    @main.group()
    def window() -> None:
        """Trading windows: run one now, or show one."""

    @window.command("run")
    @click.option("--date", "day", help="Trading date (default: today in the window's time zone).")
    @click.option("--name", default=None, help="Window name from the settings (default: the first).")
    @click.option("--broker", "broker_name", default=None, help="Broker account (default: the first).")
    @click.option("--replay", is_flag=True, help="Resume a past window that was opened and never closed.")
    @click.option("--force", is_flag=True, help="Run even if the broker's calendar says the market is closed.")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    @click.pass_context
    def window_run(ctx: click.Context, day: str | None, name: str | None, broker_name: str | None, replay: bool,
                   force: bool, as_json: bool) -> None:
        """Run (or resume) today's trading window and print its report."""
        from engine.shell.report import print_report
        with ledger_of(ctx) as led:
            doc = service_of(ctx, led).run_window(name=name, broker=broker_name, day=_day(day) if day else None,
                                                  replay=replay, force=force)
        report = doc["report"]
        if as_json:
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
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
                svc.window_on(name=name, broker=broker_name, day=_day(day) if day else None)
        if as_json:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return
        if doc["step"] != "closed":
            out.print(f"window {doc['id']} is at step {doc['step']!r} (not closed yet)")
        print_report(out, doc["report"] or {})

    @main.command("status")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def status(ctx: click.Context, as_json: bool) -> None:
        """The next window of each broker account, pending events per account, and each
        broker account's last window."""
        with ledger_of(ctx) as led:
            doc = service_of(ctx, led).status()
        brokers = doc["brokers"]
        pending = {x["account"]: x["events"] for x in doc["pending"]}
        if as_json:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return
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

    @main.command("windows")
    @click.option("--limit", default=30, show_default=True, help="How many, newest first.")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def windows_list(ctx: click.Context, limit: int, as_json: bool) -> None:
        """Trading windows, newest first: broker account, day, name, step, orders, problems."""
        with ledger_of(ctx) as led:
            rows = led.windows(limit)
        if as_json:
            sys.stdout.write(json.dumps({"windows": rows}, indent=2) + "\n")
            return
        table = Table(title="windows", title_justify="left")
        for col in ("id", "broker", "day", "name", "step", "accounts", "orders", "problems"):
            table.add_column(col)
        for r in rows:
            table.add_row(*(Text(str(r[k])) for k in ("id", "broker", "day", "name", "step", "accounts", "orders",
                                                      "problems")))
        out.print(table)

    @main.command()
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
        except BrokerError as e:
            raise UserError(f"broker: {e}") from None
        except LedgerError as e:
            raise UserError(str(e)) from None
        finally:
            if alerter is not None:
                alerter.close()              # what is queued goes out before the process ends
        raise SystemExit(code)

    @main.command()
    @click.pass_context
    def reload(ctx: click.Context) -> None:
        """Ask the running daemon to reload its policy files (SIGHUP)."""
        from engine.shell.daemon import reload_running
        try:
            pid = reload_running(settings_of(ctx))
        except LedgerError as e:
            raise UserError(str(e)) from None
        out.print(f"asked daemon {pid} to reload its policies")

    @main.command()
    @click.pass_context
    def demo(ctx: click.Context) -> None:
        """Two days of three example accounts on their own simulated broker account ("demo"):
        first deposits; then a withdrawal, a rebalance after prices moved, and a policy change
        that liquidates a slice. A first look, on the embedded defaults."""
        from datetime import timedelta
        from adapters.broker.simulated import SimulatedBroker, SimulatedConfig
        from engine.shell import clock
        from engine.shell.report import print_report
        from engine.shell.window import WindowRunner
        s = settings_of(ctx)
        home = s.data_dir / "demo"
        home.mkdir(parents=True, exist_ok=True)
        policy_file = home / "policy.pie"
        example = (Path(rules.__file__).parent / "examples" / "growth.pie").read_text(encoding="utf-8")
        if not policy_file.exists():
            policy_file.write_text(example, encoding="utf-8")

        def broker_on(prices: dict[str, str], name: str) -> SimulatedBroker:
            (home / name).write_text("".join(f"{k},{v}\n" for k, v in prices.items()))
            return SimulatedBroker(SimulatedConfig(state_file=home / "broker.json", prices_file=home / name))

        day2 = clock.today()
        day1 = day2 - timedelta(days=1)
        # Prices of the magnitude these funds and shares trade at.
        monday = {"VTI": "289.40", "VXUS": "64.12", "BND": "72.35", "TIP": "109.80", "AAPL": "228.50",
                  "MSFT": "421.10", "NVDA": "139.60"}
        tuesday = {**monday, "VTI": "297.95", "NVDA": "151.20", "AAPL": "221.35"}
        with ledger_of(ctx) as led:
            broker = broker_on(monday, "prices-day1.csv")
            ensure_house(led, broker, "demo")
            known = {a.name for a in led.accounts()}
            for name, pie, amount in (("demo-alice", "Growth", "10000"), ("demo-bob", "Blend", "2500.55"),
                                      ("demo-carol", "Tech", "1000")):
                if name not in known:
                    led.add_account(name, pie, policy_file, broker="demo")
                led.deposit(name, amount, key=f"demo:{name}:{day1}")
            out.print(Text(f"ledger {s.describe()['database_url']}; demo broker account in {home}", style="bold"))
            out.print(Text(f"day 1 ({day1}): first deposits", style="bold"))
            print_report(out, WindowRunner(led, broker, "demo", window_options(s, settle_timeout=5))
                         .run(day1, "demo"))
            # Day 2: prices moved; bob withdraws, alice deposits and rebalances, and the Tech
            # pie drops NVDA, so carol's NVDA is sold and its proceeds buy the rest of Tech.
            broker = broker_on(tuesday, "prices-day2.csv")
            prices = {k: Decimal(v) for k, v in tuesday.items()}
            led.withdraw("demo-bob", "400", prices, key=f"demo:bob-out:{day2}")
            led.deposit("demo-alice", "1000", key=f"demo:alice-in:{day2}")
            led.rebalance("demo-alice", key=f"demo:alice-rebalance:{day2}")
            text = example.replace("    NVDA\n", "")
            plan = led.plan_policy(str(policy_file), text, lambda symbols: {k: prices[k] for k in symbols})
            from engine.shell.policy_commands import print_plan
            out.print(Text(f"day 2 ({day2}): a withdrawal, a rebalance, and a policy change", style="bold"))
            print_plan(plan)
            if plan.changed:
                policy_file.write_text(text, encoding="utf-8")
                led.apply_policy(str(policy_file), text, source="demo")
            print_report(out, WindowRunner(led, broker, "demo", window_options(s, settle_timeout=5))
                         .run(day2, "demo"))
        for name in ("demo-alice", "demo-bob", "demo-carol"):
            ctx.invoke(account_show, name=name)
        out.print(Text("next: pies accounts · pies history demo-carol · pies plan demo-alice · "
                       "pies policy history · pies windows · pies daemon (the windows, every market day)",
                       style="bold"))

    @main.group()
    def policy() -> None:
        """Policy changes: plan, apply, and the versions in the ledger."""

    from engine.shell import policy_commands
    policy_commands.register(main, policy, ledger_of, _prices)

    @main.group(invoke_without_command=True)
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
    @click.pass_context
    def account_add(ctx: click.Context, name: str, pie: str, policy_file: str | None, rules_name: str,
                    broker_name: str | None) -> None:
        """Open an account that follows PIE."""
        s = settings_of(ctx)
        file = policy_file or (s.policy_files[0] if s.policy_files else None)
        if not file:
            raise UserError("no --policy given and no policy files in the settings")
        with ledger_of(ctx) as led:
            broker = broker_name or s.broker_name
            if led.house(broker) is None:      # only the first account of a broker account asks the broker
                ensure_house(led, open_broker(s, s.broker_named(broker).name), broker)
            led.add_account(name, pie, file, rules=rules_name, broker=broker)
        out.print(f"account {name!r} follows {pie!r} of {file} with rules {rules_name!r} on {broker!r}")

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
            queued = led.move_account(name, pie, policy_file, rules_name)
        out.print(f"account {name!r} follows {pie!r}" + ("" if queued else " (nothing changes)"))
        for q in queued:
            out.print(f"  queued {q}")

    @account.command("close")
    @click.argument("name")
    @click.pass_context
    def account_close(ctx: click.Context, name: str) -> None:
        """Close an account: the next window sells everything and withdraws all its cash."""
        with ledger_of(ctx) as led:
            rec = led.close_account(name)
        out.print(f"account {name!r} is closing (event #{rec.event_id}): the next window sells everything and "
                  f"withdraws its cash; `pies plan {name}` shows what it will trade")

    @account.command("show")
    @click.argument("name")
    @click.option("--live", is_flag=True, help="Price at the broker's latest prices (default: the last window's).")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def account_show(ctx: click.Context, name: str, live: bool, as_json: bool) -> None:
        """The account's pie as a tree: target, actual share, drift and value per slice."""
        with ledger_of(ctx) as led:
            doc = service_of(ctx, led).account(name, live=live)
        if as_json:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return
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

    @main.command("plan")
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
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
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
        if len(doc["accounts"]) > 1 or not name:
            for o in doc["orders"]:
                out.print(f"  order {o['side']:<4} {o['symbol']:<8} " + (f"${o['notional']}" if o["notional"] else f"{o['qty']} sh"))

    @main.command()
    @click.option("--live", is_flag=True, help="Price at the broker's latest prices (default: the last window's).")
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--page", default=1, show_default=True)
    @click.option("--size", default=0, help="Accounts per page (0: all).")
    @click.option("--search", default="", help="Only accounts whose name contains this.")
    @click.pass_context
    def accounts(ctx: click.Context, live: bool, as_json: bool, page: int, size: int, search: str) -> None:
        """Every account (or a page of them): value, cash, largest drift, pending events."""
        with ledger_of(ctx) as led:
            doc = service_of(ctx, led).accounts(page=page, size=size, search=search, live=live)
        if as_json:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return
        table = Table(title="accounts" + (f" (page {page}, {doc['total']} in all)" if size else ""),
                      title_justify="left")
        for col in ("account", "pie", "broker", "value", "cash", "max drift", "pending"):
            table.add_column(col, justify="left" if col in ("account", "pie", "broker") else "right")
        for a in doc["accounts"]:
            table.add_row(Text(a["account"]), Text(a["pie"]), Text(a["broker"]), a["value"], a["cash"],
                          a["max_drift"] or "-", str(a["pending"]))
        out.print(table)

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
            out.print(f"{kind} #{doc['event']} {word}: {name} {doc['amount_text']} (pending until the next window)")
        cmd.__doc__ = f"Record a {kind} for the next window."
        return cmd

    # "-5" is an amount to refuse in words, not an unknown option.
    main.command("deposit", context_settings={"ignore_unknown_options": True})(_event_command("deposit"))
    main.command("withdraw", context_settings={"ignore_unknown_options": True})(_event_command("withdrawal"))

    @main.group("import")
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
            names = {(r.get("account") or "").strip() for r in rows if (r.get("kind") or "").strip() == "withdrawal"}
            symbols = sorted({sym for n in names if n in {a.name for a in led.accounts()}
                              for sym, q in led.holdings(n).values() if q})
            created, existing = led.import_events(rows, service_of(ctx, led).valuation(symbols), where=file)
        out.print(f"{file}: {created} event(s) recorded, {existing} already recorded (pending until the next window)")

    @main.command()
    @click.argument("name")
    @click.argument("path", required=False, default="")
    @click.option("--key", help="Idempotency key.")
    @click.pass_context
    def rebalance(ctx: click.Context, name: str, path: str, key: str | None) -> None:
        """Request a rebalance of the whole portfolio, or of the nested pie at PATH."""
        with ledger_of(ctx) as led:
            rec = led.rebalance(name, path, key=key)
        out.print(f"rebalance #{rec.event_id} of {name}{' ' + path if path else ''} "
                  f"{'recorded' if rec.created else 'already recorded'}")

    @main.command()
    @click.argument("event_id", type=int)
    @click.pass_context
    def cancel(ctx: click.Context, event_id: int) -> None:
        """Cancel a pending event."""
        with ledger_of(ctx) as led:
            led.cancel(event_id)
        out.print(f"event #{event_id} canceled")

    @main.command()
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def history(ctx: click.Context, name: str, as_json: bool) -> None:
        """An account's events, oldest first."""
        with ledger_of(ctx) as led:
            if as_json:
                sys.stdout.write(json.dumps(service_of(ctx, led).history(name), indent=2) + "\n")
                return
            events = led.events(name)
            trades = led.trades(name)
        table = Table(title=f"{name}: history", title_justify="left")
        for col in ("#", "when (UTC)", "event", "amount", "slice", "status", "reason"):
            table.add_column(col)
        for e, _ in events:
            table.add_row(str(e.id), f"{e.created_at:%Y-%m-%d %H:%M}", e.kind, str(e.amount or ""), e.path or "",
                          e.status, e.reason or "")
        out.print(table)
        if trades:
            t = Table(title=f"{name}: trades", title_justify="left")
            for col in ("day", "window", "slice", "symbol", "shares", "cash"):
                t.add_column(col, justify="right" if col in ("shares", "cash") else "left")
            for day, wname, path, symbol, shares, amount in trades:
                t.add_row(day.isoformat(), wname, path, symbol, f"{shares:+}", f"{-amount:+}")
            out.print(t)
