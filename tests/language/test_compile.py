"""The language compiles what analysts write into exact, immutable pies and rules."""

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

import rules
from rules.compiler import equal_split

EXAMPLES = Path(rules.__file__).parent / "examples"

ISSUE_EXAMPLE = '''
# Core portfolio for the growth accounts
pie "Growth" {
    VTI    40%
    VXUS   20%
    pie "Bonds" 40% {
        BND  70%
        TIP  30%
    }
}

pie "Tech" equal {
    AAPL
    MSFT
    NVDA
}

pie "Blend" {
    use "Tech" 30%        # a reference to another top-level pie
    VTI 70%
}

rules "house" {
    on deposit        buy underweight-first
    on dividend       buy underweight-first
    on withdrawal     sell overweight-first
    on rebalance      rebalance
    on target-change  no-trade
    on removal        liquidate proceeds-to parent
    cash reserve      $0        # never invested
    invest minimum    $25       # cash above the reserve waits until it reaches this
}
'''


def test_the_issue_example_compiles_to_exact_targets():
    policy = rules.compile_text(ISSUE_EXAMPLE, "house.pie")
    growth = policy.pies["Growth"]
    assert [(p, s.target_bp) for p, s in growth.walk()] == [
        ("VTI", 4000), ("VXUS", 2000), ("Bonds", 4000), ("Bonds/BND", 7000), ("Bonds/TIP", 3000),
    ]
    assert [s.target_bp for s in policy.pies["Tech"].slices] == [3334, 3333, 3333]
    blend = policy.pies["Blend"]
    tech = blend.find("Tech")
    assert isinstance(tech, rules.Pie) and tech.uses == "Tech" and tech.target_bp == 3000
    assert blend.find("Tech/MSFT").target_bp == 3333
    house = policy.rules["house"]
    assert house.deposit.name == "buy underweight-first"
    assert house.removal.param("proceeds-to") == "parent"
    assert house.invest_minimum_cents == 2500 and house.cash_reserve_cents == 0
    assert house.source.line == 23


def test_the_plan_is_immutable():
    policy = rules.compile_text(ISSUE_EXAMPLE)
    with pytest.raises(FrozenInstanceError):
        policy.pies["Growth"].slices[0].target_bp = 1


def test_symbols_with_class_suffix_and_zero_targets():
    policy = rules.compile_text('pie "P" { BRK.B 60% VTI 40% OLD 0% }')
    assert [s.name for s in policy.pies["P"].slices] == ["BRK.B", "VTI", "OLD"]
    assert policy.pies["P"].slices[2].target_bp == 0


@pytest.mark.parametrize("n", [1, 3, 6, 7, 99, 100])
def test_equal_split_sums_to_100_and_earlier_slices_take_the_rest(n):
    split = equal_split(n)
    assert sum(split) == 10_000
    assert max(split) - min(split) <= 1
    assert split == sorted(split, reverse=True)


def test_standard_library_ships_m1_and_the_alternatives():
    lib = rules.standard_rules()
    m1 = lib["m1"]
    assert (m1.deposit.name, m1.withdrawal.name, m1.target_change.name) == (
        "buy underweight-first", "sell overweight-first", "no-trade")
    assert m1.cash_reserve_cents == 0 and m1.invest_minimum_cents == 0
    assert lib["pro-rata"].deposit.name == "buy pro-rata"
    assert lib["pro-rata"].withdrawal.name == "sell pro-rata"
    assert lib["hold-cash"].deposit.name == "hold-cash"
    assert lib["drift-5"].drift_threshold_bp == 500
    assert lib["monthly"].every == "month"
    # alternatives extend m1: what they do not say is m1's
    assert lib["drift-5"].deposit == m1.deposit


def test_rules_extend_a_base_and_missing_events_come_from_m1():
    policy = rules.compile_text('''
        rules "careful" extends "pro-rata" { cash reserve $1,000.50 }
        rules "lazy" { invest minimum $25 }
    ''')
    careful = policy.rules["careful"]
    assert careful.deposit.name == "buy pro-rata" and careful.cash_reserve_cents == 100050
    assert policy.rules["lazy"].deposit.name == "buy underweight-first"
    assert rules.find_rules("careful", policy) is careful
    assert rules.find_rules("m1", policy) is rules.standard_rules()["m1"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.pie")), ids=lambda p: p.name)
def test_shipped_examples_compile(path):
    assert rules.compile_file(path).pies


def test_seed_examples_reproduce_the_seed_portfolios():
    policy = rules.compile_file(EXAMPLES / "seed.pie")
    assert [s.target_bp for s in policy.pies["Five"].slices] == [2000] * 5
    nested = policy.pies["Nested"]
    assert [p for p, _ in nested.walk()] == ["A", "B", "C", "D", "Pie 1", "Pie 1/E", "Pie 1/F"]
    assert nested.find("Pie 1/E").target_bp == 5000
