"""The simulated broker's own behaviour: persistence, prices, calendar, dividends, faults."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.broker.port import OrderRejected, OrderRequest, RetryLater
from adapters.broker.simulated import SimulatedBroker, SimulatedConfig
from conftest_helpers import NOW, NY, simulated


def buy(coid: str, symbol: str = "AAPL", dollars: str = "100.00") -> OrderRequest:
    return OrderRequest(coid, symbol, "buy", notional=Decimal(dollars))


def test_state_survives_a_restart(tmp_path):
    state = tmp_path / "broker.json"
    b = simulated(tmp=tmp_path, state_file=state)
    b.submit(buy("a"))
    filled = b.order("a")
    cash = b.balance().cash
    again = simulated(tmp=tmp_path, state_file=state)
    assert again.order("a") == filled and again.balance().cash == cash
    assert again.submit(buy("a")).broker_id == filled.broker_id and again.calls == 0


def test_notional_buy_costs_the_filled_value_to_the_cent(tmp_path):
    b = simulated(tmp=tmp_path)
    before = b.balance().cash
    b.submit(buy("a", dollars="500.00"))
    s = b.order("a")
    assert b.balance().cash == before - s.filled_notional
    assert b.positions()["AAPL"].qty == Decimal("5") + s.filled_qty


def test_slippage_makes_buys_dearer_and_sells_cheaper(tmp_path):
    b = simulated(tmp=tmp_path, slippage_bp=10)
    b.submit(buy("a"))
    b.submit(OrderRequest("s", "AAPL", "sell", qty=Decimal("1")))
    assert b.order("a").filled_avg_price == Decimal("172.9528")
    assert b.order("s").filled_avg_price == Decimal("172.6072")


def test_random_walk_is_deterministic_per_seed_and_day(tmp_path):
    day = [NOW]
    b1 = SimulatedBroker(SimulatedConfig(seed=3), now=lambda: day[0])
    b2 = SimulatedBroker(SimulatedConfig(seed=3), now=lambda: day[0])
    other = SimulatedBroker(SimulatedConfig(seed=4), now=lambda: day[0])
    p1 = b1.latest_prices(["XYZ"])["XYZ"]
    assert p1 == b2.latest_prices(["XYZ"])["XYZ"] != other.latest_prices(["XYZ"])["XYZ"]
    assert p1 == p1.quantize(Decimal("0.01")) and p1 > 0
    day[0] = NOW + timedelta(days=1)
    p2 = b1.latest_prices(["XYZ"])["XYZ"]
    assert p2 != p1 and abs(p2 - p1) <= p1 * Decimal("0.021")   # at most 2% a day


def test_fill_delay_keeps_orders_open_until_it_passes(tmp_path):
    now = [NOW]
    b = simulated(tmp=tmp_path, fill_delay=60, now=lambda: now[0])
    b.submit(buy("a"))
    assert b.order("a").status == "accepted"
    assert b.wait(["a"], timeout=0)["a"].status == "accepted"   # the bound is respected
    now[0] = NOW + timedelta(seconds=61)
    assert b.order("a").status == "filled"


def test_partial_fill_expires_at_the_close_and_cancel_keeps_the_filled_part(tmp_path):
    now = [NOW]
    b = simulated(tmp=tmp_path, partial={"AAPL": Decimal("0.5")}, now=lambda: now[0])
    b.submit(buy("a", dollars="100.00"))
    b.submit(buy("b", dollars="100.00"))
    s = b.order("a")
    assert s.status == "partially_filled" and not s.terminal
    assert s.filled_qty == Decimal("0.289385345")
    c = b.cancel("b")
    assert c.status == "canceled" and c.filled_qty == Decimal("0.289385345")
    now[0] = datetime(2026, 11, 24, 16, 0, tzinfo=NY)
    assert b.order("a").status == "expired" and b.order("a").filled_qty == s.filled_qty


def test_named_symbols_are_rejected(tmp_path):
    b = simulated(tmp=tmp_path, reject=frozenset({"VTI"}))
    with pytest.raises(OrderRejected, match="VTI"):
        b.submit(buy("a", "VTI"))
    assert b.orders_since(NOW - timedelta(days=1)) == []


def test_selling_more_than_held_is_rejected(tmp_path):
    b = simulated(tmp=tmp_path)
    with pytest.raises(OrderRejected, match="insufficient qty"):
        b.submit(OrderRequest("s", "AAPL", "sell", qty=Decimal("6")))


def test_not_fractionable_below_one_share_is_rejected(tmp_path):
    b = simulated(tmp=tmp_path)
    assert b.assets(["BRK.B"])["BRK.B"].fractionable is False
    with pytest.raises(OrderRejected, match="less than one share"):
        b.submit(buy("a", "BRK.B", "400.00"))


def test_transient_errors_then_success(tmp_path):
    b = simulated(tmp=tmp_path, transient_errors=2)
    with pytest.raises(RetryLater):
        b.clock()
    with pytest.raises(RetryLater):
        b.submit(buy("a"))
    assert b.calls == 0
    assert b.submit(buy("a")).status == "accepted"


def test_a_lost_response_leaves_one_order_that_a_resubmission_finds(tmp_path):
    b = simulated(tmp=tmp_path, lose_responses=1)
    with pytest.raises(RetryLater):
        b.submit(buy("a"))
    assert b.calls == 1
    assert b.submit(buy("a")).client_order_id == "a" and b.calls == 1


def test_dividends_are_paid_monthly_and_reported_as_cash_activities(tmp_path):
    now = [datetime(2026, 11, 13, 10, tzinfo=NY)]
    b = simulated(tmp=tmp_path, dividends={"AAPL": Decimal("0.26")}, now=lambda: now[0])
    cash = b.balance().cash
    assert b.cash_activities(now[0]) == []
    now[0] = datetime(2026, 11, 16, 10, tzinfo=NY)    # the 15th is a Sunday: paid Monday
    acts = b.cash_activities(datetime(2026, 11, 1, tzinfo=NY))
    assert [(a.kind, a.symbol, a.amount, a.day) for a in acts] == [("dividend", "AAPL", Decimal("1.30"),
                                                                     date(2026, 11, 16))]
    assert b.balance().cash == cash + Decimal("1.30")
    now[0] = datetime(2026, 11, 30, 10, tzinfo=NY)
    assert len(b.cash_activities(datetime(2026, 11, 1, tzinfo=NY))) == 1   # once a month


def test_clock_outside_hours_points_at_the_next_session(tmp_path):
    b = simulated(tmp=tmp_path, now=lambda: datetime(2026, 11, 25, 17, 0, tzinfo=NY))
    c = b.clock()
    assert not c.is_open
    assert c.next_open == datetime(2026, 11, 27, 9, 30, tzinfo=NY)      # over Thanksgiving
    assert c.next_close == datetime(2026, 11, 27, 13, 0, tzinfo=NY)     # an early close
