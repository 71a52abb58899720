"""The `pies` command line: what analysts and operators type.

One module per command group (language, accounts, events, policy, books, windows,
reconcile, admin); what they share (the settings, ledger and service of a command, printing JSON and
rows) is in `shared`.
User mistakes end in one clear message and a non-zero exit, never a traceback: exit 2 for
bad input (a policy that does not compile included; `check` and `fmt` say 1, their one
failure), 3 a window with problems, 4 another process holds what the command needs (a
window of that broker account runs already), 75 the database is unavailable (try again).

A command's module is imported only when that command runs (or `--help` lists them all):
a command that only reads or writes the ledger does not pay for the others' imports
(bench/cli.py times it).
"""

from __future__ import annotations

import sys

import click

# command name -> (module under engine/shell/cli, or "backtest", the attribute holding it)
COMMANDS = {
    "check": ("language", "check"), "fmt": ("language", "fmt"), "show": ("language", "show"),
    "preview": ("language", "preview"),
    "account": ("accounts", "account"), "accounts": ("accounts", "accounts"), "plan": ("accounts", "plan_next"),
    "deposit": ("events", "deposit"), "withdraw": ("events", "withdraw"), "rebalance": ("events", "rebalance"),
    "cancel": ("events", "cancel"), "history": ("events", "history"), "import": ("events", "import_group"),
    "policy": ("policy", "policy"),
    "lots": ("books", "lots"), "gains": ("books", "gains"), "performance": ("books", "performance"),
    "window": ("windows", "window"), "windows": ("windows", "windows_list"), "status": ("windows", "status"),
    "reconcile": ("reconcile", "reconcile"),
    "serve": ("admin", "serve"), "token": ("admin", "token"), "audit": ("admin", "audit"),
    "settings": ("admin", "settings_cmd"), "db": ("admin", "db"), "daemon": ("admin", "daemon"),
    "reload": ("admin", "reload"), "demo": ("admin", "demo"),
    "backtest": ("backtest", "backtest"),   # its own package: engine/shell/backtest/ (the runner loads when it runs)
}


def _module(name: str):
    """A command group's module, imported now (written out, so tests/test_architecture.py
    sees every edge)."""
    if name == "language":
        from engine.shell.cli import language as m
    elif name == "accounts":
        from engine.shell.cli import accounts as m
    elif name == "events":
        from engine.shell.cli import events as m
    elif name == "policy":
        from engine.shell.cli import policy as m
    elif name == "windows":
        from engine.shell.cli import windows as m
    elif name == "admin":
        from engine.shell.cli import admin as m
    elif name == "reconcile":
        from engine.shell.cli import reconcile as m
    elif name == "books":
        from engine.shell.cli import books as m
    else:
        from engine.shell import backtest as m
    return m


class LazyGroup(click.Group):
    """click's lazily loading group (its documentation's "Lazily Loading Subcommands")."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        return getattr(_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pies")
@click.option("--config", type=click.Path(dir_okay=False), envvar="PIES_CONFIG",
              help="A settings file laid over the embedded defaults (also PIES_CONFIG).")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """pies: portfolios as pies, traded once a day."""
    from engine.shell import logs
    if "structlog" in sys.modules:       # else the first module that logs configures it (logs.logger)
        logs.configure()
    ctx.ensure_object(dict)["config"] = config
