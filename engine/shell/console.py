"""Where the command line writes: rich consoles, and the one-line error for user mistakes.

The consoles are made (and rich imported) when first written to: a command that prints
JSON, or nothing, does not pay for rich (bench/cli.py)."""

from __future__ import annotations

import click

import rules
from engine.core.errors import PiesError


class _Console:
    """A rich Console made on first use, with these options."""

    def __init__(self, **options):
        self._options = options
        self._console = None

    def __getattr__(self, name: str):
        if self._console is None:
            from rich.console import Console
            self._console = Console(**self._options)
        return getattr(self._console, name)


out = _Console(highlight=False, soft_wrap=True)   # lines stay whole in logs and pipes
err = _Console(stderr=True, highlight=False)


def say(line: str) -> None:
    """One plain line on stdout, exactly as written (never read as markup) and without rich."""
    click.echo(line)


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
        # The message quotes what the user typed, printed as it is (`pies deposit a "[/x]"`);
        # click colours "error:" on a terminal only, and a refusal does not load rich.
        click.echo(f"{click.style('error:', fg='red')} {self.message}", err=True)


def print_policy_error(e: rules.PolicyError) -> None:
    for d in e.diagnostics:
        err.print(d.render(), markup=False, soft_wrap=True)
    n = len(e.diagnostics)
    err.print(f"{n} error{'s' if n != 1 else ''}", style="red")
