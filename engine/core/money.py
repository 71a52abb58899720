"""Money is integer cents inside the engine; Decimal at its edges; never float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

CENT = Decimal("0.01")


class MoneyError(ValueError):
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
