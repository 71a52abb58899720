"""The one rule for names a person chooses: accounts, pies, tokens, and idempotency keys.

A name is 1-100 characters, with no `/` (it separates slice paths and URL segments), no
control or invisible characters (newlines, tabs, NUL, zero-width and bidi characters, any
space but the plain one: a name must read as it is stored). The CLI and CSV imports trim
the spaces around an account's name, as they always have. Idempotency keys follow the same
rule but may be 200 characters and may hold `/` (bank references do); they never appear in
a path. Every door (CLI, API, console, CSV import, the policy compiler) checks here.
"""

from __future__ import annotations

NAME_MAX = 100
KEY_MAX = 200


class InvalidName(ValueError):
    """A name breaks the rule; the message says which part and shows the name safely."""


def shown(text: str, limit: int = 40) -> str:
    """A name quoted for an error message: escaped, and cut short if long."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return repr(cut)


def problem(text: object, what: str = "name", *, key: bool = False) -> str | None:
    """What is wrong with `text` as a name (or key), or None when it is fine."""
    limit = KEY_MAX if key else NAME_MAX
    if not isinstance(text, str):
        return f"{what} must be text"
    if not text:
        return f"{what} must not be empty"
    if len(text) > limit:
        return f"{what} {shown(text)} is {len(text)} characters; the limit is {limit}"
    if not key and "/" in text:
        return f"{what} {shown(text)} may not contain \"/\" (it separates paths)"
    for ch in text:
        # Not printable: control, format (zero-width, bidi), separators other than the plain
        # space, surrogates, private-use and unassigned characters.
        if not (ch == " " or ch.isprintable()):
            return f"{what} {shown(text)} contains a control or invisible character (U+{ord(ch):04X})"
    return None


def check_name(text: object, what: str = "name", *, key: bool = False) -> str:
    """`text` if it is a valid name (or key), else InvalidName saying why."""
    wrong = problem(text, what, key=key)
    if wrong:
        raise InvalidName(wrong)
    return text  # type: ignore[return-value]
