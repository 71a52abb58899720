"""One whole trading window through the Alpaca adapter, replayed from a cassette: two
accounts' deposits become two notional buys, filled, allocated, and the ledger agrees
with the positions and cash Alpaca reports. (The cassette begins with the positions and
account the window's reconciliation reads before collecting: none, and the house's $10,000.)"""

from __future__ import annotations

from datetime import date
from decimal import Decimal


from adapters.ledger.store import Ledger
from conftest_helpers import CASSETTES, SENT, alpaca
from engine.shell.window import WindowOptions, WindowRunner

import vcr
from engine.shell import policies

# The activities query carries the date of the previous window, which depends on when the
# test runs: match on the path, in order, and check the queries through the spy instead.
by_path = vcr.VCR(cassette_library_dir=str(CASSETTES), record_mode="none",
                  match_on=["method", "scheme", "host", "path"])


def test_one_window_on_alpaca(db_url, tmp_path):
    (tmp_path / "tech.pie").write_text('pie "Tech" { AAPL 50% MSFT 50% }\n')
    led = Ledger(db_url)
    led.ensure_house("alpaca", Decimal("10000.00"), {})
    for name, amount in (("alice", "1000"), ("bob", "500.50")):
        policies.add_account(led, name, "Tech", tmp_path / "tech.pie", broker="alpaca")
        led.deposit(name, amount)
    SENT.clear()
    with by_path.use_cassette("window_one_day.yaml", allow_playback_repeats=False) as cassette:
        report = WindowRunner(led, alpaca(), "alpaca", WindowOptions(settle_timeout=5)).run(date(2026, 11, 24))
        assert cassette.all_played
    assert report["problems"] == []
    assert [(o["symbol"], o["status"], o["notional"]) for o in report["orders"]] == \
        [("AAPL", "filled", "750.25"), ("MSFT", "filled", "750.25")]
    posts = [body for method, _, body in SENT if method.upper() == "POST"]
    assert [(p["symbol"], p["notional"], p["client_order_id"]) for p in posts] == \
        [("AAPL", "750.25", "pies-20261124-open-w1-AAPL-buy"), ("MSFT", "750.25", "pies-20261124-open-w1-MSFT-buy")]
    # Fills are read with one list call per poll, never one request per order.
    gets = [url for method, url, _ in SENT if method.upper() == "GET"]
    assert not any("by_client_order_id" in url for url in gets)
    assert len([u for u in gets if u.split("?")[0].endswith("/v2/orders")]) == 1
    alice = led.holdings("alice")
    assert alice["AAPL"] == ("AAPL", Decimal("2.893853454")) and alice["MSFT"] == ("MSFT", Decimal("1.204819276"))
    assert next(a for a in led.accounts() if a.name == "alice").cash == Decimal("0.00")
    assert led.house("alpaca").cash == Decimal("8499.50")
    led.dispose()
