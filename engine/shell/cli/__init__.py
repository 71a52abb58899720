"""The `pies` command line: what analysts and operators type.

One module per command group (language, accounts, events, policy, windows, admin); what they
share (the settings, ledger and service of a command, and printing JSON) is in `shared`.
User mistakes end in one clear message and a non-zero exit, never a traceback: exit 2 for
bad input (a policy that does not compile included; `check` and `fmt` say 1, their one
failure), 3 a window with problems, 4 another process holds what the command needs (a
window of that broker account runs already), 75 the database is unavailable (try again).
"""

from __future__ import annotations

import click

from engine.shell.backtest import backtest
from engine.shell.cli import accounts, admin, books, events, language, policy, reconcile, windows


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pies")
@click.option("--config", type=click.Path(dir_okay=False), envvar="PIES_CONFIG",
              help="A settings file laid over the embedded defaults (also PIES_CONFIG).")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """pies: portfolios as pies, traded once a day."""
    from engine.shell import logs
    logs.configure()
    ctx.ensure_object(dict)["config"] = config


for command in (
    language.check, language.fmt, language.show, language.preview,
    accounts.account, accounts.accounts, accounts.plan_next,
    events.deposit, events.withdraw, events.rebalance, events.cancel, events.history, events.import_group,
    policy.policy,
    books.lots, books.gains, books.performance,
    windows.window, windows.windows_list, windows.status, reconcile.reconcile,
    admin.serve, admin.token, admin.audit, admin.settings_cmd, admin.db, admin.daemon, admin.reload, admin.demo,
    backtest,                    # its own module: engine/shell/backtest/ (the runner loads when it runs)
):
    main.add_command(command)
