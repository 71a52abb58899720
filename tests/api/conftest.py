"""The API's and console's world: two accounts, one closed window, a token per role."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.ledger.access import Access
from adapters.ledger.store import Ledger
from config.settings import load
from engine.shell.api import Limiter, create_app
from cli_helpers import cli_runner
from api_helpers import PRICES

POLICY = 'pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\n'


@pytest.fixture
def world(db_url, tmp_path):
    cli = cli_runner(tmp_path, db_url, POLICY, "50000.00")
    env = cli.env
    cli("account", "add", "alice", "--pie", "Core")
    cli("account", "add", "bob", "--pie", "Core")
    cli("deposit", "alice", "1000")
    cli("window", "run", "--date", "2026-11-24")
    led = Ledger(db_url)
    access = Access(led)
    tokens = {role: access.create(f"{role}-token", role) for role in ("viewer", "operator", "analyst", "admin")}
    revoked = access.create("old", "admin")
    access.revoke("old")
    app = create_app(load(env=env), ledger=led, live_prices=lambda symbols: {s: PRICES[s] for s in symbols},
                     limiter=Limiter())
    client = TestClient(app)
    yield {"cli": cli, "client": client, "tokens": tokens, "revoked": revoked, "led": led, "env": env}
    led.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


