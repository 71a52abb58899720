"""Every account is valued at its own broker account's prices: the CLI's list, the API's
list, the console's list and its dashboard total agree with `account show`, with two broker
accounts whose windows traded the same symbols at different prices (issue 18)."""

from __future__ import annotations

import re
from decimal import Decimal

from click.testing import CliRunner
from fastapi.testclient import TestClient

from adapters.ledger.access import Access
from adapters.ledger.store import Ledger
from config.settings import load
from engine.shell.api import Limiter, create_app
from engine.shell.cli import main
from api_helpers import auth

POLICY = 'pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\n'


def two_brokers(tmp_path, db_url: str) -> dict[str, str]:
    """Broker accounts paper-a (VTI 250) and paper-b (VTI 500, BND 80, TIP 100)."""
    (tmp_path / "core.pie").write_text(POLICY)
    (tmp_path / "a.csv").write_text("VTI,250\nBND,72.5\nTIP,110\n")
    (tmp_path / "b.csv").write_text("VTI,500\nBND,80\nTIP,100\n")
    broker = '[[brokers]]\nname = "{0}"\nkind = "simulated"\n[brokers.simulated]\nprices_file = "{1}"\n' \
             'starting_cash = "50000.00"\n'
    (tmp_path / "settings.toml").write_text(broker.format("paper-a", tmp_path / "a.csv")
                                            + broker.format("paper-b", tmp_path / "b.csv")
                                            + f'[policies]\nfiles = ["{tmp_path / "core.pie"}"]\n')
    return {"PIES_DATABASE_URL": db_url, "PIES_DATA_DIR": str(tmp_path / "data"),
            "PIES_CONFIG": str(tmp_path / "settings.toml"), "PIES_NOW": "2026-11-24T15:00:00+00:00"}


def test_each_account_is_valued_at_its_own_broker_accounts_prices_everywhere(db_url, tmp_path):
    env = two_brokers(tmp_path, db_url)

    def cli(*args: str) -> str:
        r = CliRunner().invoke(main, list(args), env=env)
        assert r.exit_code == 0, r.output
        return r.output
    import json
    cli("account", "add", "alice", "--pie", "Core", "--broker", "paper-a")
    cli("account", "add", "bob", "--pie", "Core", "--broker", "paper-b")
    cli("deposit", "alice", "1000")
    cli("deposit", "bob", "3000")
    cli("window", "run", "--date", "2026-11-24", "--broker", "paper-a")
    cli("window", "run", "--date", "2026-11-24", "--broker", "paper-b")
    # Each broker account's window bought VTI at its own price, so the wrong broker's prices
    # would value bob's VTI at half and alice's at double.
    (tmp_path / "a.csv").write_text("VTI,260\nBND,73\nTIP,111\n")          # live prices move, differently
    (tmp_path / "b.csv").write_text("VTI,480\nBND,81\nTIP,99\n")
    shown = {n: json.loads(cli("account", "show", n, "--json")) for n in ("alice", "bob")}
    assert shown["alice"]["value"] == "1000.00" and shown["bob"]["value"] == "3000.00"
    listed = {a["account"]: a for a in json.loads(cli("accounts", "--json"))["accounts"]}
    for n in ("alice", "bob"):
        assert (listed[n]["value"], listed[n]["broker"]) == (shown[n]["value"], shown[n]["broker"])
        drifts = [abs(Decimal(r["drift"])) for r in shown[n]["slices"] if r["drift"] is not None]
        assert listed[n]["max_drift"] == f"{max(drifts)}%"
    paged = json.loads(cli("accounts", "--json", "--size", "1", "--page", "2"))["accounts"]
    assert [(a["account"], a["value"]) for a in paged] == [("bob", "3000.00")]

    # Live: each account at its own broker's latest prices (a.csv for alice, b.csv for bob).
    live_shown = {n: json.loads(cli("account", "show", n, "--json", "--live"))["value"] for n in ("alice", "bob")}
    live_listed = {a["account"]: a["value"] for a in json.loads(cli("accounts", "--json", "--live"))["accounts"]}
    assert live_listed == live_shown and live_shown["alice"] != "1000.00" and live_shown["bob"] != "3000.00"
    vti = {n: Decimal(next(r["shares"] for r in json.loads(cli("account", "show", n, "--json"))["slices"]
                           if r["path"] == "VTI")) for n in ("alice", "bob")}
    assert Decimal(next(r["value"] for r in json.loads(cli("account", "show", "bob", "--json", "--live"))["slices"]
                        if r["path"] == "VTI")) == (vti["bob"] * 480).quantize(Decimal("0.01"))

    led = Ledger(db_url)
    try:
        token = Access(led).create("viewer", "viewer")
        client = TestClient(create_app(load(env=env), ledger=led, limiter=Limiter()))
        api = client.get("/api/v1/accounts", headers=auth(token)).json()["accounts"]
        assert {a["account"]: a["value"] for a in api} == {n: shown[n]["value"] for n in shown}
        one = client.get("/api/v1/accounts/bob", headers=auth(token)).json()
        assert one["value"] == shown["bob"]["value"]
        assert client.post("/console/login", data={"token": token}, follow_redirects=False).status_code == 303
        page = client.get("/console/accounts").text
        for n in ("alice", "bob"):
            row = re.search(rf'accounts/{n}">{n}</a></td><td data-label="Pie">Core</td>'
                            rf'<td class="num" data-label="Value">\$([0-9.,]+)<', page)
            assert row and row.group(1).replace(",", "") == shown[n]["value"], n   # the console groups thousands
        total = re.search(r'id="total-value">\$([0-9.,]+)<', client.get("/console/").text).group(1)
        assert Decimal(total.replace(",", "")) == sum(Decimal(shown[n]["value"]) for n in shown) == Decimal("4000.00")
    finally:
        led.dispose()
