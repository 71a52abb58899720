"""A broker that does not apply corporate actions (Alpaca paper): the ledger applies each
action alone and the standing adjustment makes the broker's reported side comparable."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings, strategies as st

from engine.core.broker_view import BrokerAdjustment, not_applied, seen, total
from engine.core.corporate_actions import ActionKind, CorporateAction
from engine.core.corporate_moves import Book, Held, apply_action, broker_after
from engine.core.reconcile import LedgerSide, reconcile

D = date(2026, 3, 3)
SPLIT = CorporateAction("fs", ActionKind.FORWARD_SPLIT, "VTI", D, old_rate=Decimal(1), new_rate=Decimal(2))
REVERSE = CorporateAction("rs", ActionKind.REVERSE_SPLIT, "BND", D, old_rate=Decimal(10), new_rate=Decimal(1))


def test_a_split_the_broker_does_not_apply_leaves_the_shares_it_should_have_received():
    adj = not_applied(SPLIT, {"VTI": Decimal("10.5"), "BND": Decimal(3)})
    assert adj == BrokerAdjustment({"VTI": Decimal("10.5")}, 0)
    # The broker still reports 10.5; it fills 4 more at the split price (post-split shares).
    assert seen({"VTI": Decimal("14.5"), "BND": Decimal(3)}, 100, adj) == ({"VTI": Decimal("25.0"),
                                                                            "BND": Decimal(3)}, 100)


def test_a_reverse_split_and_a_cash_merger_adjust_down_and_add_cash():
    adj = not_applied(REVERSE, {"BND": Decimal("25")})
    assert adj.shares == {"BND": Decimal("-22.5")}
    merger = CorporateAction("cm", ActionKind.CASH_MERGER, "CCC", D, cash_rate=Decimal("41.27"))
    cash = not_applied(merger, {"CCC": Decimal("3")})
    assert cash == BrokerAdjustment({"CCC": Decimal(-3)}, 12381)
    both = total([adj, cash])
    assert both.to_json() == {"shares": {"BND": "-22.500000000", "CCC": "-3"}, "cents": 12381}
    assert BrokerAdjustment.of_json(both.to_json()) == both
    # The position the broker still reports disappears from the view; cash arrives.
    assert seen({"BND": Decimal(25), "CCC": Decimal(3)}, 0, both) == ({"BND": Decimal("2.5")}, 12381)


def test_a_rename_moves_the_shares_to_the_new_symbol():
    rename = CorporateAction("nc", ActionKind.NAME_CHANGE, "SQ", D, new_symbol="XYZ", new_rate=Decimal(1))
    adj = not_applied(rename, {"SQ": Decimal(7)})
    assert seen({"SQ": Decimal(7)}, 0, adj) == ({"XYZ": Decimal(7)}, 0)


shares = st.decimals(min_value=Decimal("0.000000001"), max_value=Decimal("5000"), places=9)
ratios = st.sampled_from([(1, 2), (1, 3), (2, 1), (10, 1), (1, 10), (3, 7)])


@settings(max_examples=200, deadline=None)
@given(st.lists(shares, min_size=1, max_size=8), ratios, st.lists(shares, max_size=5))
def test_conservation_holds_against_the_adjusted_broker_through_a_split_and_later_fills(held, ratio, fills):
    """Accounts + house = the broker as seen, before the action, after it (the broker not
    applying it), and after fills in post-split shares on both sides."""
    old, new = ratio
    a = CorporateAction("x", ActionKind.FORWARD_SPLIT if new > old else ActionKind.REVERSE_SPLIT, "AAA", D,
                        old_rate=Decimal(old), new_rate=Decimal(new))
    book = Book(0, tuple(Held(i + 1, "AAA", "AAA", q) for i, q in enumerate(held)))
    reported = {"AAA": sum(held, Decimal(0))}               # the broker, which never applies it
    after, _ = apply_action(book, a)
    adj = not_applied(a, reported)
    ledger = sum((h.shares for h in after.holdings), Decimal(0))
    assert seen(reported, 0, adj)[0].get("AAA", Decimal(0)) == ledger == broker_after(a, reported, 0)[0].get(
        "AAA", Decimal(0))
    bought = sum(fills, Decimal(0))
    reported["AAA"] += bought
    side = LedgerSide({"AAA": ledger - sum((h.shares for h in after.holdings if h.account_id == 0), Decimal(0))
                       + bought}, {"AAA": sum((h.shares for h in after.holdings if h.account_id == 0), Decimal(0))},
                      0, 0, adjustment=adj)
    rec = reconcile(side, reported, 0)
    assert not rec.breaks, rec.to_json()


def test_reconciliation_shows_the_adjustment_and_agrees():
    adj = BrokerAdjustment({"VTI": Decimal(10)}, 0)
    side = LedgerSide({"VTI": Decimal(20)}, {}, 500, 0, adjustment=adj)
    rec = reconcile(side, {"VTI": Decimal(10)}, 500)
    vti = rec.lines[0]
    assert (vti.broker, vti.adjusted, vti.cause) == (Decimal(20), Decimal(10), None)
    assert rec.to_json()["agrees"] and rec.to_json()["lines"][0]["adjusted"] == "10"
    # Without the adjustment the same figures break.
    assert reconcile(LedgerSide({"VTI": Decimal(20)}, {}, 500, 0), {"VTI": Decimal(10)}, 500).breaks
