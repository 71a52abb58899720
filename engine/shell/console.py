"""Where the command line writes: rich consoles, and the one-line error for user mistakes."""

from __future__ import annotations

import click
from rich.console import Console

import rules
from engine.core.errors import PiesError

out = Console(highlight=False, soft_wrap=True)   # lines stay whole in logs and pipes
err = Console(stderr=True, highlight=False)


class UserError(click.ClickException):
    """A mistake in what the user gave us: one line on stderr, exit 2 (or the exit code
    engine/core/errors.py gives the error's class: `UserError.of`)."""

    exit_code = 2

    @classmethod
    def of(cls, e: PiesError) -> "UserError":
        made = cls(e.console())
        made.exit_code = e.exit_code
        return made

    def show(self, file=None) -> None:  # noqa: ARG002 - click's signature
        err.print(f"[red]error:[/red] {self.message}", markup=True, soft_wrap=True)


def print_policy_error(e: rules.PolicyError) -> None:
    for d in e.diagnostics:
        err.print(d.render(), markup=False, soft_wrap=True)
    n = len(e.diagnostics)
    err.print(f"{n} error{'s' if n != 1 else ''}", style="red")
