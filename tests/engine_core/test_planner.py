"""The rule variants and the planner's edges: pro-rata, hold-cash, drift and calendar triggers,
cash reserve, invest minimum, deferral below the broker minimum, shortfall, composition."""

from __future__ import annotations

from datetime import date

import pytest

from engine.core import allocate
from engine.core import events as ev
from engine.core.planner import PlanError, calendar_due, plan
from rules import compile_text
from rules.library import standard_rules

RULES = standard_rules()
M1 = RULES["m1"]
THREE = compile_text('pie "P" equal { A B C }').pies["P"]
WEIGHTED = compile_text('pie "P" { A 50% B 30% C 20% }').pies["P"]
NESTED = compile_text('pie "P" { A 50% pie "N" 50% { X 50% Y 50% } }').pies["P"]


def rules(body: str, base: str = "m1"):
    return compile_text(f'rules "r" extends "{base}" {{ {body} }}').rules["r"]


def test_largest_remainder_gives_the_extra_cent_to_the_first_slice_on_a_tie():
    p = plan(THREE, {}, [ev.Deposit(10_000)], M1)
    assert p.trades == {"A": 3334, "B": 3333, "C": 3333}


def test_the_extra_cent_goes_to_the_most_underweight_on_equal_remainders():
    # A and B are equally underweight; C is more underweight, so C gets the leftover cent.
    out = allocate.apportion(2, [1, 1, 1], 3, rank=[2, 1, 0])
    assert out == [0, 1, 1]


def test_deposit_fills_the_most_underweight_first_and_leaves_the_rest():
    p = plan(WEIGHTED, {"A": 5000, "B": 1000, "C": 4000}, [ev.Deposit(1000)], M1)
    assert p.trades == {"B": 1000}          # B: 10% held of 30%; only B is below the new level


def test_pro_rata_deposit_ignores_drift():
    p = plan(WEIGHTED, {"A": 5000, "B": 1000, "C": 4000}, [ev.Deposit(1000)], RULES["pro-rata"])
    assert p.trades == {"A": 500, "B": 300, "C": 200}


def test_pro_rata_withdrawal_takes_by_current_value():
    p = plan(WEIGHTED, {"A": 6000, "B": 3000, "C": 1000}, [ev.Withdrawal(1000)], RULES["pro-rata"])
    assert p.trades == {"A": -600, "B": -300, "C": -100}


def test_withdrawal_sells_zero_percent_slices_first():
    pie = compile_text('pie "P" { A 100% B 0% }').pies["P"]
    p = plan(pie, {"A": 10_000}, [ev.Withdrawal(500)], M1, cash=0)
    assert p.trades == {"A": -500}
    # Held at 0%: B is liquidated into A before the withdrawal, which then comes out of A.
    p = plan(pie, {"A": 10_000, "B": 2000}, [ev.Withdrawal(500)], M1)
    assert p.trades == {"A": 1500, "B": -2000} and p.withdrawn == 500


def test_hold_cash_keeps_deposits_until_a_rebalance():
    hold = RULES["hold-cash"]
    p = plan(THREE, {"A": 100, "B": 100, "C": 100}, [ev.Deposit(3000)], hold)
    assert p.trades == {} and p.cash_after == 3000
    p = plan(THREE, {"A": 100, "B": 100, "C": 100}, [ev.Deposit(3000), ev.Rebalance()], hold)
    assert p.trades == {"A": 1000, "B": 1000, "C": 1000} and p.cash_after == 0


def test_cash_reserve_is_never_invested():
    r = rules("cash reserve $10")
    p = plan(THREE, {}, [ev.Deposit(3000)], r)
    assert sum(p.trades.values()) == 2000 and p.cash_after == 1000
    p = plan(THREE, {}, [ev.Deposit(500)], r)
    assert p.trades == {} and p.cash_after == 500


def test_invest_minimum_waits_until_cash_reaches_it():
    r = rules("invest minimum $25")
    p = plan(THREE, {}, [ev.Deposit(2000)], r)
    assert p.trades == {} and p.cash_after == 2000
    p = plan(THREE, {}, [ev.Deposit(1000)], r, cash=2000)
    assert sum(p.trades.values()) == 3000 and p.cash_after == 0


