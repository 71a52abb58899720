"""The policy language's `lots` rule: the method an account's sales consume lots by."""

from __future__ import annotations

import pytest

from rules import compile_text
from rules.diagnostics import PolicyError


BASE = 'pie "P" equal {{ VTI }}\nrules "r" {{\n  {}\n}}\n'


@pytest.mark.parametrize("method", ["tax-min", "fifo", "lifo", "hifo"])
def test_each_method_compiles(method):
    assert compile_text(BASE.format(f"lots {method}"), "x.pie").rules["r"].lot_method == method


def test_the_default_and_m1_are_tax_min():
    policy = compile_text(BASE.format("cash reserve $5"), "x.pie")
    assert policy.rules["r"].lot_method == "tax-min"
    m1 = open("rules/m1.rules").read()
    assert "lots              tax-min" in m1


@pytest.mark.parametrize("text, where, words", [
    ("lots fastest", "x.pie:3:8", "'lots fastest': choose 'tax-min', 'fifo', 'lifo' or 'hifo'"),
    ("lots fifo lifo", "x.pie:3:13", "one word too many"),
    ("lots hifo\n  lots fifo", "x.pie:4:3", "this repeats line 3"),
])
def test_a_bad_method_is_an_error_at_its_place(text, where, words):
    with pytest.raises(PolicyError) as e:
        compile_text(BASE.format(text), "x.pie")
    assert where in str(e.value) and words in str(e.value)


def test_an_extending_rule_set_inherits_the_method():
    text = 'pie "P" equal { VTI }\nrules "a" {\n  lots hifo\n}\nrules "b" extends "a" {\n  cash reserve $1\n}\n'
    assert compile_text(text, "x.pie").rules["b"].lot_method == "hifo"
