"""The reconciliation core: each break gets its likely cause, and only an unexplained one
above the tolerance makes trading wait. Pure values in, pure values out."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from hypothesis import given, settings, strategies as st

from engine.core.corporate_actions import ActionKind, CorporateAction
from engine.core.orders import CashActivity, OrderState
from engine.core.reconcile import CASH, Accepted, Cause, LedgerSide, Tolerance, acceptable, reconcile

DAY = date(2026, 11, 24)


def side(accounts=None, house=None, cash=100_000, house_cash=0, owed=0) -> LedgerSide:
    return LedgerSide({k: D(v) for k, v in (accounts or {}).items()}, {k: D(v) for k, v in (house or {}).items()},
                      cash, house_cash, owed)


def order(coid: str, symbol: str, side_: str, qty: str, price: str) -> OrderState:
    return OrderState(coid, "b-" + coid, symbol, side_, "filled", None, D(qty), D(qty), D(price))


def line(rec, symbol):
    return next(x for x in rec.lines if x.symbol == symbol)


def test_agreeing_sides_have_no_break_and_list_every_symbol():
    rec = reconcile(side({"AAA": "10.5"}, {"AAA": "0.000000001", "BBB": "1"}, 100_000, 2_50),
                    {"AAA": D("10.500000001"), "BBB": D(1)}, 100_250)
    assert [x.symbol for x in rec.lines] == ["AAA", "BBB", CASH]
    assert rec.breaks == () and rec.waits == ()
    assert rec.to_json()["agrees"] is True


def test_a_forward_split_the_broker_applied_is_an_action_not_applied_yet():
    split = CorporateAction("ca-1", ActionKind.FORWARD_SPLIT, "VTI", DAY, old_rate=D(1), new_rate=D(2))
    rec = reconcile(side({"VTI": "20.684382769"}), {"VTI": D("41.368765538")}, 100_000, actions=[split])
    x = line(rec, "VTI")
    assert x.cause == Cause.ACTION and not x.waits and "ca-1" in x.detail and "broker applied" in x.detail
    assert x.difference == D("20.684382769")


def test_a_reverse_split_the_ledger_applied_and_the_broker_has_not():
    rs = CorporateAction("ca-2", ActionKind.REVERSE_SPLIT, "XYZ", DAY, old_rate=D(10), new_rate=D(1))
    rec = reconcile(side({"XYZ": "1.5"}), {"XYZ": D(15)}, 100_000, actions=[rs])
    assert line(rec, "XYZ").cause == Cause.ACTION and "the broker has not" in line(rec, "XYZ").detail


def test_a_rename_the_broker_applied_explains_both_symbols():
    ren = CorporateAction("ca-3", ActionKind.NAME_CHANGE, "SQ", DAY, new_symbol="XYZ", new_rate=D(1))
    rec = reconcile(side({"SQ": "3"}), {"XYZ": D(3)}, 100_000, actions=[ren])
    assert line(rec, "SQ").cause == Cause.ACTION and line(rec, "XYZ").cause == Cause.ACTION
    assert rec.waits == ()


def test_a_ratio_that_is_not_the_actions_rate_stays_unexplained_and_waits():
    split = CorporateAction("ca-1", ActionKind.FORWARD_SPLIT, "VTI", DAY, old_rate=D(1), new_rate=D(2))
    rec = reconcile(side({"VTI": "20"}), {"VTI": D(30)}, 100_000, actions=[split])
    assert line(rec, "VTI").cause == Cause.UNEXPLAINED and line(rec, "VTI").waits


def test_an_order_outside_pies_explains_shares_and_cash():
    o = order("manual-1", "AAA", "buy", "2", "100")
    rec = reconcile(side({"AAA": "5"}), {"AAA": D(7)}, 100_000 - 20_000, outside=[o])
    assert line(rec, "AAA").cause == Cause.OUTSIDE_ORDER and "manual-1" in line(rec, "AAA").detail
    assert line(rec, CASH).cause == Cause.OUTSIDE_ORDER and line(rec, CASH).difference == D("-200.00")
    assert rec.waits == ()


def test_a_dividend_not_collected_yet_explains_the_cash():
    div = CashActivity("DIV-1", "dividend", DAY, "AAA", D("12.34"))
    rec = reconcile(side({"AAA": "5"}), {"AAA": D(5)}, 100_000 + 1234, dividends=[div])
    assert line(rec, CASH).cause == Cause.DIVIDEND and not rec.waits


def test_a_dividend_and_an_outside_order_together_explain_the_cash():
    div = CashActivity("DIV-1", "dividend", DAY, "AAA", D("12.34"))
    o = order("manual-1", "BBB", "sell", "1", "50")
    rec = reconcile(side({"AAA": "5", "BBB": "1"}), {"AAA": D(5)}, 100_000 + 1234 + 5000, dividends=[div],
                    outside=[o])
    assert line(rec, CASH).cause in (Cause.DIVIDEND, Cause.OUTSIDE_ORDER)
    assert "DIV" in line(rec, CASH).detail or "AAA" in line(rec, CASH).detail
    assert not rec.waits


def test_an_unexplained_break_waits_only_above_the_tolerance():
    tol = Tolerance(D("0.01"), 100)
    small = reconcile(side({"AAA": "5"}), {"AAA": D("5.01")}, 100_050, tolerance=tol)
    assert line(small, "AAA").cause == Cause.UNEXPLAINED and not line(small, "AAA").waits
    assert line(small, CASH).cause == Cause.UNEXPLAINED and not line(small, CASH).waits
    big = reconcile(side({"AAA": "5"}), {"AAA": D("5.02")}, 100_101, tolerance=tol)
    assert line(big, "AAA").waits and line(big, CASH).waits
    assert acceptable(big) == [("AAA", D("0.02")), (CASH, D("1.01"))]


def test_an_acceptance_covers_exactly_its_break():
    acc = [Accepted(7, "AAA", D("0.5"), "checked with the broker")]
    same = reconcile(side({"AAA": "5"}), {"AAA": D("5.5")}, 100_000, accepted=acc)
    assert line(same, "AAA").cause == Cause.ACCEPTED and not same.waits and "#7" in line(same, "AAA").detail
    moved = reconcile(side({"AAA": "5"}), {"AAA": D("5.6")}, 100_000, accepted=acc)
    assert line(moved, "AAA").cause == Cause.UNEXPLAINED and moved.waits


def test_pies_own_orders_of_a_window_not_closed_are_unallocated_not_outside():
    o = order("pies-20261124-open-w3-AAA-buy", "AAA", "buy", "1", "100")
    rec = reconcile(side({"AAA": "5"}), {"AAA": D(6)}, 100_000 - 10_000, unallocated=[o])
    assert line(rec, "AAA").cause == Cause.UNALLOCATED and line(rec, CASH).cause == Cause.UNALLOCATED


@settings(max_examples=200, deadline=None)
@given(shares=st.decimals(min_value=D("0.000000001"), max_value=D(100000), places=9),
       rate=st.sampled_from([(1, 2), (1, 3), (1, 10), (2, 3), (10, 1), (20, 1), (3, 2)]),
       orders=st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 10**6)), max_size=3))
def test_any_split_rate_is_recognised_and_the_verdict_is_deterministic(shares, rate, orders):
    old, new = rate
    kind = ActionKind.FORWARD_SPLIT if new > old else ActionKind.REVERSE_SPLIT
    a = CorporateAction("ca", kind, "S", DAY, old_rate=D(old), new_rate=D(new))
    after = (shares * new / old).quantize(D("0.000000001"), rounding="ROUND_DOWN")
    if after == shares:
        return
    rec = reconcile(side({"S": str(shares)}), {"S": after}, 100_000, actions=[a])
    assert line(rec, "S").cause == Cause.ACTION and not rec.waits
    # Unrelated outside orders on another symbol change nothing about S, in any order.
    outs = [order(f"m{i}", "T", s, str(q), "1") for i, (s, q) in enumerate(orders)]
    again = reconcile(side({"S": str(shares)}), {"S": after}, 100_000, actions=[a], outside=outs[::-1])
    assert line(again, "S") == line(rec, "S")


def test_an_unreported_split_is_named_on_the_waiting_line():
    from engine.core.reconcile import suspected_split
    rec = reconcile(side({"VTI": "20.684382769"}, {"VTI": "0.000000003"}), {"VTI": D("41.368765544")}, 100_000)
    vti = line(rec, "VTI")
    assert vti.cause == Cause.UNEXPLAINED and vti.waits
    assert vti.detail.startswith("VTI: broker holds 2.000\u00d7 the ledger's shares: a 2-for-1 split pies has not "
                                 "heard of?; no action")
    # Each account rounded down to 9 decimals: still recognised; reverse and 3-for-2 too.
    assert "1-for-10 reverse split" in suspected_split("BND", D("36.165793103"), D("3.616579309"))
    assert "3-for-2 split" in suspected_split("X", D("100"), D("150.0000004"))
    assert "10-for-1 split" in suspected_split("NVDA", D("3.5"), D("35"))
    # Not a simple ratio, or nothing on one side: no suspicion.
    assert suspected_split("X", D("100"), D("100.5")) is None
    assert suspected_split("X", D("0"), D("5")) is None and suspected_split("X", D("5"), D("0")) is None
    outside = reconcile(side({"VTI": "10"}), {"VTI": D("10.5")}, 100_000)
    assert "pies has not heard of" not in line(outside, "VTI").detail


def test_a_stock_dividend_the_broker_applied_is_explained_at_its_rate():
    div = CorporateAction("sd", ActionKind.STOCK_DIVIDEND, "MSBC", DAY, old_rate=D(1), new_rate=D("1.05"))
    rec = reconcile(side({"MSBC": "100"}), {"MSBC": D("105")}, 100_000, actions=[div])
    assert line(rec, "MSBC").cause == Cause.ACTION and not rec.waits
