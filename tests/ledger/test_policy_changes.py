"""Policy changes: a plan before they trade, versions that mean what they say (a revert is
re-applied), and account lifecycle (move, close), through the CLI and the windows, on
both databases and the simulated broker."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from adapters.ledger.schema import PolicyVersion
from adapters.ledger.store import Ledger, LedgerError
from engine.shell.cli import main

TWO = 'pie "Core" { VTI 60% BND 40% }\npie "Tech" equal { AAPL MSFT }\n'
THREE = 'pie "Core" { VTI 50% BND 30% TIP 20% }\npie "Tech" equal { AAPL MSFT }\n'
SHRUNK = 'pie "Core" { VTI 100% }\npie "Tech" equal { AAPL MSFT }\n'
PRICES = {"VTI": "250.00", "BND": "72.50", "TIP": "110.00", "AAPL": "172.78", "MSFT": "415.00"}
MON, TUE, WED = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)


@pytest.fixture
def env(db_url, tmp_path):
    (tmp_path / "core.pie").write_text(TWO)
    (tmp_path / "prices.csv").write_text("".join(f"{s},{p}\n" for s, p in PRICES.items()))
    (tmp_path / "settings.toml").write_text(
        f'[broker.simulated]\nprices_file = "{tmp_path / "prices.csv"}"\nstarting_cash = "100000.00"\n'
        f'[policies]\nfiles = ["{tmp_path / "core.pie"}"]\n[settle]\nat_least_seconds = 1\npoll_seconds = 0.05\n')
    return {"PIES_DATABASE_URL": db_url, "PIES_DATA_DIR": str(tmp_path / "data"),
            "PIES_CONFIG": str(tmp_path / "settings.toml")}


@pytest.fixture
def pies(env):
    def run(*args: str, code: int = 0, input: str | None = None):
        extra = {}
        if args[:2] == ("window", "run"):      # the window's day is today for it
            extra["PIES_NOW"] = f"{args[args.index('--date') + 1]}T15:00:00+00:00"
        r = CliRunner().invoke(main, list(args), env={**env, **extra}, input=input)
        assert r.exit_code == code, r.output
        return r
    return run


@pytest.fixture
def invested(pies, tmp_path):
    """alice and bob on Core, carol on Tech, all invested by Monday's window."""
    for name, pie, amount in (("alice", "Core", "1000"), ("bob", "Core", "2500.50"), ("carol", "Tech", "800")):
        pies("account", "add", name, "--pie", pie)
        pies("deposit", name, amount)
    pies("window", "run", "--date", MON.isoformat(), "--force")
    return tmp_path / "core.pie"


def ledger(env) -> Ledger:
    return Ledger(env["PIES_DATABASE_URL"])


def test_plan_shows_the_liquidations_and_their_totals_and_writes_nothing(pies, env, invested):
    invested.write_text(SHRUNK)
    led = ledger(env)
    with led.tx() as s:
        before = s.scalar(select(func.count()).select_from(PolicyVersion))
    held = {n: led.holdings(n) for n in ("alice", "bob")}
    r = pies("policy", "plan", str(invested), "--json", code=1)          # 1: it would trade
    doc = json.loads(r.output)
    (plan,) = doc["plans"]
    assert doc["trades"] is True and plan["changed"] is True
    assert [p["pie"] for p in plan["pies"]] == ["Core"]
    changes = {c["slice"]: (c["change"], c["old"], c["new"]) for c in plan["pies"][0]["changes"]}
    assert changes == {"BND": ("removed", "40.00%", None), "VTI": ("changed", "60.00%", "100.00%")}
    per_account = {a["account"]: a for a in plan["accounts"]}
    assert sorted(per_account) == ["alice", "bob"] and plan["quiet_accounts"] == 0
    for name, a in per_account.items():
        (liq,) = a["liquidations"]
        shares = held[name]["BND"][1]
        assert liq == {"slice": "BND", "symbol": "BND", "shares": str(shares),
                       "amount": str((shares * Decimal("72.50")).quantize(Decimal("0.01")))}
        assert a["rules"] == "m1" and a["amount"] == liq["amount"]
    (total,) = plan["totals"]["by_symbol"]
    assert Decimal(total["amount"]) == sum(Decimal(a["amount"]) for a in plan["accounts"])
    assert Decimal(plan["totals"]["amount"]) == Decimal(total["amount"])
    assert Decimal(total["shares"]) == held["alice"]["BND"][1] + held["bob"]["BND"][1]
    with led.tx() as s:
        assert s.scalar(select(func.count()).select_from(PolicyVersion)) == before
    assert [e.kind for e, _ in led.events(status="pending")] == []
    led.dispose()
    text = pies("policy", "plan", str(invested), code=1).output
    assert "- BND" in text and "all: $" in text and "this change would trade" in text


