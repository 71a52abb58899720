"""One suite, both adapters: the window runner must not be able to tell them apart."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import pytest

from adapters.broker.port import Broker, OrderNotFound, OrderRejected, OrderRequest


def test_market_day_and_clock(broker):
    assert isinstance(broker, Broker)
    c = broker.clock()
    assert c.now.tzinfo is not None and c.is_open
    assert c.next_close.time() == time(16, 0)
    day = broker.market_day(date(2026, 11, 24))
    assert (day.open.hour, day.open.minute, day.close.hour) == (9, 30, 16)
    assert day.open.utcoffset().total_seconds() == -5 * 3600
    assert broker.market_day(date(2026, 11, 26)) is None            # Thanksgiving
    assert broker.market_day(date(2026, 11, 27)).close.time() == time(13, 0)   # early close


def test_prices_and_assets(broker):
    prices = broker.latest_prices(["AAPL", "VTI"])
    assert prices == {"AAPL": Decimal("172.78"), "VTI": Decimal("301.12")}
    assets = broker.assets(["AAPL", "VTI"])
    assert all(a.tradable and a.fractionable for a in assets.values())


def test_notional_buy_fills(broker):
    placed = broker.submit(OrderRequest("w1-AAPL-buy", "AAPL", "buy", notional=Decimal("500.00")))
    assert placed.client_order_id == "w1-AAPL-buy" and placed.notional == Decimal("500")
    assert placed.status in ("accepted", "new") and not placed.terminal
    done = broker.wait(["w1-AAPL-buy"], timeout=5)["w1-AAPL-buy"]
    assert done.status == "filled" and done.terminal
    assert done.filled_qty == Decimal("2.893853455") and done.filled_avg_price == Decimal("172.78")
    assert done.filled_notional == Decimal("500.00")


def test_duplicate_client_order_id_is_one_order(broker):
    order = OrderRequest("w2-AAPL-buy", "AAPL", "buy", notional=Decimal("25.00"))
    first = broker.submit(order)
    again = broker.submit(order)
    assert again.broker_id == first.broker_id and again.client_order_id == "w2-AAPL-buy"


def test_insufficient_buying_power_is_rejected(broker):
    with pytest.raises(OrderRejected, match="insufficient buying power") as e:
        broker.submit(OrderRequest("w9-AAPL-buy", "AAPL", "buy", notional=Decimal("1000000.00")))
    assert e.value.symbol == "AAPL" and e.value.client_order_id == "w9-AAPL-buy"


def test_quantity_sell_of_a_whole_position(broker):
    held = broker.positions()["AAPL"].qty
    assert held == Decimal("5")
    broker.submit(OrderRequest("w3-AAPL-sell", "AAPL", "sell", qty=held))
    done = broker.wait(["w3-AAPL-sell"], timeout=5)["w3-AAPL-sell"]
    assert done.status == "filled" and done.filled_qty == held


def test_notional_sell(broker, request):
    if broker.name == "simulated":   # the cassette's position is priced at 120.00
        broker._fixed_prices["AAPL"] = Decimal("120.0")
    broker.submit(OrderRequest("w4-AAPL-sell", "AAPL", "sell", notional=Decimal("100.00")))
    done = broker.wait(["w4-AAPL-sell"], timeout=5)["w4-AAPL-sell"]
    assert done.status == "filled" and done.filled_qty == Decimal("0.833333333")
    assert done.filled_notional == Decimal("100.00")


def test_unknown_order_is_not_found(broker):
    with pytest.raises(OrderNotFound):
        broker.order("nope")


def test_positions_and_balance(broker):
    pos = broker.positions()
    assert pos["AAPL"].qty == Decimal("5") and isinstance(pos["AAPL"].market_value, Decimal)
    bal = broker.balance()
    assert all(isinstance(x, Decimal) and x > 0 for x in (bal.cash, bal.buying_power, bal.equity))


def test_not_fractionable_trades_whole_shares(broker):
    placed = broker.submit(OrderRequest("w5-BRK.B-buy", "BRK.B", "buy", notional=Decimal("1000.00")))
    assert placed.qty == Decimal("2") and placed.notional is None
    assert "not fractionable: 2 whole shares, $39.00 left as cash" in placed.note


def test_orders_below_the_minimum_are_never_sent(broker):
    with pytest.raises(OrderRejected, match="below the \\$1 minimum"):
        broker.submit(OrderRequest("w10-AAPL-buy", "AAPL", "buy", notional=Decimal("0.99")))
