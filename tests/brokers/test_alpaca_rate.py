"""Alpaca allows 200 requests a minute. A whole 600-symbol window through the real runner
and the real adapter, against a fake Alpaca on a fake clock (no sleeping): every request
waits in the adapter's one pacer, and no sliding minute holds more than 200."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from string import ascii_uppercase

from structlog.testing import capture_logs

from adapters.broker.alpaca import AlpacaBroker, AlpacaConfig
from adapters.broker.pacing import Pacer
from adapters.ledger.store import Ledger
from conftest_helpers import FAKE_ENV
from engine.shell import policies
from engine.shell.window import WindowOptions, WindowRunner
from fake_alpaca import FakeAlpaca, FakeClock


def _symbol(i: int) -> str:
    return "Q" + "".join(ascii_uppercase[(i // 26 ** k) % 26] for k in (2, 1, 0))


def fake_alpaca(clock: FakeClock, prices: dict[str, Decimal], cash: Decimal) -> tuple[AlpacaBroker, FakeAlpaca]:
    b = AlpacaBroker(AlpacaConfig(backoff=0.0), env=FAKE_ENV, sleep=clock.sleep, clock=clock,
                     today=lambda: date(2026, 11, 24))
    server = FakeAlpaca(clock, prices, cash)
    for client in (b.trading, b.data, b.actions):
        client._session.mount("https://", server)
    return b, server


def test_a_600_symbol_window_never_sends_more_than_200_requests_in_any_minute(tmp_path):
    symbols = [_symbol(i) for i in range(600)]
    prices = {s: Decimal(10 + i % 90) + Decimal("0.25") for i, s in enumerate(symbols)}
    # 120 pies of 5 symbols at 20%, one account on each: 600 notional buys of $120.
    (tmp_path / "big.pie").write_text("".join(
        f'pie "P{k:03d}" {{ ' + " ".join(f"{s} 20%" for s in symbols[5 * k:5 * k + 5]) + " }\n" for k in range(120)))
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.ensure_house("alpaca", Decimal("100000.00"), {})
    for k in range(120):
        policies.add_account(led, f"a{k:03d}", f"P{k:03d}", tmp_path / "big.pie", broker="alpaca")
        led.deposit(f"a{k:03d}", "600")
    clock = FakeClock()
    broker, server = fake_alpaca(clock, prices, Decimal("100000.00"))
    with capture_logs() as logs:
        report = WindowRunner(led, broker, "alpaca", WindowOptions(settle_timeout=5), sleep=clock.sleep).run(
            date(2026, 11, 24), accounts=False)
    assert report["problems"] == [] and server.unknown == []
    assert len(server.orders) == 600 and all(o["status"] == "filled" for o in server.orders.values())
    n = len(server.times)
    assert n > 600                                         # 600 orders and the reads around them
    assert server.most_in_a_minute() <= 200               # the promise
    assert server.most_in_a_minute() == broker.config.requests_per_minute     # and it used its budget
    assert clock.now >= 60 * (n // broker.config.requests_per_minute)         # so it had to wait, on the fake clock
    # One poll read every fill: two pages of the order list, no request per order.
    assert sum(1 for m, p in server.paths if m == "GET" and p.endswith("/v2/orders")) == 2
    assert not any(p.endswith("by_client_order_id") for _, p in server.paths)
    # The window said beforehand how long its orders would take.
    (said,) = [x for x in logs if x["event"] == "submitting orders"]
    assert said["orders"] == 600 and 2.0 <= said["paced_minutes"] <= 3.2    # (600 - room left) / 190 a minute
    assert any(x["event"] == "rate limit: pacing requests" for x in logs)
    led.dispose()


def test_the_pacer_waits_on_its_clock_and_says_how_long_a_batch_takes():
    clock = FakeClock()
    p = Pacer(200, clock=clock, sleep=clock.sleep)
    assert p.seconds_for(200) == 0.0 and p.seconds_for(3000) == 60 * 2800 / 200     # 3,000 orders: 14 minutes
    stamps = []
    for _ in range(450):
        p.acquire()
        stamps.append(clock.now)
    assert stamps[199] == 0.0 and stamps[200] > 60.0 - 1e-9 and stamps[449] > 120.0
    assert max(sum(1 for t in stamps if s - 60 < t <= s) for s in stamps) == 200
    assert p.requests == 450 and p.waited > 120.0


def test_every_client_of_the_adapter_shares_the_one_pacer():
    clock = FakeClock()
    b, server = fake_alpaca(clock, {"AAPL": Decimal("172.78")}, Decimal("1000.00"))
    b.pacer = Pacer(2, clock=clock, sleep=clock.sleep)
    b.latest_prices(["AAPL"])                 # data API
    b.balance()                               # trading API
    b.corporate_actions(["AAPL"], date(2026, 11, 23), date(2026, 11, 24))     # corporate actions
    assert [round(t) for t in server.times] == [0, 0, 60]
