"""What every command group shares: the settings, ledger and service of a command, and
the one way a command prints JSON."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import click

import rules
from config.settings import Settings, SettingsError
from config.settings import load as load_settings
from engine.core.errors import PiesError
from engine.shell.console import UserError, err, print_policy_error
from engine.shell.wiring import open_broker, open_ledger

if TYPE_CHECKING:
    from adapters.ledger.store import Ledger
    from engine.shell.service import Service


def print_json(doc) -> None:
    """A command's --json output: the document, indented, on stdout."""
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def print_rows(doc: Mapping[str, Any], key: str, as_json: bool, title: str,
               columns: Mapping[str, Callable[[Mapping[str, Any]], Any]], *, right: tuple[str, ...] = (),
               fold: bool = False) -> None:
    """A query's rows, `doc[key]`: the whole document as JSON with --json, else a table with
    a column per entry of `columns` (its heading -> the cell of a row), every cell shown as
    written (never read as markup); `right`: columns aligned right; `fold`: long cells wrap."""
    if as_json:
        print_json(doc)
        return
    from rich.table import Table
    from rich.text import Text

    from engine.shell.console import out
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", overflow="fold" if fold else "ellipsis")
    for row in doc[key]:
        table.add_row(*(Text(str(cell(row))) for cell in columns.values()))
    out.print(table)


def settings_of(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        try:
            obj["settings"] = load_settings(obj.get("config"))
        except SettingsError as e:
            raise UserError(str(e)) from None
    return obj["settings"]


# Commands that record something: they create a ledger that does not exist yet (and say
# where); every other command only reads and refuses a missing ledger, creating nothing.
WRITES = frozenset({"deposit", "withdraw", "rebalance", "cancel", "account add", "account move", "account close",
                    "token create", "token revoke", "import events", "window run", "policy apply", "policy load",
                    "demo"})


def command_of(ctx: click.Context) -> str:
    """The command as typed after `pies`, e.g. "window run"."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


@contextmanager
def ledger_of(ctx: click.Context) -> Iterator["Ledger"]:
    """The ledger, with user mistakes turned into one line and their class's exit code
    (engine/core/errors.py); a policy that does not compile is exit 2, as in `policy plan`
    (where 1 means "it would trade"). A command that only reads (not in WRITES) refuses a
    missing ledger and creates nothing."""
    try:
        led = open_ledger(settings_of(ctx), create=command_of(ctx) in WRITES)
        if led.created:
            err.print(f"created a new ledger at {settings_of(ctx).describe()['database_url']}", soft_wrap=True)
    except PiesError as e:
        raise UserError.of(e) from None
    except Exception as e:  # noqa: BLE001 - a database that cannot be opened is the operator's to fix
        raise UserError(f"cannot open the ledger at {settings_of(ctx).describe()['database_url']}: "
                        f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
    try:
        yield led
    except PiesError as e:
        raise UserError.of(e) from None
    except rules.PolicyError as e:
        print_policy_error(e)
        raise SystemExit(2) from None
    finally:
        led.dispose()


def policy_warnings(ctx: click.Context, path: str, text: str) -> list[str]:
    """The corporate-action warnings of a policy text (a renamed or removed symbol it still
    names), when the settings name a ledger that exists; none otherwise (`pies check` works
    without a ledger and never creates one)."""
    try:
        led = open_ledger(settings_of(ctx), upgrade=False, create=False)
    except Exception:  # noqa: BLE001 - no ledger (or none reachable): nothing to warn about
        return []
    try:
        return service_of(ctx, led).policy_warnings(path, text)
    except Exception:  # noqa: BLE001 - an older schema, a database gone: the check itself still stands
        return []
    finally:
        led.dispose()


def prices_of(ctx: click.Context, symbols: list[str]) -> dict[str, Decimal]:
    return open_broker(settings_of(ctx)).latest_prices(symbols) if symbols else {}


def service_of(ctx: click.Context, led: "Ledger") -> "Service":
    """The service layer over this ledger: what the HTTP API calls too."""
    from engine.shell.service import Service
    return Service(settings_of(ctx), led, lambda symbols: prices_of(ctx, symbols))


def ask(ctx: click.Context, what: Callable[["Service"], Any]) -> Any:
    """What `what` answers from the service over the command's ledger (opened and closed
    around it, a mistake one line: `ledger_of`)."""
    with ledger_of(ctx) as led:
        return what(service_of(ctx, led))


def compact_logs(ctx: click.Context, quiet: bool) -> None:
    """On a terminal (or with --quiet) the window's log lines go to a file and the terminal
    shows one line per step (none with --quiet) and the report."""
    from rich.text import Text

    from engine.shell import logs
    from engine.shell.console import err
    if logs.wants_compact(quiet):
        err.print(Text(f"logs: {logs.compact(settings_of(ctx).data_dir / 'logs' / 'pies.log', quiet=quiet)}",
                       style="dim"))


QUIET = click.option("--quiet", is_flag=True, help="Only the report: the log lines go to DATA_DIR/logs/pies.log "
                                                   "(on a terminal they do anyway, with a line per step).")


def day_of(text: str | None):
    from datetime import date
    if not text:
        from engine.shell import clock
        return clock.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--date {text!r} is not a date like 2026-11-24") from None
