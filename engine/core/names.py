"""The one rule for names (accounts, pies, tokens) and idempotency keys, for every door of
the engine (CLI, API, console, CSV imports, the ledger). It is written in the language
(rules/names.py), whose compiler checks pie names with it and may import nothing of the
engine."""

from rules.names import KEY_MAX, NAME_MAX, InvalidName, check_name, problem, shown  # noqa: F401

__all__ = ["KEY_MAX", "NAME_MAX", "InvalidName", "check_name", "problem", "shown"]
