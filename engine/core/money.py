"""Money is integer cents inside the engine; Decimal at its edges; never float."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from .errors import Refused

CENT = Decimal("0.01")
MAX_CENTS = 1_000_000_000 * 100        # a billion dollars: more is a typo, not a deposit
# 123, 123.45, 1,234.56 (thousands only in groups of three), an optional leading $.
_AMOUNT = re.compile(r"\$?(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<frac>[0-9]{1,2}))?")


class MoneyError(Refused):
    """An amount a user gave is not a valid amount of money."""


def to_cents(value: Decimal | str | int, *, what: str = "amount") -> int:
    """An exact dollar amount (at most two decimals) as integer cents. Refuses floats."""
    if isinstance(value, float) or isinstance(value, bool):
        raise TypeError(f"{what}: money must be Decimal, str or int, not {type(value).__name__}")
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        raise MoneyError(f"{what} {value!r} is not a number") from None
    if not d.is_finite():
        raise MoneyError(f"{what} {value!r} is not a number")
    if d != d.quantize(CENT, rounding=ROUND_HALF_EVEN):
        raise MoneyError(f"{what} {value} has fractions of a cent")
    return int(d * 100)


def market_cents(value: Decimal) -> int:
    """A market value (shares x price, any precision) to the nearest cent, half to even."""
    return int((value * 100).to_integral_value(rounding=ROUND_HALF_EVEN))


def dollars(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def fmt(cents: int, *, signed: bool = False) -> str:
    """'1234.56'; signed: '+1234.56' / '-1234.56' (zero is '0.00')."""
    sign = "-" if cents < 0 else ("+" if signed and cents > 0 else "")
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def parse_dollars(text: str, *, what: str = "amount") -> int:
    """A positive dollar amount as a person types it, strictly, as integer cents.

    Accepted: `123`, `123.45`, `1,234.56`, each with an optional leading `$`. Refused, in
    one line that says why: a comma that is not a thousands separator (`10,50`), exponents,
    signs, other currency symbols, more than two decimals, zero, more than a billion."""
    raw = str(text).strip()
    m = _AMOUNT.fullmatch(raw)
    if m is None:
        if re.fullmatch(r"\$?[0-9][0-9,]*(\.[0-9]+)?", raw) and "," in raw:
            raise MoneyError(f"{what} {text!r}: commas only separate thousands (1,234.56); "
                             f"write cents after a point, like 10.50")
        if re.fullmatch(r"\$?[0-9]+\.[0-9]{3,}", raw):
            raise MoneyError(f"{what} {text!r} has fractions of a cent")
        if raw.startswith(("-", "+")):
            raise MoneyError(f"{what} {text!r}: write the amount without a sign; it must be positive")
        raise MoneyError(f"{what} {text!r} is not a dollar amount (like 1,234.56 or $100)")
    cents = int(m.group("whole").replace(",", "")) * 100 + int((m.group("frac") or "0").ljust(2, "0"))
    if cents <= 0:
        raise MoneyError(f"{what} must be positive, not {text}")
    if cents > MAX_CENTS:
        raise MoneyError(f"{what} {text!r} is more than ${dollar_text(MAX_CENTS)}: surely a typo")
    return cents


def dollar_text(cents: int) -> str:
    """'1,050.00': what confirmations print."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{frac:02d}"
