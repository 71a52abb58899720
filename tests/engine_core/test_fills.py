"""Netting and fill allocation conserve shares and cash exactly; the house takes residue."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.fills import NANO, Want, floor9, net, split

prices = st.decimals(min_value=Decimal("0.50"), max_value=Decimal("2000"), places=2)


@st.composite
def wants(draw):
    n = draw(st.integers(1, 8))
    out = []
    for k in range(n):
        c = draw(st.integers(-500_000, 500_000).filter(bool))
        held = draw(st.decimals(min_value=Decimal(0), max_value=Decimal(5000), places=9)) if c < 0 else Decimal(0)
        sell_all = c < 0 and draw(st.booleans())
        out.append(Want(k, c, sell_all, held))
    return out


def run(ws, price, min_order, fill_share):
    # Sellers hold at least what they sell at this price (the planner sells what is held).
    ws = [Want(w.key, w.cents, w.sell_all, max(w.held, Decimal(-w.cents) / 100 / price).quantize(NANO,
                                                                                            rounding="ROUND_CEILING"))
          if w.cents < 0 else w for w in ws]
    n = net("X", ws, min_order, price)
    fill_price = price
    if n.side is None:
        qty, dollars = Decimal(0), 0
    elif n.qty is not None:
        qty = floor9(n.qty * fill_share)
        dollars = int((qty * fill_price * 100).to_integral_value(rounding="ROUND_DOWN"))
    else:
        want_qty = Decimal(n.notional) / 100 / fill_price
        qty = floor9(want_qty * fill_share)
        # A filled notional order moves exactly its notional; a partial one what it filled.
        dollars = n.notional if fill_share == 1 else int((qty * fill_price * 100).to_integral_value(rounding="ROUND_DOWN"))
    return n, split(n, filled_qty=qty, filled_cents=dollars, price=fill_price), qty, dollars


@settings(max_examples=300, deadline=None)
@given(wants(), prices, st.sampled_from([0, 100, 2500]), st.sampled_from([Decimal(1), Decimal("0.5"), Decimal(0)]))
def test_shares_and_cash_are_conserved_exactly(ws, price, min_order, fill_share):
    n, sp, qty, dollars = run(ws, price, min_order, fill_share)
    signed_qty = qty if n.side == "buy" else -qty
    signed_cash = -dollars if n.side == "buy" else dollars
    assert sum((s.shares for s in sp.shares), Decimal(0)) + sp.house_shares == signed_qty
    assert sum(s.cents for s in sp.shares) + signed_cash == sp.house_cents
    by_key = {w.key: w for w in n.wants}
    for s in sp.shares:
        w = by_key[s.key]
        assert s.shares == s.shares.quantize(NANO)
        if w.cents > 0:
            assert 0 <= s.cents <= w.cents and s.shares >= 0
        else:
            assert -s.shares <= w.held and s.cents <= 0
    # Deferral only ever happens below the minimum, and is what was cut.
    cut = sum(c for _, c in n.deferred)
    assert abs(cut) < max(min_order, 1)
    assert sum(w.cents for w in n.wants) + cut == sum(w.cents for w in ws)


@settings(max_examples=200, deadline=None)
@given(wants(), prices)
def test_full_fills_pay_buyers_exactly_and_the_house_residue_is_tiny(ws, price):
    n, sp, qty, dollars = run(ws, price, 0, Decimal(1))
    by_key = {w.key: w for w in n.wants}
    if n.side in ("buy", None) and sp.house_cents == 0:
        for s in sp.shares:
            if by_key[s.key].cents > 0:
                assert s.cents == by_key[s.key].cents
    assert sp.house_shares >= 0


def test_crossing_moves_shares_between_accounts_at_the_price():
    n = net("VTI", [Want("a", 50_000), Want("b", -20_000, False, Decimal(10))], 100)
    assert (n.side, n.notional) == ("buy", 30_000)
    sp = split(n, filled_qty=Decimal("1.2"), filled_cents=30_000, price=Decimal("250"))
    got = {s.key: (s.shares, s.cents) for s in sp.shares}
    assert got == {"b": (Decimal("-0.8"), -20_000), "a": (Decimal("2.0"), 50_000)}
    assert (sp.house_shares, sp.house_cents) == (0, 0)


def test_a_tiny_net_is_deferred_and_the_rest_crosses():
    n = net("VTI", [Want("a", 50_000), Want("b", -49_950, False, Decimal(300))], 100)
    assert n.side is None and n.deferred == (("a", 50),)
    sp = split(n, filled_qty=Decimal(0), filled_cents=0, price=Decimal("250"))
    assert {s.key: s.cents for s in sp.shares} == {"a": 49_950, "b": -49_950}


def test_whole_holdings_sell_by_quantity():
    n = net("VTI", [Want("a", -100, True, Decimal("0.4")), Want("b", -900, True, Decimal("3.6"))], 100)
    assert (n.side, n.qty, n.notional) == ("sell", Decimal("4.0"), None)
    sp = split(n, filled_qty=Decimal("4.0"), filled_cents=100_000, price=Decimal("250"))
    assert {s.key: (s.shares, s.cents) for s in sp.shares} == {"a": (Decimal("-0.4"), -10_000),
                                                              "b": (Decimal("-3.6"), -90_000)}
