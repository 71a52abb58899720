"""The policy language's `$` amounts are read by the one amount grammar (docs/money.md)."""

import pytest

import rules


def rules_text(amount: str) -> str:
    return f'pie "P" {{ A 100% }}\nrules "r" extends "m1" {{\n  cash reserve {amount}\n}}\n'


@pytest.mark.parametrize("amount, cents", [("$0", 0), ("$25", 2500), ("$1,000.50", 100050), ("$1000.5", 100050)])
def test_amounts_in_the_grammar(amount, cents):
    policy = rules.compile_text(rules_text(amount), "p.pie")
    assert rules.find_rules("r", policy).cash_reserve_cents == cents


@pytest.mark.parametrize("amount, says", [
    ("$1,0,0", "commas only separate thousands"), ("$10,50", "commas only separate thousands"),
    ("$1.234", "has fractions of a cent"), ("$1,000,000,000.01", "surely a typo"), ("$" + "9" * 5000, "too long"),
])
def test_amounts_outside_it_are_one_error_at_the_amount(amount, says):
    with pytest.raises(rules.PolicyError) as e:
        rules.compile_text(rules_text(amount), "p.pie")
    (d,) = e.value.diagnostics
    assert (d.source.line, d.source.column) == (3, 16) and says in d.message and d.message.startswith("cash reserve")
    assert len(d.message) < 200


def test_fmt_never_changes_an_amount_it_cannot_read():
    # $1.234 used to come out as $1.23, a file that compiles with another amount
    assert "cash reserve $1.234" in rules.format_text(rules_text("$1.234"), "p.pie")
    assert "cash reserve $1,0,0" in rules.format_text(rules_text("$1,0,0"), "p.pie")
    assert "cash reserve $1000.50" in rules.format_text(rules_text("$1,000.50"), "p.pie")
