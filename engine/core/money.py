"""Money is integer cents inside the engine; Decimal at its edges; never float.

The one place that parses, rounds and formats dollars (docs/money.md):
- `parse_dollars`: an amount a person typed (CLI, API, console, CSV import, preview,
  settings, the policy language's `$` amounts), strictly, one grammar for all of them.
- `cents`: a Decimal of dollars as integer cents, exactly or with the rounding the caller
  names; `dollars`: integer cents back to a Decimal for the ledger and the broker.
- `fmt`: cents as text.
"""

from __future__ import annotations

from decimal import Decimal

from rules.vocabulary import MAX_CENTS, MAX_CHARS, AmountError, parse_amount

from .errors import Refused

__all__ = ["MAX_CENTS", "MAX_CHARS", "MoneyError", "cents", "dollars", "fmt", "parse_dollars"]


class MoneyError(Refused):
    """An amount a user gave is not a valid amount of money."""


def parse_dollars(text: str, *, what: str = "amount", zero: bool = False, market: bool = False) -> int:
    """A dollar amount as a person types it, strictly, as integer cents: the one grammar
    (docs/money.md). It is written down in the language's vocabulary (rules/vocabulary.py),
    the layer below the engine, so that the policy language's `$` amounts are read by the
    same function; everyone else reads amounts here. Refusals are MoneyError."""
    try:
        return parse_amount(text, what=what, zero=zero, market=market)
    except AmountError as e:
        raise MoneyError(str(e)) from None


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
