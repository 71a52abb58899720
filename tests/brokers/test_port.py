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
