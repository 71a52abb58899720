"""Where the command line writes: rich consoles, and the one-line error for user mistakes."""

from __future__ import annotations

import click
from rich.console import Console

import rules

out = Console(highlight=False, soft_wrap=True)   # lines stay whole in logs and pipes
err = Console(stderr=True, highlight=False)


class UserError(click.ClickException):
    """A mistake in what the user gave us: one line on stderr, exit 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: ARG002 - click's signature
        err.print(f"[red]error:[/red] {self.message}", markup=True, soft_wrap=True)


class Conflict(UserError):
    """Another process holds what the command needs (a running window): exit 4, try later."""

    exit_code = 4


class TryAgain(UserError):
    """The ledger's database is unavailable now: exit 75 (EX_TEMPFAIL), run it again later."""

    exit_code = 75


def print_policy_error(e: rules.PolicyError) -> None:
    for d in e.diagnostics:
        err.print(d.render(), markup=False, soft_wrap=True)
    n = len(e.diagnostics)
    err.print(f"{n} error{'s' if n != 1 else ''}", style="red")
