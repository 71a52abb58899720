"""Helpers for the broker tests: a simulated broker at a fixed moment, and the Alpaca
adapter replaying cassettes (record mode `none`: CI never talks to Alpaca)."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import vcr

from adapters.broker.alpaca import AlpacaBroker, AlpacaConfig
from adapters.broker.simulated import SimulatedBroker, SimulatedConfig

NY = ZoneInfo("America/New_York")
CASSETTES = Path(__file__).parent / "cassettes"
NOW = datetime(2026, 11, 24, 10, 5, tzinfo=NY)
FAKE_ENV = {"APCA_API_KEY_ID": "PKTESTKEY0000000000", "APCA_API_SECRET_KEY": "test-secret-never-recorded"}

SENT: list[tuple[str, str, dict | None]] = []   # (method, url, JSON body) the adapter sent, in order


replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "scheme", "host", "path", "query"],
    filter_headers=["APCA-API-KEY-ID", "APCA-API-SECRET-KEY", "Authorization"],
    decode_compressed_response=True,
)


def simulated(**overrides) -> SimulatedBroker:
    prices = overrides.pop("prices", {"AAPL": "172.78", "VTI": "301.12", "BRK.B": "480.5"})
    tmp = overrides.pop("tmp")
    pfile = tmp / "prices.csv"
    pfile.write_text("symbol,price\n" + "".join(f"{s},{p}\n" for s, p in prices.items()))
    now = overrides.pop("now", lambda: NOW)
    cfg = SimulatedConfig(**{
        "prices_file": pfile,
        "holidays": frozenset({date(2026, 11, 26)}),
        "early_closes": {date(2026, 11, 27): time(13, 0)},
        "not_fractionable": frozenset({"BRK.B"}),
        "starting_positions": {"AAPL": Decimal("5")},
        **overrides,
    })
    return SimulatedBroker(cfg, now=now, sleep=lambda s: None)


def alpaca(**overrides) -> AlpacaBroker:
    b = AlpacaBroker(AlpacaConfig(backoff=0.0, **overrides), env=FAKE_ENV, sleep=lambda s: None)
    for client in (b.trading, b.data, b.actions):   # spy on what goes over the wire
        inner = client._session.request

        def spy(method, url, _inner=inner, **kw):
            query = urlencode(kw["params"]) if kw.get("params") else ""
            SENT.append((method, f"{url}?{query}" if query else url, kw.get("json")))
            return _inner(method, url, **kw)
        client._session.request = spy
    return b