def test_drift_trigger_rebalances_only_past_the_threshold():
    r = RULES["drift-5"]
    calm = plan(THREE, {"A": 3500, "B": 3300, "C": 3200}, [], r)
    assert calm.trades == {}
    drifted = plan(THREE, {"A": 4000, "B": 3000, "C": 3000}, [], r)
    assert drifted.trades == {"A": -666, "B": 333, "C": 333}   # the leftover cent stays in A
    assert [s.cause for s in drifted.steps] == ["drift over 5.00%"]


def test_calendar_trigger_fires_in_the_first_window_of_each_period():
    assert calendar_due("month", date(2026, 12, 1), date(2026, 11, 30))
    assert not calendar_due("month", date(2026, 12, 2), date(2026, 12, 1))
    assert calendar_due("quarter", date(2027, 1, 4), date(2026, 12, 31))
    assert not calendar_due("week", date(2026, 11, 27), date(2026, 11, 23))
    assert calendar_due("month", date(2026, 12, 2), None)
    h = {"A": 4000, "B": 3000, "C": 3000}
    r = RULES["monthly"]
    assert plan(THREE, h, [], r, as_of=date(2026, 12, 1), last_rebalanced=date(2026, 11, 2)).trades
    assert not plan(THREE, h, [], r, as_of=date(2026, 12, 3), last_rebalanced=date(2026, 12, 1)).trades


def test_small_net_orders_are_deferred_with_their_cash_kept():
    p = plan(THREE, {"A": 1000, "B": 1000, "C": 1000}, [ev.Deposit(150)], M1, min_order=100)
    assert p.orders == ()
    assert sorted((d.symbol, d.side, d.cents) for d in p.deferred) == [("A", "buy", 50), ("B", "buy", 50),
                                                                     ("C", "buy", 50)]
    assert p.trades == {} and p.cash_after == 150


def test_a_deferred_sell_shrinks_the_buys_it_was_to_fund():
    # Rebalance: A sells 0.50 (deferred), B and C buy; the buys shrink so cash never goes negative.
    p = plan(THREE, {"A": 1050, "B": 800, "C": 1150}, [ev.Rebalance()], M1, min_order=100)
    assert [d.symbol for d in p.deferred] == ["A"]
    assert p.trades == {"B": 150, "C": -150} and p.cash_after == 0 and p.shortfall == 0
    assert "buys reduced to the cash available" in [s.cause for s in p.steps]


def test_a_withdrawal_whose_sell_is_deferred_is_reported_as_shortfall():
    p = plan(THREE, {"A": 1000, "B": 1000, "C": 1000}, [ev.Withdrawal(60)], M1, min_order=100)
    assert p.orders == () and p.shortfall == 60 and p.withdrawn == 0


def test_composition_nets_deposit_and_withdrawal_then_rebalances():
    p = plan(NESTED, {"A": 6000, "N/X": 2000, "N/Y": 2000},
             [ev.Deposit(3000), ev.Withdrawal(1000), ev.Rebalance("N")], M1)
    # Net +20.00 goes to N (underweight), split X/Y; the nested rebalance then has nothing to do.
    assert p.trades == {"N/X": 1000, "N/Y": 1000}
    assert p.inflow == 3000 and p.withdrawn == 1000


def test_a_symbol_in_two_pies_is_one_order():
    pie = compile_text('pie "P" { A 50% pie "N" 50% { A 50% B 50% } }').pies["P"]
    p = plan(pie, {}, [ev.Deposit(10_000)], M1)
    assert p.trades == {"A": 5000, "N/A": 2500, "N/B": 2500}
    assert [(o.symbol, o.cents) for o in p.orders] == [("A", 7500), ("B", 2500)]


def test_crossing_slices_of_one_symbol_net_to_nothing():
    pie = compile_text('pie "P" { A 50% pie "N" 50% { A 50% B 50% } }').pies["P"]
    p = plan(pie, {"A": 6000, "N/A": 1000, "N/B": 3000}, [ev.Rebalance("N")], M1)
    assert p.trades == {"N/A": 1000, "N/B": -1000}
    assert [(o.symbol, o.side, o.cents) for o in p.orders] == [("B", "sell", 1000), ("A", "buy", 1000)]


@pytest.mark.parametrize("events, message", [
    ([ev.Withdrawal(10_000)], "more than the account holds"),
    ([ev.Deposit(-5)], "positive amount"),
    ([ev.Rebalance("A")], "a security, not a pie"),
    ([ev.Rebalance("Nope")], "not a pie of this portfolio"),
])
def test_bad_events_are_refused_in_one_line(events, message):
    with pytest.raises(PlanError, match=message):
        plan(NESTED, {"A": 100}, events, M1)
