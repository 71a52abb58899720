"""`pies performance` over a ledger the CLI made: three windows, prices moving, a deposit,
a second deposit and a withdrawal; the curve checked against what `pies account show`
said after each window, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from cli_helpers import cli_env
from engine.core.money import cents
from engine.shell.cli import main

POLICY = 'pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\n'
DAYS = [("2026-11-23", {"VTI": "250", "BND": "72.5", "TIP": "110"}, [("deposit", "alice", "1000")]),
        ("2026-11-24", {"VTI": "275", "BND": "72.5", "TIP": "110"}, [("deposit", "alice", "500")]),
        ("2026-11-25", {"VTI": "240", "BND": "73", "TIP": "109.5"}, [("withdraw", "alice", "200")])]


@pytest.fixture
def history(db_url, tmp_path):
    base = cli_env(tmp_path, db_url, POLICY, "50000.00")

    def cli(*args: str, day: str = "2026-11-23", code: int = 0):
        env = {**base, "PIES_NOW": f"{day}T15:00:00+00:00"}
        r = CliRunner().invoke(main, list(args), env=env)
        assert r.exit_code == code, r.output
        return r
    cli("account", "add", "alice", "--pie", "Core")
    cli("account", "add", "bob", "--pie", "Core")
    seen = []
    for day, prices, events in DAYS:
        (tmp_path / "prices.csv").write_text("".join(f"{s},{p}\n" for s, p in prices.items()))
        for kind, who, amount in events:
            cli(kind, who, amount, day=day)
        cli("window", "run", "--date", day, day=day)
        shown = json.loads(cli("account", "show", "alice", "--json", day=day).output)
        seen.append(cents(Decimal(shown["value"])) + cents(Decimal(shown["cash"])))
    return cli, seen


def returns(start, values, flows):
    w, prev = 1.0, start
    for v, f in zip(values, flows):
        w *= v / (prev + f)
        prev = v
    return w - 1


def test_the_curve_is_the_accounts_value_after_each_window(history):
    cli, seen = history
    doc = json.loads(cli("performance", "alice", "--json", day="2026-11-25").output)
    values = [cents(Decimal(p["value"])) for p in doc["points"]]
    flows = [cents(Decimal(p["flow"])) for p in doc["points"]]
    assert values == seen
    assert flows == [100_000, 50_000, -20_000]
    assert (doc["deposits"], doc["withdrawals"], doc["net_flows"], doc["start_value"]) == \
        ("1500.00", "200.00", "1300.00", "0.00")
    assert doc["end_value"] == f"{Decimal(seen[-1]) / 100:.2f}"
    assert doc["twr"] == pytest.approx(returns(0, values, flows), abs=1e-8)
    assert (doc["from"], doc["to"], doc["windows"]) == ("2026-11-23", "2026-11-25", 3)
    assert doc["twr"] != 0 and doc["mwr"] is not None


def test_from_and_to_cut_the_period(history):
    cli, seen = history
    doc = json.loads(cli("performance", "alice", "--from", "2026-11-24", "--to", "2026-11-24", "--json",
                         day="2026-11-25").output)
    assert doc["windows"] == 1 and doc["start_value"] == f"{Decimal(seen[0]) / 100:.2f}"
    assert doc["twr"] == pytest.approx(seen[1] / (seen[0] + 50_000) - 1, abs=1e-8)


def test_the_table_and_the_mistakes(history):
    cli, _ = history
    text = cli("performance", "alice", day="2026-11-25").output
    assert "time-weighted return" in text and "1500.00" in text
    r = cli("performance", "zed", day="2026-11-25", code=2)
    assert "no account named 'zed'" in r.output and "Traceback" not in r.output
    r = cli("performance", "alice", "--from", "2026-11-31", day="2026-11-25", code=2)
    assert "--from '2026-11-31' is not a date like 2026-11-24" in r.output
    r = cli("performance", "alice", "--from", "2026-11-25", "--to", "2026-11-24", day="2026-11-25", code=2)
    assert "--from 2026-11-25 is after --to 2026-11-24" in r.output