def test_plan_exit_codes(pies, invested):
    assert "already" in pies("policy", "plan", str(invested), code=0).output     # nothing changed
    invested.write_text(TWO.replace("VTI 60% BND 40%", "VTI 50% BND 50%"))
    r = pies("policy", "plan", str(invested), "--json", code=0)                   # changes, trades nothing
    (plan,) = json.loads(r.output)["plans"]
    assert plan["changed"] and not plan["trades"] and plan["quiet_accounts"] == 2
    invested.write_text('pie "Core" { VTI 60% BND 30% }\n')
    r = pies("policy", "plan", str(invested), code=2)                              # errors
    assert "add up to 90%" in r.output


def test_apply_asks_unless_told_and_load_is_its_alias(pies, env, invested):
    invested.write_text(SHRUNK)
    r = pies("policy", "apply", str(invested), code=2)                   # no terminal, trades: refused
    assert "confirm on a terminal or pass --yes" in r.output
    led = ledger(env)
    assert [e.kind for e, _ in led.events(status="pending")] == []
    r = pies("policy", "load", str(invested), "--yes")
    assert "applied" in r.output and "queued liquidation alice BND" in r.output
    assert sorted((e.kind, n) for e, n in led.events(status="pending")) == [
        ("liquidation", "alice"), ("liquidation", "bob"), ("target_change", "alice"), ("target_change", "bob")]
    assert "nothing to apply" in pies("policy", "apply", str(invested)).output
    led.dispose()


def test_a_reverted_policy_is_applied_again_and_plans_its_trades(pies, env, invested):
    led = ledger(env)
    v1 = led.accounts()[0].policy_version_id
    invested.write_text(THREE)
    pies("policy", "apply", str(invested), "--yes")
    pies("deposit", "alice", "500")                            # deposits buy the new TIP slice
    pies("deposit", "bob", "500")
    pies("window", "run", "--date", TUE.isoformat(), "--force")
    assert all(led.holdings(n)["TIP"][1] > 0 for n in ("alice", "bob"))
    invested.write_text(TWO)                                   # back to A: TIP must go
    (plan,) = json.loads(pies("policy", "plan", str(invested), "--json", code=1).output)["plans"]
    assert {x["slice"] for a in plan["accounts"] for x in a["liquidations"]} == {"TIP"}
    r = pies("policy", "apply", str(invested), "--yes")
    assert f"version {v1} " in r.output                        # the same text is the same version
    assert {a.policy_version_id for a in led.accounts() if a.pie == "Core"} == {v1}
    pies("window", "run", "--date", WED.isoformat(), "--force")
    for name in ("alice", "bob"):
        assert "TIP" not in {p for p, (_, q) in led.holdings(name).items() if q}
    history = json.loads(pies("policy", "history", "Core", "--json").output)["versions"]
    assert [(v["version"], len(v["applied"])) for v in history] == [(v1, 1), (v1 + 1, 1)]
    assert [a["source"] for a in history[0]["applied"]] == ["cli"]
    led.dispose()


def test_history_show_and_diff(pies, env, invested):
    invested.write_text(THREE)
    pies("policy", "apply", str(invested), "--yes")
    versions = json.loads(pies("policy", "history", "--json").output)["versions"]
    v1, v2 = versions[0]["version"], versions[1]["version"]
    assert versions[1]["followers"] == 3 and versions[0]["followers"] == 0      # every follower of the file moves
    assert pies("policy", "show", str(v1)).stdout == TWO
    diff = json.loads(pies("policy", "diff", str(v1), str(v2), "--json").output)
    assert diff["pies"] == [{"pie": "Core", "changes": [
        {"slice": "BND", "change": "changed", "pie": False, "old": "40.00%", "new": "30.00%"},
        {"slice": "TIP", "change": "added", "pie": False, "old": None, "new": "20.00%"},
        {"slice": "VTI", "change": "changed", "pie": False, "old": "60.00%", "new": "50.00%"}]}]
    assert "no policy version 99" in pies("policy", "show", "99", code=2).output


