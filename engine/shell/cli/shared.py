"""What every command group shares: the settings, ledger and service of a command, and
the one way a command prints JSON."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Iterator

import click

import rules
from config.settings import Settings, SettingsError
from config.settings import load as load_settings
from engine.core.errors import PiesError
from engine.shell.console import UserError, print_policy_error
from engine.shell.wiring import open_broker, open_ledger

if TYPE_CHECKING:
    from adapters.ledger.store import Ledger


def print_json(doc) -> None:
    """A command's --json output: the document, indented, on stdout."""
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def settings_of(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        try:
            obj["settings"] = load_settings(obj.get("config"))
        except SettingsError as e:
            raise UserError(str(e)) from None
    return obj["settings"]


@contextmanager
def ledger_of(ctx: click.Context) -> Iterator["Ledger"]:
    """The ledger, with user mistakes turned into one line and their class's exit code
    (engine/core/errors.py)."""
    try:
        led = open_ledger(settings_of(ctx))
    except Exception as e:  # noqa: BLE001 - a database that cannot be opened is the operator's to fix
        raise UserError(f"cannot open the ledger at {settings_of(ctx).describe()['database_url']}: "
                        f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
    try:
        yield led
    except PiesError as e:
        raise UserError.of(e) from None
    except rules.PolicyError as e:
        print_policy_error(e)
        raise SystemExit(1) from None
    finally:
        led.dispose()


def prices_of(ctx: click.Context, symbols: list[str]) -> dict[str, Decimal]:
    return open_broker(settings_of(ctx)).latest_prices(symbols) if symbols else {}


def service_of(ctx: click.Context, led: "Ledger"):
    """The service layer over this ledger: what the HTTP API calls too."""
    from engine.shell.service import Service
    return Service(settings_of(ctx), led, lambda symbols: prices_of(ctx, symbols))


def day_of(text: str | None):
    from datetime import date
    if not text:
        from engine.shell import clock
        return clock.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--date {text!r} is not a date like 2026-11-24") from None
