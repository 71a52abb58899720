"""Money is integer cents inside the engine; Decimal at its edges; never float.

The one place that parses, rounds and formats dollars (docs/money.md):
- `parse_dollars`: an amount a person typed (CLI, API, console, CSV import, preview,
  settings, the policy language's `$` amounts), strictly, one grammar for all of them.
- `cents`: a Decimal of dollars as integer cents, exactly or with the rounding the caller
  names; `dollars`: integer cents back to a Decimal for the ledger and the broker.
- `fmt`: cents as text.
"""

from __future__ import annotations

import re
from decimal import Decimal

MAX_CENTS = 1_000_000_000 * 100        # a billion dollars: more is a typo, not a deposit
# Checked before anything else looks at the text: the longest amount in the grammar is
# "$1,000,000,000.00" (17); the room above it is for leading zeros. A longer text is
# refused without being converted (Python refuses int() of more than 4,300 digits).
MAX_CHARS = 40
_SPACE = " \t\r\n"                     # ASCII only: other spaces are not part of an amount
# 123, 123.45, 1,234.56 (thousands only in groups of three), an optional leading $.
_WHOLE = r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+"
_AMOUNT = re.compile(rf"\$?(?P<whole>{_WHOLE})(?:\.(?P<frac>[0-9]{{1,2}}))?")
_VALUE = re.compile(rf"\$?(?P<whole>{_WHOLE})(?:\.(?P<frac>[0-9]+))?")      # a market value: any decimals
_SUB_CENT = re.compile(rf"\$?(?:{_WHOLE})\.[0-9]{{3,}}")
_COMMAS = re.compile(r"\$?[0-9][0-9,]*(?:\.[0-9]+)?")


class MoneyError(ValueError):
    """An amount a user gave is not a valid amount of money."""


def _shown(text: str) -> str:
    """The text as an error quotes it: never more than a line, however long the input."""
    return repr(text) if len(text) <= 24 else f"{text[:20]!r}... ({len(text):,} characters)"


def parse_dollars(text: str, *, what: str = "amount", zero: bool = False, market: bool = False) -> int:
    """A dollar amount as a person types it, strictly, as integer cents.

    Accepted: `123`, `123.45`, `1,234.56`, each with an optional leading `$` and spaces
    around. Refused, in one line that says why: a comma that is not a thousands separator
    (`10,50`), exponents, signs, underscores, hex, other currency symbols or digits that are
    not ASCII, NaN and Infinity, a point without digits on both sides (`.5`, `5.`), more
    than two decimals, zero (unless `zero`), more than a billion, more than MAX_CHARS
    characters. `market`: a market value someone wrote down (preview's holdings), which
    may have more decimals; it is rounded half to even to the cent, like every market value."""
    if not isinstance(text, str):
        raise TypeError(f"{what}: an amount to parse is text, not {type(text).__name__}")
    if len(text) > MAX_CHARS * 4 or len(raw := text.strip(_SPACE)) > MAX_CHARS:
        raise MoneyError(f"{what} {_shown(text)} is too long for an amount (at most {MAX_CHARS} characters)")
    shown = _shown(text)
    if not raw:
        raise MoneyError(f"{what}: no amount given (write dollars, like 1,234.56)")
    m = (_VALUE if market else _AMOUNT).fullmatch(raw)
    if m is None:
        if _SUB_CENT.fullmatch(raw):
            raise MoneyError(f"{what} {shown} has fractions of a cent")
        if _COMMAS.fullmatch(raw) and "," in raw:
            raise MoneyError(f"{what} {shown}: commas only separate thousands (1,234.56); "
                             f"write cents after a point, like 10.50")
        if raw.startswith(("-", "+")):
            raise MoneyError(f"{what} {shown}: write the amount without a sign; it must be positive")
        if not any("0" <= ch <= "9" for ch in raw):
            raise MoneyError(f"{what} {shown} is not a dollar amount: not a number (write it like 1,234.56 or $100)")
        raise MoneyError(f"{what} {shown} is not a dollar amount (like 1,234.56 or $100)")
    whole, frac = m.group("whole").replace(",", ""), m.group("frac") or ""
    if len(frac) > 2:                   # a market value: half to even, in integers (exact at any length)
        scale = 10 ** (len(frac) - 2)
        c, rest = divmod(int(whole + frac), scale)
        c += 2 * rest > scale or (2 * rest == scale and c % 2 == 1)
    else:
        c = int(whole) * 100 + int(frac.ljust(2, "0"))
    return _bounded(c, what, shown, raw, zero)


def _bounded(cents: int, what: str, shown: str, raw: str, zero: bool) -> int:
    if cents == 0 and not zero:
        raise MoneyError(f"{what} must be positive, not {raw}")
    if cents > MAX_CENTS:
        raise MoneyError(f"{what} {shown} is more than ${fmt(MAX_CENTS, commas=True)}: surely a typo")
    return cents


def cents(value: Decimal, rounding: str | None = None) -> int:
    """Dollars (a Decimal) as integer cents.

    Without `rounding` the value must be whole cents already (an amount from the ledger or
    the parser): a fraction of a cent is a bug, and raises. With one, the value is rounded
    as the caller says: ROUND_HALF_EVEN for a market value (shares x price) to the nearest
    cent, ROUND_DOWN for what a seller is paid (never more than its shares fetched)."""
    if type(value) is not Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise TypeError(f"money must be Decimal or int, not {type(value).__name__}")
        value = Decimal(value)
    if rounding is None:
        c = value.scaleb(2)
        whole = int(c)
        if whole != c:
            raise ValueError(f"{value} is not a whole number of cents")
        return whole
    return int((value * 100).to_integral_value(rounding=rounding))


def dollars(cents: int) -> Decimal:
    """Integer cents as a Decimal of dollars with two places: what the ledger and the broker take."""
    return Decimal(cents).scaleb(-2)


def fmt(cents: int, *, signed: bool = False, commas: bool = False) -> str:
    """'1234.56'; signed: '+1234.56' / '-1234.56' (zero is '0.00'); commas: '1,234.56'
    (what confirmations print)."""
    sign = "-" if cents < 0 else ("+" if signed and cents > 0 else "")
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{frac:02d}" if commas else f"{sign}{whole}.{frac:02d}"
