"""Corporate actions at every door: `pies window run` and `window show` list the actions a
window applied and say the ledger agrees with the broker; `pies check`, `pies policy plan`,
the API and the console warn about a symbol the policy still names after a rename, with the
file and line to edit."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from adapters.ledger.access import Access
from adapters.ledger.store import Ledger
from config.settings import load
from engine.shell.api import Limiter, create_app
from engine.shell.cli import main

POLICY = 'pie "Core" {\n  VTI 60%\n  pie "Bonds" 40% { BND 70% TIP 30% }\n}\n'
ACTIONS = {"corporate_actions": {
    "forward_splits": [{"id": "fs-vti", "symbol": "VTI", "cusip": "1", "new_rate": 2, "old_rate": 1,
                        "process_date": "2026-11-25", "ex_date": "2026-11-25"}],
    "name_changes": [{"id": "nc-tip", "old_symbol": "TIP", "old_cusip": "a", "new_symbol": "TIPX", "new_cusip": "b",
                      "process_date": "2026-11-25"}]}, "next_page_token": None}


@pytest.fixture
def doors(db_url, tmp_path):
    (tmp_path / "core.pie").write_text(POLICY)
    (tmp_path / "prices.csv").write_text("VTI,250\nBND,72.5\nTIP,110\n")
    (tmp_path / "actions.json").write_text(json.dumps(ACTIONS))
    (tmp_path / "settings.toml").write_text(
        f'[broker.simulated]\nprices_file = "prices.csv"\nstarting_cash = "50000.00"\n'
        f'corporate_actions_file = "actions.json"\n[policies]\nfiles = ["core.pie"]\n')
    env = {"PIES_DATABASE_URL": db_url, "PIES_DATA_DIR": str(tmp_path / "data"),
           "PIES_CONFIG": str(tmp_path / "settings.toml"), "PIES_NOW": "2026-11-24T15:00:00+00:00"}

    def cli(*args: str, code: int = 0, now: str | None = None):
        r = CliRunner().invoke(main, list(args), env={**env, **({"PIES_NOW": now} if now else {})})
        assert r.exit_code == code, r.output
        return r
    cli("account", "add", "alice", "--pie", "Core")
    cli("account", "add", "bob", "--pie", "Core")
    cli("deposit", "alice", "1000")
    cli("deposit", "bob", "333.33")
    cli("window", "run", "--date", "2026-11-24")
    # The next day: VTI quoted after its split, TIP as TIPX.
    (tmp_path / "prices.csv").write_text("VTI,125\nBND,72.5\nTIPX,110\n")
    yield cli, env, tmp_path


def test_the_window_and_window_show_list_the_actions_and_agree_with_the_broker(doors):
    cli, env, tmp_path = doors
    cli("deposit", "alice", "100", now="2026-11-25T15:00:00+00:00")
    r = cli("window", "run", "--date", "2026-11-25", now="2026-11-25T15:00:00+00:00")
    assert "corporate action fs-vti: VTI split 2-for-1 on 2026-11-25: 2 accounts" in r.output
    assert "corporate action nc-tip: TIP was renamed TIPX on 2026-11-25: 2 accounts" in r.output
    assert "ledger agrees with the broker" in r.output
    assert "-TIP-buy" not in r.output and "-TIPX-buy" in r.output   # bought through the alias, in the new name
    shown = cli("window", "show", "2", now="2026-11-25T15:00:00+00:00")
    assert "VTI split 2-for-1" in shown.output and "ledger agrees with the broker" in shown.output
    history = json.loads(cli("history", "bob", "--json", now="2026-11-25T15:00:00+00:00").stdout)
    assert {(e["kind"], e["reason"]) for e in history["events"] if e["kind"] == "corporate_action"} == {
        ("corporate_action", "VTI split 2-for-1 on 2026-11-25"), ("corporate_action", "TIP was renamed TIPX on 2026-11-25")}


def test_check_plan_api_and_console_warn_that_the_policy_still_names_the_old_symbol(doors, db_url):
    cli, env, tmp_path = doors
    cli("window", "run", "--date", "2026-11-25", now="2026-11-25T15:00:00+00:00")
    policy = tmp_path / "core.pie"
    warning = f"{policy}:3: TIP was renamed TIPX on 2026-11-25; the policy still says TIP"
    checked = cli("check", str(policy))
    assert warning in checked.output.replace("\n", "")
    planned = cli("policy", "plan", str(policy), "--json")
    assert json.loads(planned.stdout[planned.stdout.index("{"):])["warnings"] == [warning]
    led = Ledger(db_url)
    try:
        token = Access(led).create("analyst-token", "analyst")
        app = create_app(load(env=env), ledger=led, live_prices=lambda symbols: {}, limiter=Limiter())
        client = TestClient(app)
        got = client.post("/api/v1/policies/plan", json={"file": str(policy)},
                          headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200 and got.json()["warnings"] == [warning]
        w = client.get("/api/v1/windows/2", headers={"Authorization": f"Bearer {token}"})
        assert [x["id"] for x in w.json()["report"]["corporate_actions"]] == ["fs-vti", "nc-tip"]
        client.post("/console/login", data={"token": token}, follow_redirects=True)
        page = client.get("/console/policies")
        assert "TIP was renamed TIPX on 2026-11-25; the policy still says TIP" in page.text
    finally:
        led.dispose()
    # A fix: the policy names the new symbol; the warning is gone.
    policy.write_text(POLICY.replace("TIP 30%", "TIPX 30%"))
    assert "renamed" not in cli("check", str(policy)).output
