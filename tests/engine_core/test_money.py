"""engine/core/money.py: the one grammar of amounts, cents with a named rounding, the formatter."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.money import MAX_CENTS, MoneyError, cents, dollars, fmt, parse_dollars


@pytest.mark.parametrize("text, expected", [
    ("1", 100), ("123.45", 12345), ("123.4", 12340), ("$7", 700), ("1,234.56", 123456), ("$1,000,000", 100_000_000),
    (" 12 ", 1200), ("\t12\n", 1200), ("0.01", 1), ("007", 700), ("1,000,000,000", MAX_CENTS), ("$1,000.00", 100000),
])
def test_amounts_in_the_grammar(text, expected):
    assert parse_dollars(text) == expected


@pytest.mark.parametrize("text, says", [
    ("10,50", "commas only separate thousands"), ("1,0,0", "commas only separate thousands"),
    ("1,00.00", "commas only separate thousands"), ("1000,000", "commas only separate thousands"),
    ("$1,000.001", "has fractions of a cent"), ("10.505", "has fractions of a cent"),
    ("1e30", "is not a dollar amount"), ("1E3", "is not a dollar amount"), ("0x10", "is not a dollar amount"),
    ("1_000", "is not a dollar amount"), ("NaN", "not a number"), ("Infinity", "not a number"),
    ("-Infinity", "without a sign"), ("١٢٣", "not a number"), ("１２", "not a number"),
    ("12\u00a0", "is not a dollar amount"), ("12.", "is not a dollar amount"), (".5", "is not a dollar amount"),
    ("$ 5", "is not a dollar amount"), ("5$", "is not a dollar amount"), ("US$5", "is not a dollar amount"),
    ("-5", "must be positive"), ("+5", "without a sign"), ("0", "must be positive"), ("$0.00", "must be positive"),
    ("", "no amount given"), ("   ", "no amount given"), ("1,000,000,000.01", "surely a typo"),
    ("9" * 30, "surely a typo"), ("9" * 5000, "too long"), (" " * 1000 + "5", "too long"),
])
def test_amounts_outside_the_grammar_are_refused_in_one_short_line(text, says):
    with pytest.raises(MoneyError) as e:
        parse_dollars(text, what="deposit")
    msg = str(e.value)
    assert says in msg and msg.startswith("deposit") and "\n" not in msg and len(msg) < 200


def test_zero_where_it_is_allowed_and_text_only():
    assert parse_dollars("$0", zero=True) == 0 and parse_dollars("0.00", zero=True) == 0
    with pytest.raises(MoneyError, match="without a sign"):
        parse_dollars("-1", zero=True)
    with pytest.raises(TypeError):
        parse_dollars(Decimal("5"))       # type: ignore[arg-type] - a parsed amount is not parsed twice


@given(st.integers(1, MAX_CENTS))
def test_what_fmt_prints_parses_back_to_the_same_cents(c):
    assert parse_dollars(fmt(c)) == c == parse_dollars("$" + fmt(c, commas=True))


def test_cents_is_exact_unless_a_rounding_is_named():
    assert cents(Decimal("12.34")) == 1234 and cents(Decimal("-0.50")) == -50 and cents(7) == 700
    with pytest.raises(ValueError, match="not a whole number of cents"):
        cents(Decimal("0.125"))
    with pytest.raises(TypeError):
        cents(0.5)                                           # type: ignore[arg-type]
    assert cents(Decimal("0.125"), ROUND_HALF_EVEN) == 12 and cents(Decimal("0.135"), ROUND_HALF_EVEN) == 14
    assert cents(Decimal("0.129"), ROUND_DOWN) == 12 and cents(Decimal("-0.129"), ROUND_DOWN) == -12


def test_dollars_and_fmt():
    assert dollars(105000) == Decimal("1050.00") and str(dollars(5)) == "0.05"
    assert fmt(105000) == "1050.00" and fmt(105000, commas=True) == "1,050.00"
    assert fmt(-5, signed=True) == "-0.05" and fmt(5, signed=True) == "+0.05" and fmt(0, signed=True) == "0.00"


@pytest.mark.parametrize("text, expected", [
    ("7500.50", 750050), ("0", 0), ("1.005", 100), ("1.015", 102), ("1.0051", 101), ("$1,000.125", 100012),
    ("0.004999999999999999999999999999999", 0), ("999999999.995", MAX_CENTS),
])
def test_a_market_value_rounds_half_to_even_to_the_cent(text, expected):
    assert parse_dollars(text, zero=True, market=True) == expected


@pytest.mark.parametrize("text", ["1e3", "-1", "1,0.5", "NaN", "1000000000.006", "9" * 41])
def test_a_market_value_keeps_the_rest_of_the_grammar(text):
    with pytest.raises(MoneyError):
        parse_dollars(text, zero=True, market=True)
