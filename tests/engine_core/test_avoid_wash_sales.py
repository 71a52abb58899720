"""`avoid wash-sales`: a symbol its owner sold at a loss in the last 30 days is not bought by
deposits, dividends or rebalances; its slice is left out for the window and its cash goes to
the other slices by the usual rule; the plan says which buys were held back and why."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

import rules
from engine.core.events import Deposit, Rebalance, Withdrawal
from engine.core.planner import plan
from engine.core.window.model import AccountState, Holding, Kind, WindowEvent
from engine.core.window.planning import plan_account

POLICY = rules.compile_text('''
pie "A" { VTI 50% pie "B" 50% { BND 60% TIP 40% } }
rules "careful" { avoid wash-sales }
''', "a.pie")
PIE, CAREFUL, M1 = POLICY.pies["A"], POLICY.rules["careful"], rules.library.standard_rules()["m1"]
HELD = {"VTI": 40_000, "B/BND": 30_000, "B/TIP": 30_000}
PRICES = {"VTI": Decimal("100"), "BND": Decimal("50"), "TIP": Decimal("25")}
SOLD = date(2026, 11, 2)


def state(events, rules_=CAREFUL, blocked=(("VTI", SOLD),)):
    holdings = tuple(Holding(p, p.rsplit("/", 1)[-1], Decimal(c) / 100 / PRICES[p.rsplit("/", 1)[-1]])
                     for p, c in sorted(HELD.items()))
    return AccountState(1, "alice", 0, PIE, rules_, holdings, tuple(events), None, blocked)


def test_m1_does_not_avoid_wash_sales_and_the_rule_is_off_unless_said():
    assert M1.avoid_wash_sales is False and CAREFUL.avoid_wash_sales is True
    p = plan_account(state([WindowEvent(1, 1, Kind.DEPOSIT, 50_000)], M1), PRICES, date(2026, 11, 20))
    assert {t.path: t.cents for t in p.trades} == {"VTI": 35_000, "B/BND": 15_000}
    assert p.held_back == () and p.note is None


def test_a_deposit_holds_the_buy_back_and_its_cash_goes_to_the_other_slices():
    p = plan_account(state([WindowEvent(1, 1, Kind.DEPOSIT, 50_000)]), PRICES, date(2026, 11, 20))
    assert {t.path: t.cents for t in p.trades} == {"B/BND": 36_000, "B/TIP": 14_000}     # all 500.00 invested
    [h] = p.held_back
    assert (h.symbol, h.cents, h.sold) == ("VTI", 35_000, SOLD)
    assert p.note == "buy of $350.00 VTI held back: sold at a loss on 2026-11-02 (avoid wash-sales)"


def test_a_dividend_too():
    p = plan_account(state([WindowEvent(1, 1, Kind.DIVIDEND, 1_000)]), PRICES, date(2026, 11, 20))
    assert "VTI" not in {t.symbol for t in p.trades} and sum(t.cents for t in p.trades) == 1_000
    assert [h.symbol for h in p.held_back] == ["VTI"]


def test_a_rebalance_leaves_the_blocked_slice_where_it_is_and_rebalances_the_rest():
    p = plan_account(state([WindowEvent(1, 1, Kind.REBALANCE, None, "")]), PRICES, date(2026, 11, 20))
    assert {t.path: t.cents for t in p.trades} == {"B/BND": 6_000, "B/TIP": -6_000}
    assert [(h.symbol, h.cents) for h in p.held_back] == [("VTI", 10_000)]


def test_selling_a_blocked_symbol_is_not_held_back():
    p = plan_account(state([WindowEvent(1, 1, Kind.WITHDRAWAL, 20_000)]), PRICES, date(2026, 11, 20))
    assert {t.path: t.cents for t in p.trades} == \
        {t.path: t.cents for t in plan_account(state([WindowEvent(1, 1, Kind.WITHDRAWAL, 20_000)], M1), PRICES,
                                               date(2026, 11, 20)).trades}
    assert p.held_back == ()


def test_when_every_slice_is_blocked_the_cash_waits():
    everything = (("BND", SOLD), ("TIP", SOLD), ("VTI", SOLD))
    p = plan_account(state([WindowEvent(1, 1, Kind.DEPOSIT, 50_000)], blocked=everything), PRICES,
                     date(2026, 11, 20))
    assert p.trades == () and p.deposits == 50_000 and len(p.held_back) == 2     # VTI and BND would have been bought


def test_a_nested_pie_all_blocked_sends_its_share_elsewhere():
    p = plan(PIE, HELD, [Deposit(50_000, "1")], CAREFUL, blocked=frozenset({"BND", "TIP"}))
    assert dict(p.trades) == {"VTI": 50_000}


cents = st.integers(min_value=0, max_value=10_000_000)


@settings(max_examples=200, deadline=None)
@given(vti=cents, bnd=cents, tip=cents, amount=st.integers(1, 10_000_000),
       blocked=st.sets(st.sampled_from(["VTI", "BND", "TIP"])), kind=st.sampled_from(["deposit", "rebalance",
                                                                                        "withdrawal"]))
def test_no_blocked_symbol_is_ever_bought_and_no_cent_is_lost(vti, bnd, tip, amount, blocked, kind):
    held = {k: v for k, v in {"VTI": vti, "B/BND": bnd, "B/TIP": tip}.items() if v}
    if kind == "withdrawal" and amount > sum(held.values()):
        amount = sum(held.values()) or 1
        if not held:
            return
    ev = {"deposit": Deposit(amount, "1"), "rebalance": Rebalance("", "1"), "withdrawal": Withdrawal(amount, "1")}
    p = plan(PIE, held, [ev[kind]], CAREFUL, min_order=0, cash=amount if kind == "rebalance" else 0,
             blocked=frozenset(blocked))
    bought = {path.rsplit("/", 1)[-1]: c for path, c in p.trades.items() if c > 0}
    assert not set(bought) & blocked
    assert sum(p.holdings_after.values()) + p.cash_after == sum(held.values()) + \
        {"deposit": amount, "rebalance": amount, "withdrawal": -amount}[kind] + (p.shortfall if kind == "withdrawal" else 0)
    if kind == "withdrawal":
        unblocked = plan(PIE, held, [ev[kind]], CAREFUL, min_order=0)
        assert dict(p.trades) == dict(unblocked.trades)


def test_which_sales_block_a_buy_the_30_day_boundary_the_owner_and_losses_only():
    from engine.core.lots import Realized
    from engine.core.window.planning import with_recent_losses
    day = date(2026, 12, 31)

    def sold(aid, sym, when, proceeds, basis):
        return Realized(0, aid, 0, sym, date(2026, 1, 2), when, Decimal(1), proceeds, basis)
    sales = [sold(2, "VTI", date(2026, 12, 1), 900, 1_000),       # 30 days before: blocks (another account, same owner)
             sold(2, "BND", date(2026, 11, 30), 900, 1_000),      # 31 days before: too old
             sold(1, "TIP", date(2026, 12, 20), 1_100, 1_000),    # a gain: no wash sale to avoid
             sold(3, "TIP", date(2026, 12, 20), 900, 1_000),      # a loss of another owner
             sold(1, "VTI", date(2026, 12, 10), 950, 1_000)]      # the latest loss sale of VTI is named
    owners = {1: "fam", 2: "fam", 3: "bob"}
    [a, m] = with_recent_losses([state([]), AccountState(4, "m1-account", 0, PIE, M1, (), (), None)],
                                {**owners, 4: "fam"}, sales, day)
    assert a.blocked == (("VTI", date(2026, 12, 10)),)
    assert m.blocked == ()                                          # its rules do not avoid wash sales
