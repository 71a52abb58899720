"""The Alpaca adapter on cassettes: what the contract suite cannot show, namely alpaca-py's
unsafe defaults overridden (timeouts, retries, error bodies) and Alpaca's own failures."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.broker.alpaca import AlpacaBroker, AlpacaConfig
from adapters.broker.port import OrderRequest, RetryLater, StopTrading
from conftest_helpers import FAKE_ENV, SENT, alpaca, replay


def cassette(name: str):
    SENT.clear()
    return replay.use_cassette(f"{name}.yaml", allow_playback_repeats=False)


def posts() -> list[dict]:
    return [body for method, _, body in SENT if method.upper() == "POST"]


def test_requests_have_a_timeout_and_alpaca_py_retries_are_off():
    b = AlpacaBroker(AlpacaConfig(timeout=7.5), env=FAKE_ENV)
    for client in (b.trading, b.data):
        assert client._retry == 0
        assert client._session.request.keywords["timeout"] == 7.5


def test_orders_go_out_as_notional_market_day_with_the_client_id():
    # The amount leaves as the exact decimal string, never through a float.
    with cassette("contract_notional_buy_fills"):
        alpaca().submit(OrderRequest("w1-AAPL-buy", "AAPL", "buy", notional=Decimal("500.00")))
    assert posts() == [{"symbol": "AAPL", "notional": "500.00", "side": "buy", "type": "market",
                    "time_in_force": "day", "client_order_id": "w1-AAPL-buy"}]


def test_a_quantity_leaves_as_its_exact_nine_decimals():
    with cassette("contract_quantity_sell_of_a_whole_position"):
        alpaca().submit(OrderRequest("w3-AAPL-sell", "AAPL", "sell", qty=Decimal("0.123456789")))
    assert [(p["qty"], "notional" in p) for p in posts()] == [("0.123456789", False)]


def test_429_plain_text_then_json_then_success():
    with cassette("rate_limited_read_then_success") as c:
        bal = alpaca().balance()
        assert c.all_played
    assert bal.cash == Decimal("122086.5")


def test_429_on_submit_looks_the_order_up_before_sending_again():
    with cassette("rate_limited_submit_looks_up_before_resending") as c:
        s = alpaca().submit(OrderRequest("w6-AAPL-buy", "AAPL", "buy", notional=Decimal("50.00")))
        assert c.all_played
    assert s.status == "accepted"
    assert [p["client_order_id"] for p in posts()] == ["w6-AAPL-buy", "w6-AAPL-buy"]


def test_a_timeout_after_submission_finds_the_placed_order_instead_of_placing_another():
    with cassette("timeout_after_submit_finds_the_order") as c:
        s = alpaca().submit(OrderRequest("w7-AAPL-buy", "AAPL", "buy", notional=Decimal("50.00")))
        assert c.all_played
        assert len(posts()) == 1
    assert s.client_order_id == "w7-AAPL-buy"


def test_server_errors_are_retried_a_bounded_number_of_times():
    with cassette("server_errors_exhausted") as c:
        with pytest.raises(RetryLater, match="503"):
            alpaca(retries=4).clock()
        assert c.play_count == 5


def test_bad_credentials_stop_trading():
    with cassette("bad_credentials"):
        with pytest.raises(StopTrading, match="credentials"):
            alpaca().balance()


def test_partial_fill_then_expired_is_terminal_with_the_filled_part():
    with cassette("partial_fill_then_expired"):
        b = alpaca()
        b.submit(OrderRequest("w8-AAPL-buy", "AAPL", "buy", notional=Decimal("1000.00")))
        s = b.wait(["w8-AAPL-buy"], timeout=5)["w8-AAPL-buy"]
    assert s.status == "expired" and s.terminal
    assert s.filled_qty == Decimal("2.5") and s.filled_notional == Decimal("431.95")


def test_cancel_keeps_the_filled_part():
    with cassette("cancel_a_partial_fill") as c:
        s = alpaca().cancel("w9-AAPL-buy")
        assert c.all_played
    assert s.status == "canceled" and s.filled_qty == Decimal("1")


def test_dividends_come_from_the_activities_endpoint_as_exact_amounts():
    with cassette("dividends"):
        divs = alpaca().cash_activities(datetime(2026, 11, 1, 12, tzinfo=timezone.utc))
    assert [(d.kind, d.symbol, d.amount, d.day.isoformat()) for d in divs] == \
        [("dividend", "AAPL", Decimal("4.51"), "2026-11-15")]


def test_order_listing_follows_pages(monkeypatch):
    monkeypatch.setattr(AlpacaBroker, "ORDER_PAGE", 2)
    with cassette("orders_paginated") as c:
        orders = alpaca().orders_since(datetime(2026, 11, 24, 14, tzinfo=timezone.utc))
        assert c.all_played
    assert [o.client_order_id for o in orders] == ["p0-AAPL-buy", "p1-AAPL-buy", "p2-AAPL-buy"]


def test_live_trading_is_refused_unless_allowed():
    with capture_logs() as logs, pytest.raises(StopTrading, match="live trading is not allowed"):
        AlpacaBroker(AlpacaConfig(paper=False), env=FAKE_ENV)
    assert logs[0]["event"] == "live trading refused" and logs[0]["log_level"] == "error"
    live = AlpacaBroker(AlpacaConfig(paper=False, allow_live=True), env=FAKE_ENV)
    assert live.trading._base_url.startswith("https://api.alpaca.markets")


def test_missing_keys_name_the_variables_not_the_values():
    with pytest.raises(StopTrading, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        AlpacaBroker(AlpacaConfig(), env={})


def test_no_cassette_contains_a_key():
    secrets = [v for v in FAKE_ENV.values()]
    for path in Path(__file__).parent.joinpath("cassettes").glob("*.yaml"):
        text = path.read_text()
        for needle in [*secrets, "APCA-API-KEY-ID", "APCA-API-SECRET-KEY", "Authorization"]:
            assert needle.lower() not in text.lower(), f"{path.name} contains {needle}"


# --- Alpaca's statuses, fills by list, the asset list ---------------------------------------

STATUS_IDS = ["s-ACC-buy", "s-PNEW-buy", "s-PART-buy", "s-DFD-buy", "s-EXP-sell", "s-CXL-buy", "s-REJ-buy",
              "s-REPL-buy"]


def on_day(b: AlpacaBroker, day=None) -> AlpacaBroker:
    from datetime import date
    b._today = lambda: day or date(2026, 11, 24)
    return b


def test_every_status_is_read_from_one_list_call_per_poll_until_all_are_terminal():
    with cassette("statuses_in_one_poll") as c:
        states = on_day(alpaca()).wait(STATUS_IDS, timeout=30)
        assert c.all_played and c.play_count == 3               # three polls for eight orders
    gets = [u for m, u, _ in SENT if m.upper() == "GET"]
    assert len(gets) == 3 and all(u.split("?")[0].endswith("/v2/orders") for u in gets)
    got = {c: (s.status, s.filled_qty, s.filled_notional) for c, s in states.items()}
    assert got == {
        "s-ACC-buy": ("filled", Decimal("0.578770691"), Decimal("100.00")),         # accepted, then filled
        "s-PNEW-buy": ("filled", Decimal("0.332093517"), Decimal("100.00")),        # pending_new, new, filled
        "s-PART-buy": ("filled", Decimal("5.787706910"), Decimal("1000.00")),       # partially_filled, filled
        "s-DFD-buy": ("done_for_day", Decimal("1"), Decimal("301.12")),             # no more fills today
        "s-EXP-sell": ("expired", Decimal("1.5"), Decimal("259.17")),               # the filled part kept
        "s-CXL-buy": ("canceled", Decimal("0"), Decimal("0.00")),                   # canceled at Alpaca
        "s-REJ-buy": ("rejected", Decimal("0"), Decimal("0.00")),                   # rejected after acceptance
        "s-REPL-buy": ("filled", Decimal("0.240963855"), Decimal("100.00")),        # followed to its replacement
    }
    assert all(s.terminal for s in states.values())
    repl = states["s-REPL-buy"]
    assert repl.client_order_id == "s-REPL-buy" and "replaced by broker order" in repl.note
    assert repl.broker_id == str(uuid.uuid5(uuid.NAMESPACE_URL, "9b4d1f0e-7c1a-4d8e-9a57-6c0f1a2b3c4d"))


def test_a_replaced_order_looked_up_alone_is_followed_by_id():
    with cassette("replaced_order_followed") as c:
        s = alpaca().order("s-REPL-buy")
        assert c.all_played
    assert (s.client_order_id, s.status, s.filled_qty) == ("s-REPL-buy", "filled", Decimal("0.240963855"))


def test_the_asset_list_is_read_once_a_day_and_says_why_a_symbol_cannot_trade():
    from datetime import date
    day = [date(2026, 11, 24)]
    with cassette("assets_once_a_day") as c:
        b = alpaca()
        b._today = lambda: day[0]
        first = b.assets(["AAPL", "BRK.B", "OLDCO", "HALTD", "NOPE"])
        again = b.assets(["VTI"])                                   # the same day: no request
        assert c.play_count == 1
        day[0] = date(2026, 11, 25)
        next_day = b.assets(["VTI"])                                # VTI left the list overnight
        assert c.all_played and c.play_count == 2
    assert [(a.tradable, a.fractionable, a.note) for a in first.values()] == [
        (True, True, ""), (True, False, ""), (False, True, "inactive at Alpaca"),
        (False, True, "not tradable at Alpaca"), (False, False, "not listed at Alpaca")]
    assert again["VTI"].tradable and not next_day["VTI"].tradable and next_day["VTI"].note == "not listed at Alpaca"
