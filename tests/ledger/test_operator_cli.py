"""The operator commands end to end, on both databases, with the simulated broker."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from adapters.ledger.store import Ledger
from engine.shell.cli import main
from cli_helpers import cli_env

POLICY = 'pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\n'


@pytest.fixture
def pies(db_url, tmp_path):
    env = cli_env(tmp_path, db_url, POLICY, "5000.00")

    def run(*args: str, code: int = 0):
        pinned = args[:2] == ("window", "run") and "PIES_NOW" not in os.environ
        extra = {"PIES_NOW": "2026-11-24T15:00:00+00:00"} if pinned else {}
        r = CliRunner().invoke(main, list(args), env={**env, **extra})
        assert r.exit_code == code, r.output
        return r
    run("account", "add", "alice", "--pie", "Core")
    return run


def events(db_url) -> list:
    led = Ledger(db_url)
    try:
        return [(e.kind, str(e.amount), e.status) for e, _ in led.events()]
    finally:
        led.dispose()


def test_deposit_with_a_key_is_recorded_once(pies, db_url):
    assert "recorded" in pies("deposit", "alice", "100", "--key", "ref-1").output
    assert "already recorded" in pies("deposit", "alice", "100", "--key", "ref-1").output
    assert events(db_url) == [("deposit", "100.00", "pending")]


@pytest.mark.parametrize("args, says", [
    (("deposit", "alice", "-1"), "must be positive"),
    (("deposit", "alice", "1.001"), "fractions of a cent"),
    (("deposit", "alice", "5000.01"), "has only $5000.00 unowned cash"),
    (("deposit", "nobody", "5"), "no account named 'nobody'"),
    (("withdraw", "alice", "1"), "more than it holds"),
    (("rebalance", "alice", "VTI"), "a security, not a pie"),
    (("cancel", "42"), "no event 42"),
    (("account", "add", "alice", "--pie", "Core"), "already exists"),
    (("account", "add", "zed", "--pie", "Core", "--broker", "nope"), "no broker account named 'nope'"),
    (("account", "add", "bob", "--pie", "Nope"), "no pie named 'Nope'"),
])
def test_mistakes_exit_2_with_one_line_and_write_nothing(pies, db_url, args, says):
    r = pies(*args, code=2)
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in r.output
    assert events(db_url) == []


def test_policy_load_with_errors_exits_2_and_changes_nothing(pies, db_url, tmp_path):
    (tmp_path / "core.pie").write_text('pie "Core" { VTI 60% BND 30% }\n')
    r = pies("policy", "load", str(tmp_path / "core.pie"), code=2)
    assert "core.pie:1:5: error: the slices of pie \"Core\" add up to 90%" in r.output
    (tmp_path / "core.pie").write_text('pie "Core" { VTI 100% }\n')
    assert "version 2" in pies("policy", "load", str(tmp_path / "core.pie")).output


def test_a_policy_that_does_not_compile_exits_2_in_plan_apply_and_account_add(pies, tmp_path):
    bad = tmp_path / "bad.pie"
    bad.write_text('pie "Core" { VTI 60% BND 30% }\n')
    for args in (("policy", "plan", str(bad)), ("policy", "apply", str(bad), "--yes"),
                 ("account", "add", "carol", "--pie", "Core", "--policy", str(bad))):
        r = pies(*args, code=2)
        assert "bad.pie:1:5: error: the slices of pie \"Core\" add up to 90%" in r.output, args
        assert "Traceback" not in r.output


def test_accounts_show_and_history(pies):
    pies("deposit", "alice", "250")
    pies("rebalance", "alice", "Bonds")
    table = pies("accounts").output
    assert "alice" in table and "Core" in table
    tree = pies("account", "show", "alice").output
    assert "Bonds" in tree and "TIP" in tree and "pending #1 deposit $250.00" in tree
    hist = pies("history", "alice").output
    assert "deposit" in hist and "rebalance" in hist and "Bonds" in hist
    assert "event #1 canceled" in pies("cancel", "1").output


def test_a_window_run_from_the_command_line_shows_in_history(pies):
    pies("deposit", "alice", "1000")
    report = pies("window", "run", "--date", "2026-11-24", "--force").output
    assert "ledger agrees with the broker" in report and "VTI" in report
    hist = pies("history", "alice").output
    assert "alice: trades" in hist and "Bonds/BND" in hist and "-280.00" in hist
    again = pies("window", "show", "--date", "2026-11-24").output
    assert "ledger agrees with the broker" in again
    assert "$600.00" in pies("account", "show", "alice").output     # VTI 60% of $1000


@pytest.mark.parametrize("typed, recorded", [
    ("123", "$123.00"), ("123.45", "$123.45"), ("1,234.56", "$1,234.56"), ("$1,050", "$1,050.00"), (" 7 ", "$7.00"),
])
def test_amounts_accepted_and_echoed_as_parsed(pies, db_url, typed, recorded):
    r = pies("deposit", "alice", typed)
    assert f"alice {recorded} (pending" in r.output


@pytest.mark.parametrize("typed, says", [
    ("10,50", "commas only separate thousands"), ("1,23", "commas only separate thousands"),
    ("12,3456.00", "commas only separate thousands"), ("1e3", "is not a dollar amount"),
    ("1e30", "is not a dollar amount"), ("1" * 30, "surely a typo"), ("1000000000.01", "surely a typo"),
    ("-5", "must be positive"), ("+5", "without a sign"), ("€5", "is not a dollar amount"),
    ("USD5", "is not a dollar amount"), ("1.005", "fractions of a cent"), ("0", "must be positive"),
    (".5", "is not a dollar amount"), ("5.", "is not a dollar amount"), ("NaN", "is not a dollar amount"),
    ("Infinity", "is not a dollar amount"),
])
def test_amounts_refused_with_one_line_and_nothing_written(pies, db_url, typed, says):
    r = pies("deposit", "alice", typed, code=2)
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in r.output
    assert events(db_url) == []


@pytest.mark.parametrize("args, says", [
    (("window", "run", "--date", "2019-01-02"), "2019-01-02 is past (today is 2026-11-24 in America/New_York)"),
    (("window", "run", "--date", "2026-11-25"), "2026-11-25 is in the future"),
    (("window", "run", "--date", "2026-11-26"), "is in the future"),
    (("window", "run", "--name", "typo"), "no window named 'typo' in the settings (windows: open)"),
    (("window", "run", "--date", "2019-01-02", "--replay"), "only a window that was opened and never closed"),
])
def test_window_run_refuses_other_days_and_unknown_names(pies, db_url, args, says):
    r = pies(*args, code=2)
    assert says in r.output and "Traceback" not in r.output
    assert pies("windows", "--json").output.strip() == '{\n  "windows": []\n}'


def test_window_run_refuses_a_closed_market_day(pies, db_url, monkeypatch):
    monkeypatch.setenv("PIES_NOW", "2026-11-26T15:00:00+00:00")          # Thanksgiving
    assert "the market is closed on 2026-11-26" in pies("window", "run", code=2).output


def test_a_closed_window_shows_its_report_instead_of_running_again(pies, db_url):
    pies("deposit", "alice", "100")
    pies("window", "run", "--date", "2026-11-24")
    again = pies("window", "run", "--date", "2026-11-24").output
    assert "closed at" in again and "its report" in again
    (w,) = __import__("json").loads(pies("windows", "--json").output)["windows"]
    assert (w["day"], w["name"], w["step"], w["orders"], w["problems"]) == ("2026-11-24", "open", "closed", 3, 0)
    shown = __import__("json").loads(pies("window", "show", str(w["id"]), "--json").output)
    assert shown["step"] == "closed" and shown["report"]["window"] == w["id"]


def test_read_commands_speak_json(pies, db_url, monkeypatch):
    import json
    pies("deposit", "alice", "1,000")
    pies("window", "run", "--date", "2026-11-24")
    pies("deposit", "alice", "50", "--key", "later")
    accts = json.loads(pies("accounts", "--json").output)["accounts"]
    assert accts == [{"account": "alice", "pie": "Core", "broker": "main", "status": "active", "value": "1000.00",
                      "cash": "0.00", "max_drift": "0.00%", "pending": 1}]
    show = json.loads(pies("account", "show", "alice", "--json").output)
    assert show["value"] == "1000.00" and [x["path"] for x in show["slices"]] == ["VTI", "Bonds", "Bonds/BND",
                                                                                  "Bonds/TIP"]
    assert show["pending"][0]["key"] == "later" and show["pending"][0]["amount"] == "50.00"
    hist = json.loads(pies("history", "alice", "--json").output)
    assert [e["status"] for e in hist["events"]] == ["done", "pending"]
    assert {t["symbol"] for t in hist["trades"]} == {"VTI", "BND", "TIP"}
    assert sum(__import__("decimal").Decimal(t["cash"]) for t in hist["trades"]) == -1000
    monkeypatch.setenv("PIES_NOW", "2026-11-24T16:00:00+00:00")      # 11:00 New York: today's window closed
    st = json.loads(pies("status", "--json").output)
    (b,) = st["brokers"]
    assert b["next"] == [{"window": "open", "at": "2026-11-25T09:35:00-05:00", "timezone": "America/New_York"}]
    assert b["last_window"]["step"] == "closed" and st["pending"] == [{"account": "alice", "events": 1}]


def test_import_events_is_all_or_nothing_with_errors_by_line(pies, db_url, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("account,kind,amount,key\nalice,deposit,100,k1\nalice,deposit,10,50,k2\nbob,deposit,5,k3\n"
                   "alice,deposit,4000,k4\nalice,withdrawal,5000,k5\nalice,transfer,1,k6\nalice,deposit,1,k1\n")
    r = pies("import", "events", str(bad), code=2)
    line = r.output.strip().replace("\n", " ")
    for said in (f"{bad}:3: more fields than the header has", f"{bad}:4: no account named 'bob'",
                 f"{bad}:6: withdrawal of $5000.00 from 'alice' is more than it holds ($4100.00",
                 f"{bad}:7: kind 'transfer' must be", f"{bad}:8: key 'k1' appears twice"):
        assert said in line, (said, line)
    assert events(db_url) == []                                    # nothing was written
    good = tmp_path / "good.csv"
    good.write_text("account,kind,amount,key,path\nalice,deposit,\"1,000\",g1,\nalice,deposit,$20.50,g2,\n"
                    "alice,withdrawal,500,g3,\nalice,rebalance,,g4,Bonds\n")
    assert "4 event(s) recorded, 0 already recorded" in pies("import", "events", str(good)).output
    assert "0 event(s) recorded, 4 already recorded" in pies("import", "events", str(good)).output
    assert events(db_url) == [("deposit", "1000.00", "pending"), ("deposit", "20.50", "pending"),
                              ("withdrawal", "500.00", "pending"), ("rebalance", "None", "pending")]
    (tmp_path / "cols.csv").write_text("account,kind,amount,memo\n")
    assert "unknown columns: memo" in pies("import", "events", str(tmp_path / "cols.csv"), code=2).output


def test_the_demo_shows_two_days_with_a_withdrawal_a_rebalance_and_a_liquidation(tmp_path):
    env = {"PIES_DATA_DIR": str(tmp_path / "data"), "PIES_NOW": "2026-11-24T15:00:00+00:00", "COLUMNS": "200"}
    r = CliRunner().invoke(main, ["demo"], env=env)
    assert r.exit_code == 0, r.output
    text = r.output
    assert "day 1 (2026-11-23): first deposits" in text and "day 2 (2026-11-24)" in text
    assert text.count("ledger agrees with the broker") == 2
    assert "- NVDA" in text and "withdrawal $400.00" in text and "rebalance" in text
    assert "sell NVDA" in text and "next: pies accounts" in text
    assert "corporate action demo-vti-split-2026-11-24: VTI split 2-for-1 on 2026-11-24" in text
    led = Ledger(f"sqlite:///{tmp_path / 'data' / 'pies.db'}")
    history = [(e.kind, e.reason) for e, _ in led.events("demo-alice")]
    assert ("corporate_action", "VTI split 2-for-1 on 2026-11-24") in history
    carol = {p for p, (_, q) in led.holdings("demo-carol").items() if q}
    assert carol == {"AAPL", "MSFT"}                              # NVDA liquidated into the rest of Tech
    assert all(e.status == "done" for e, _ in led.events())
    led.dispose()
    again = CliRunner().invoke(main, ["demo"], env=env)           # the same day again changes nothing
    assert again.exit_code == 0 and again.output.count("ledger agrees with the broker") == 2


def test_quiet_windows_and_demo_keep_the_terminal_short_and_the_logs_in_a_file(tmp_path):
    env = {"PIES_DATA_DIR": str(tmp_path / "data"), "PIES_NOW": "2026-11-24T15:00:00+00:00", "COLUMNS": "200"}
    loud = CliRunner().invoke(main, ["demo"], env={**env, "PIES_DATA_DIR": str(tmp_path / "loud")})
    assert loud.exit_code == 0 and loud.output.count('"event": "window step"') >= 10    # piped: every line, JSON
    from engine.shell import logs
    try:
        r = CliRunner().invoke(main, ["demo", "--quiet"], env=env)
    finally:
        logs.configure()                  # the process's other tests log as before
    assert r.exit_code == 0, r.output
    log = tmp_path / "data" / "logs" / "pies.log"
    assert f"logs: {log}" in r.output and r.output.count("ledger agrees with the broker") == 2
    assert '"event"' not in r.output and "window step" not in r.output
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert sum(x["event"] == "window step" for x in lines) == loud.output.count('"event": "window step"')
    logged = [x for x in loud.output.splitlines() if x.startswith("{")]
    print(f"demo: {len(loud.output.splitlines())} lines piped ({len(logged)} log lines), "
          f"{len(r.output.splitlines())} with --quiet, {len(lines)} lines in {log.name}")
    assert not [x for x in r.output.splitlines() if x.startswith("{")]
    warned = [x for x in logged if json.loads(x)["level"] in ("warning", "error")]   # these stay, one line each
    assert len(r.output.splitlines()) == len(loud.output.splitlines()) - len(logged) + 1 + len(warned)


def test_on_a_terminal_a_window_prints_one_line_per_step(tmp_path, capsys):
    import structlog
    from engine.shell import logs
    logs.compact(tmp_path / "pies.log")
    log = structlog.get_logger("pies.window").bind(window=7)
    for step in ("collected", "priced", "planned"):
        log.info("window step", step=step, seconds=0.25)
    log.info("order placed", symbol="VTI")
    log.warning("buys scaled down", asked="500.00")
    logs.configure()
    shown = capsys.readouterr().err.splitlines()
    assert shown == ["  window 7 collected (0.25 s)", "  window 7 priced (0.25 s)", "  window 7 planned (0.25 s)",
                     "warning: buys scaled down window=7 asked=500.00"]
    assert len((tmp_path / "pies.log").read_text().splitlines()) == 5              # the file keeps every line
