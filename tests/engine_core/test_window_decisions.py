"""The window's small decisions that used to live in the repository: the part of a fill not
stored yet, each symbol's phase, and the house's cash from its own trades."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.core.window.allocation import new_fill, phase_of_symbols, shares_after
from engine.core.window.model import FillReport, Move, Phase
from engine.core.window.settlement import house_own_trades

D = Decimal


def test_a_fill_arrives_in_parts():
    first = new_fill((), D("3"), 3000, D("10"))
    assert first == FillReport(D("3"), 3000, D("10"))
    second = new_fill((first,), D("5"), 5001, D("10.002"))
    assert second == FillReport(D("2"), 2001, D("10.005"))          # its own price, not the average
    assert new_fill((first, second), D("5"), 5001, D("10.002")) is None     # nothing new
    assert new_fill((), D("0"), 0, None) is None                             # nothing filled yet
    assert new_fill((), D("1"), 1000, None) == FillReport(D("1"), 1000, D("0"))


@given(st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 10**6)), min_size=1, max_size=8))
def test_the_parts_add_up_to_the_broker_s_cumulative_fill(steps):
    stored: list[FillReport] = []
    qty, cents = D(0), 0
    for dq, dc in steps:
        qty += D(dq).scaleb(-3)
        cents += dc
        part = new_fill(stored, qty, cents, D("1"))
        assert part is not None and part.qty > 0
        stored.append(part)
        assert (sum(p.qty for p in stored), sum(p.cents for p in stored)) == (qty, cents)
        assert new_fill(stored, qty, cents, D("1")) is None                 # a repeated report adds nothing


def test_each_symbol_has_the_phase_of_its_order():
    orders = [("AAA", Phase.SELL, "filled"), ("BBB", Phase.BUY, "dropped"), ("CCC", Phase.BUY, "filled"),
              ("DDD", Phase.BUY, "dropped"), ("DDD", Phase.BUY, "submitted")]
    got = phase_of_symbols(["EEE", "DDD", "CCC", "BBB", "AAA", "AAA"], orders)
    assert list(got) == ["AAA", "BBB", "CCC", "DDD", "EEE"]
    assert got == {"AAA": Phase.SELL, "BBB": Phase.BUY,       # its buy re-netted away by scaling
                   "CCC": Phase.BUY, "DDD": Phase.BUY, "EEE": Phase.SELL}   # EEE crossed in full


def test_holdings_after_moves_and_the_house_s_own_trades():
    held = {(1, "a"): D("2"), (2, "b"): D("0")}
    moves = [Move(1, "a", "X", D("-2"), -500), Move(2, "b", "X", D("1.5"), 300), Move(9, "X", "X", D("0.5"), 200),
             Move(3, "c", "Y", D("1"), 100), Move(3, "c", "Y", D("-1"), -100)]
    assert shares_after(held, moves) == {(1, "a"): ("X", D("0")), (2, "b"): ("X", D("1.5")), (9, "X"): ("X", D("0.5")),
                                         (3, "c"): ("Y", D("0"))}
    assert house_own_trades({9: 200, 1: -500}, 9) == -200          # the house paid for the residue it took
    assert house_own_trades({1: -500}, 9) == 0
