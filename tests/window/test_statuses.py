"""Alpaca's order statuses through the real window, on the simulated broker's `fates`:
an order rejected or canceled by the venue after acceptance, one never routed
(pending_new), one expired or done for the day after a partial fill, one replaced by
another order; and a symbol the day's asset list says is inactive or not tradable, which is
not ordered and says why. After every window the ledger agrees with the broker."""

from __future__ import annotations

from decimal import Decimal

import pytest

from test_faults import DAY1, DAY2, World


@pytest.fixture
def world(db_url, tmp_path):
    w = World(tmp_path / "w", db_url)
    yield w
    w.led.dispose()


def by_symbol(report: dict) -> dict[str, dict]:
    return {o["symbol"]: o for o in report["orders"]}


@pytest.mark.parametrize("fate", ["rejected", "canceled", "pending_new"])
def test_an_order_that_ends_without_a_fill_leaves_its_cash_with_the_account(world, fate):
    world.add("a", "Two", "1000")
    report = world.run(DAY1, world.broker_with(fates={"AAA": fate}))
    assert report["problems"] == [] and world.agrees() == []
    orders = by_symbol(report)
    # pending_new is never routed: still open at the settle bound, so pies cancels it.
    assert orders["AAA"]["status"] == ("canceled" if fate == "pending_new" else fate)
    assert Decimal(orders["AAA"]["filled_qty"]) == 0 and orders["BBB"]["status"] == "filled"
    assert world.held("a") == {"BBB": Decimal("10")} and world.cash("a") == Decimal("500.00")
    assert world.run(DAY2, world.broker_with())["problems"] == [] and world.agrees() == []   # and after


@pytest.mark.parametrize("fate", ["expired", "done_for_day"])
def test_an_order_that_ends_after_a_partial_fill_keeps_the_part(world, fate):
    world.add("a", "Two", "1000")
    report = world.run(DAY1, world.broker_with(fates={"AAA": fate}, partial={"AAA": Decimal("0.5")}))
    assert report["problems"] == [] and world.agrees() == []
    aaa = by_symbol(report)["AAA"]
    assert aaa["status"] == fate and Decimal(aaa["filled_qty"]) == Decimal("2.5")
    assert world.held("a") == {"AAA": Decimal("2.5"), "BBB": Decimal("10")}
    assert world.cash("a") == Decimal("250.00")


def test_a_replaced_order_is_followed_to_its_replacement(world):
    world.add("a", "Two", "1000")
    report = world.run(DAY1, world.broker_with(fates={"AAA": "replaced"}))
    assert report["problems"] == [] and world.agrees() == []
    aaa = by_symbol(report)["AAA"]
    assert aaa["status"] == "filled" and Decimal(aaa["filled_qty"]) == Decimal("5")
    assert "replaced by broker order sim-" in aaa["note"]
    assert world.held("a") == {"AAA": Decimal("5"), "BBB": Decimal("10")} and world.cash("a") == 0
    # The broker has the replaced order and its replacement; pies one order.
    statuses = sorted(r["status"] for r in world.broker._state["orders"].values() if r["symbol"] == "AAA")
    assert statuses == ["filled", "replaced"]


def test_a_replacement_still_open_at_the_bound_is_the_one_cancelled(world):
    world.add("a", "Two", "1000")
    report = world.run(DAY1, world.broker_with(fates={"AAA": "replaced"}, partial={"AAA": Decimal("0.5")}))
    assert report["problems"] == [] and world.agrees() == []
    aaa = by_symbol(report)["AAA"]
    assert aaa["status"] == "canceled" and Decimal(aaa["filled_qty"]) == Decimal("2.5")
    recs = {r["status"] for r in world.broker._state["orders"].values() if r["symbol"] == "AAA"}
    assert recs == {"replaced", "canceled"}
    assert world.held("a") == {"AAA": Decimal("2.5"), "BBB": Decimal("10")}


@pytest.mark.parametrize("fault,why", [("inactive", "inactive at the simulated broker"),
                                       ("not_tradable", "not tradable at the simulated broker")])
def test_a_symbol_the_asset_list_refuses_is_not_ordered_and_says_why(world, fault, why):
    world.add("a", "Two", "1000")
    broker = world.broker_with(**{fault: frozenset({"AAA"})})
    report = world.run(DAY1, broker)
    assert report["problems"] == [] and world.agrees() == []
    aaa = by_symbol(report)["AAA"]
    assert aaa["status"] == "skipped" and aaa["note"] == f"AAA is not ordered: {why}"
    assert broker.calls == 1                                  # only BBB reached the broker
    assert world.held("a") == {"BBB": Decimal("10")} and world.cash("a") == Decimal("500.00")