def test_a_refused_account_add_writes_no_policy_version(pies, env, tmp_path):
    (tmp_path / "other.pie").write_text('pie "Other" { VTI 100% }\n')
    r = pies("account", "add", "newbie", "--pie", "Nope", "--policy", str(tmp_path / "other.pie"), code=2)
    assert "no pie named 'Nope'" in r.output
    pies("account", "add", "newbie", "--pie", "Other", "--policy", str(tmp_path / "other.pie"), "--rules", "nope",
         code=2)
    led = ledger(env)
    with led.tx() as s:
        assert s.scalar(select(func.count()).select_from(PolicyVersion)) == 0
    led.dispose()


def test_move_liquidates_what_the_new_pie_lacks_through_a_window(pies, env, invested):
    r = pies("account", "move", "alice", "--pie", "Tech", "--rules", "m1")
    assert "queued liquidation alice VTI" in r.output and "queued liquidation alice BND" in r.output
    plan = json.loads(pies("plan", "alice", "--json").output)
    (a,) = plan["accounts"]
    assert {(t["slice"], t["side"], t["whole_holding"]) for t in a["trades"]} == {
        ("VTI", "sell", True), ("BND", "sell", True), ("AAPL", "buy", False), ("MSFT", "buy", False)}
    pies("window", "run", "--date", TUE.isoformat(), "--force")
    led = ledger(env)
    held = {p for p, (_, q) in led.holdings("alice").items() if q}
    assert held == {"AAPL", "MSFT"}
    assert all(e.status == "done" for e, _ in led.events("alice"))
    assert "nothing changes" in pies("account", "move", "alice", "--pie", "Tech").output
    led.dispose()


def test_close_sells_everything_withdraws_the_cash_and_refuses_new_events(pies, env, invested):
    led = ledger(env)
    house = led.house("main").cash
    pies("account", "close", "bob")
    assert "is closing" in pies("deposit", "bob", "5", code=2).output
    (a,) = json.loads(pies("plan", "bob", "--json").output)["accounts"]
    assert a["closing"] and {t["side"] for t in a["trades"]} == {"sell"} and all(t["whole_holding"]
                                                                                  for t in a["trades"])
    out = pies("window", "run", "--date", TUE.isoformat(), "--force").output
    assert "ledger agrees with the broker" in out
    bob = next(x for x in led.accounts() if x.name == "bob")
    assert bob.cash == 0 and not any(q for _, q in led.holdings("bob").values())
    with led.tx() as s:
        from adapters.ledger.schema import Account
        assert s.scalars(select(Account.status).where(Account.name == "bob")).one() == "closed"
    assert led.house("main").cash > house                     # the proceeds went back to the house
    with pytest.raises(LedgerError, match="'bob' is closed"):
        led.rebalance("bob")
    led.dispose()


def test_plan_agrees_with_what_the_next_window_trades(pies, env, invested):
    pies("deposit", "alice", "300")
    pies("deposit", "carol", "120.40")
    led = ledger(env)
    prices = {s: Decimal(p) for s, p in PRICES.items()}
    led.withdraw("bob", "200", prices, key="w")
    plan = json.loads(pies("plan", "--json").output)
    report = json.loads(json.dumps(_run_report(pies, env)))
    want = {(o["symbol"], o["side"], o["notional"], o["qty"]) for o in plan["orders"]}
    got = {(o["symbol"], o["side"], o["notional"], o["qty"]) for o in report["orders"]}
    assert want == got and want
    led.dispose()


def _run_report(pies, env) -> dict:
    pies("window", "run", "--date", TUE.isoformat(), "--force")
    led = ledger(env)
    with led.tx() as s:
        from adapters.ledger.schema import Window
        report = s.scalars(select(Window.report).where(Window.trading_date == TUE)).one()
    led.dispose()
    return report


@pytest.mark.parametrize("answer, applied", [("y\n", True), ("n\n", False)])
def test_apply_asks_on_a_terminal(pies, env, invested, monkeypatch, answer, applied):
    invested.write_text(SHRUNK)
    monkeypatch.setattr("engine.shell.cli.policy._interactive", lambda: True)
    r = pies("policy", "apply", str(invested), input=answer, code=0 if applied else 2)
    assert "apply? (liquidates $" in r.output
    led = ledger(env)
    assert bool(led.events(status="pending")) == applied
    led.dispose()
