"""The port's shared rules: client order ids and order validation."""

from decimal import Decimal

import pytest

from adapters.broker.port import MAX_CLIENT_ORDER_ID, OrderRequest, client_order_id


def test_client_order_ids_are_stable_and_fit_the_limit():
    assert client_order_id("2026-11-24/main/open", "BRK.B", "buy") == "2026-11-24_main_open-BRK.B-buy"
    long = client_order_id("w" * 200, "AAPL", "sell")
    assert len(long) == MAX_CLIENT_ORDER_ID and long == client_order_id("w" * 200, "AAPL", "sell")
    assert long != client_order_id("w" * 199 + "x", "AAPL", "sell")


@pytest.mark.parametrize("kw", [
    {"notional": Decimal("1.005")}, {"notional": Decimal("0")}, {"qty": Decimal("0.0000000001")},
    {"notional": Decimal("1"), "qty": Decimal("1")}, {},
])
def test_orders_are_exact_and_unambiguous(kw):
    with pytest.raises(ValueError):
        OrderRequest("id", "AAPL", "buy", **kw)


def test_a_replacement_chain_is_one_order_with_every_part_of_its_fill():
    from adapters.broker.port import OrderState, follow_replacements
    D = Decimal
    old = OrderState("w-AAA-buy", "b1", "AAA", "buy", "replaced", D("100.00"), None, D("0.3"), D("100"))
    mid = OrderState("x-2", "b2", "AAA", "buy", "replaced", D("70.00"), None, D("0"), None)
    new = OrderState("x-3", "b3", "AAA", "buy", "filled", D("70.00"), None, D("0.7"), D("100.1"))
    one = follow_replacements([old, mid, new])
    assert (one.client_order_id, one.broker_id, one.status) == ("w-AAA-buy", "b3", "filled")
    assert one.filled_qty == D("1.0") and one.filled_avg_price == D("100.070000000")   # (30 + 70.07) / 1
    assert one.filled_notional == D("100.00")            # 30.00 before, 70.00 after: the parts, exactly
    assert one.terminal and "replaced by broker order b3" in one.note
    # Replaced before any fill: the replacement's numbers as they are.
    clean = follow_replacements([OrderState("w", "b1", "AAA", "buy", "replaced", D("5.00"), None, D(0), None),
                                 OrderState("x", "b2", "AAA", "buy", "partially_filled", D("5.00"), None, D("0.01"),
                                            D("250"))])
    assert (clean.status, clean.filled_qty, clean.filled_notional, clean.terminal) == \
        ("partially_filled", D("0.01"), D("2.50"), False)
    lone = OrderState("w", "b1", "AAA", "buy", "replaced", D("5.00"), None, D(0), None)
    assert follow_replacements([lone]) is lone and lone.terminal       # nothing to follow: closed
