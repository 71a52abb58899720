"""Reconciliation through the real window and the simulated broker: before planning, every
window compares the ledger with the broker and explains each break (an order placed
outside pies, a dividend not collected yet, a split the broker applied and the ledger has
not); an unexplained break above the tolerance holds the window before anything is
collected, planned or sent, until an operator accepts it; below the tolerance it goes on.
A crash around the check resumes to the same end as an uninterrupted run."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from adapters.broker.port import OrderRequest
from adapters.ledger.schema import Event, Window
from adapters.ledger.store import Ledger
from config.settings import load
from engine.core.corporate_actions import ActionKind, CorporateAction
from engine.core.errors import StopTrading
from engine.core.reconcile import Tolerance
from engine.core.roles import Caller
from engine.shell.service import Service
from engine.shell.window import WindowHeld
from test_faults import DAY1, DAY2, World, Wrapped


def funded(tmp_path: Path, db_url: str, **faults) -> World:
    """Two accounts traded on day 1 (the ledger then agrees with the broker), day 2's deposit recorded."""
    w = World(tmp_path / "w", db_url, **faults)
    w.add("alice", "Two", "1000")
    w.add("bob", "Mix", "500")
    w.run(DAY1)
    assert w.agrees() == []
    w.led.deposit("alice", "100", key="day2-alice")
    return w


def tamper(w: World, **positions: str) -> None:
    """Change the broker's positions behind pies's back (as a person at the broker could)."""
    path = w.cfg.state_file
    state = json.loads(path.read_text())
    for sym, qty in positions.items():
        state["positions"][sym] = qty
    path.write_text(json.dumps(state))


def held_qty(w: World, sym: str) -> D:
    return D(json.loads(w.cfg.state_file.read_text())["positions"][sym])


def before(report: dict) -> dict:
    return report["reconciliation"]["before"]


def by_symbol(doc: dict) -> dict[str, dict]:
    return {x["symbol"]: x for x in doc["breaks"]}


def service_of(w: World) -> Service:
    """A service whose settings name the world's broker account (its state and prices files)."""
    (w.root / "settings.toml").write_text(
        f'[broker.simulated]\nstate_file = "{w.cfg.state_file}"\nprices_file = "{w.cfg.prices_file}"\n'
        f'[policies]\nfiles = ["{w.policy}"]\n')
    s = load(env={"PIES_CONFIG": str(w.root / "settings.toml"), "PIES_DATABASE_URL": w.led.url,
                  "PIES_DATA_DIR": str(w.root / "data")})
    return Service(s, w.led, lambda syms: {})


def test_an_order_placed_outside_pies_is_explained_and_the_window_goes_on(tmp_path, db_url):
    w = funded(tmp_path, db_url)
    w.broker.submit(OrderRequest("manual-by-a-person", "AAA", "buy", qty=D(2)))
    report = w.run(DAY2)
    rows = by_symbol(before(report))
    assert rows["AAA"]["cause"] == "outside_order" and "manual-by-a-person" in rows["AAA"]["detail"]
    assert D(rows["AAA"]["difference"]) == D(2)
    assert rows["$cash"]["cause"] == "outside_order" and D(rows["$cash"]["difference"]) == D("-200.00")
    assert before(report)["waits"] is False
    # The window went on: the deposit was traded; the close still reports the difference, with its cause.
    assert any(o["symbol"] == "AAA" and o["side"] == "buy" for o in report["orders"])
    assert report["problems"] and by_symbol(report["reconciliation"]["after"])["AAA"]["cause"] == "outside_order"


def test_a_dividend_the_broker_paid_is_explained_then_collected(tmp_path, db_url):
    w = funded(tmp_path, db_url, dividends={"AAA": D("0.50")}, dividend_day=24)
    report = w.run(DAY2)
    rows = by_symbol(before(report))
    assert list(rows) == ["$cash"] and rows["$cash"]["cause"] == "dividend"
    assert D(rows["$cash"]["difference"]) > 0 and "AAA" in rows["$cash"]["detail"]
    assert report["problems"] == [] and report["reconciliation"]["after"]["agrees"] is True
    assert w.agrees() == []


def test_a_split_the_broker_applied_is_an_action_the_ledger_has_not_applied(tmp_path, db_url):
    w = funded(tmp_path, db_url)
    aaa = held_qty(w, "AAA")
    tamper(w, AAA=str(aaa * 2))
    split = CorporateAction("CA-AAA-2x", ActionKind.FORWARD_SPLIT, "AAA", DAY2, old_rate=D(1), new_rate=D(2))
    broker = Wrapped(w.broker, on={"corporate_actions": lambda none: [split]})
    report = w.run(DAY2, broker)
    row = by_symbol(before(report))["AAA"]
    assert row["cause"] == "corporate_action" and "CA-AAA-2x" in row["detail"]
    assert D(row["difference"]) == aaa and not row["waits"]
    assert "corporate_actions" in broker.calls


def test_an_unexplained_break_above_the_tolerance_holds_the_window_until_accepted(tmp_path, db_url):
    w = funded(tmp_path, db_url)
    aaa = held_qty(w, "AAA")
    tamper(w, AAA=str(aaa + D("0.5")))
    broker = Wrapped(w.broker)
    with capture_logs() as logs, pytest.raises(WindowHeld) as held:
        w.run(DAY2, broker)
    alerts = [x for x in logs if x.get("alert")]
    assert [(x["event"], x["symbol"], x["difference"]) for x in alerts] == \
        [("trading waits: ledger and broker disagree", "AAA", "0.500000000")]
    assert isinstance(held.value, StopTrading) and "AAA" in str(held.value) and "pies reconcile" in str(held.value)
    assert "submit" not in broker.calls and "latest_prices" not in broker.calls
    with w.led.tx() as s:
        win = s.scalars(select(Window).where(Window.trading_date == DAY2)).one()
        assert win.step == "opened"
        assert [x["symbol"] for x in win.report["held"]["lines"]] == ["AAA"]
        assert win.report["reconciliation"]["before"]["waits"] is True
        assert s.scalars(select(Event.status).where(Event.key == "day2-alice")).one() == "pending"
    # Run again without an acceptance: it waits again, still nothing sent.
    with pytest.raises(WindowHeld):
        w.run(DAY2, broker)
    assert "submit" not in broker.calls

    svc = service_of(w)
    shown = svc.reconciliation()["brokers"][0]
    assert shown["waits"] is True
    aaa_line = next(x for x in shown["lines"] if x["symbol"] == "AAA")
    assert aaa_line["cause"] == "unexplained" and D(aaa_line["difference"]) == D("0.5")
    assert (D(aaa_line["ledger"]) + D(aaa_line["house"]), D(aaa_line["broker"])) == (aaa, aaa + D("0.5"))
    ops = Caller("ops", "operator")
    with pytest.raises(Exception, match="reason"):
        svc.accept_breaks("  ", caller=ops)
    done = svc.accept_breaks("a transfer in at the broker, checked with its statement", caller=ops)
    assert [(a["symbol"], D(a["difference"])) for a in done["accepted"]] == [("AAA", D("0.5"))]
    assert [(e["action"], e["outcome"]) for e in svc.audit_log(5)["audit"][:2]] == \
        [("accept reconciliation", "ok"), ("accept reconciliation", "refused: accepting a break needs a reason "
                                                                    "(--reason): what was checked and why it is right")]
    assert svc.reconciliation()["waits"] is False

    report = w.run(DAY2)
    row = by_symbol(before(report))["AAA"]
    assert row["cause"] == "accepted" and "a transfer in" in row["detail"]
    assert report.get("held") is None
    with w.led.tx() as s:
        assert s.scalars(select(Event.status).where(Event.key == "day2-alice")).one() == "done"
    # The same break is accepted while it stays the same; a changed one waits again.
    tamper(w, AAA=str(held_qty(w, "AAA") + D("0.25")))
    w.led.deposit("bob", "50", key="day3-bob")
    with pytest.raises(WindowHeld):
        w.run(date(2026, 11, 25))


def test_an_unexplained_break_within_the_tolerance_goes_on(tmp_path, db_url):
    w = funded(tmp_path, db_url)
    tamper(w, AAA=str(held_qty(w, "AAA") + D("0.0000005")))
    report = w.run(DAY2, tolerance=Tolerance(D("0.000001"), 100))
    row = by_symbol(before(report))["AAA"]
    assert row["cause"] == "unexplained" and row["waits"] is False
    with w.led.tx() as s:
        assert s.scalars(select(Event.status).where(Event.key == "day2-alice")).one() == "done"


def test_a_zero_tolerance_holds_even_the_smallest_unexplained_break(tmp_path, db_url):
    w = funded(tmp_path, db_url)
    tamper(w, AAA=str(held_qty(w, "AAA") + D("0.000000001")))
    with pytest.raises(WindowHeld):
        w.run(DAY2, tolerance=Tolerance(D(0), 0))


def _state(led: Ledger) -> dict:
    from adapters.ledger.schema import Account, Holding
    with led.tx() as s:
        return {"holdings": sorted((a, p, str(q)) for a, p, q in s.execute(
                    select(Account.name, Holding.path, Holding.shares).join(Account, Holding.account_id == Account.id))),
                "cash": sorted((a, str(c)) for a, c in s.execute(select(Account.name, Account.cash))),
                "events": sorted((k, st) for k, st in s.execute(select(Event.key, Event.status)))}


class Crash(Exception):
    pass


@pytest.mark.parametrize("where", ["reconciled", "held"])
def test_a_crash_around_the_check_resumes_to_the_same_end(tmp_path, db_url, where):
    ref = funded(tmp_path / "ref", f"sqlite:///{tmp_path / 'ref.db'}")
    ref.broker.submit(OrderRequest("manual-1", "BBB", "sell", qty=D("0.5")))
    ref.run(DAY2)
    w = funded(tmp_path / "crash", db_url)
    w.broker.submit(OrderRequest("manual-1", "BBB", "sell", qty=D("0.5")))
    if where == "reconciled":
        def crash(point):
            if point == "reconciled":
                raise Crash(point)
        with pytest.raises(Crash):
            w.run(DAY2, crash=crash)
        with w.led.tx() as s:
            assert s.scalars(select(Window.step).where(Window.trading_date == DAY2)).one() == "reconciled"
    else:
        # Killed while holding (between the report's write and the raise): the next run
        # compares again from the start, with an acceptance made meanwhile.
        tamper(w, AAA=str(held_qty(w, "AAA") + 1))
        with pytest.raises(WindowHeld):
            w.run(DAY2)
        tamper(w, AAA=str(held_qty(w, "AAA") - 1))
    w.run(DAY2)
    assert _state(w.led) == _state(ref.led)
    assert w.broker.calls == ref.broker.calls


def test_the_daemon_logs_a_held_window_lives_on_and_runs_it_once_accepted(tmp_path, monkeypatch):
    import json as _json
    from datetime import datetime, time as _time
    from zoneinfo import ZoneInfo
    from engine.shell import policies
    from engine.shell.daemon import Daemon
    from engine.shell.wiring import ensure_house, open_broker
    from test_daemon import make_world
    ny = ZoneInfo("America/New_York")
    env = make_world(tmp_path)
    monkeypatch.setenv("PIES_NOW", "2026-11-24T15:00:00+00:00")
    s = load(env=env)
    led = Ledger(s.database_url)
    broker = open_broker(s)
    ensure_house(led, broker, "main")
    policies.add_account(led, "a", "Tech", tmp_path / "policy.pie")
    led.deposit("a", "300")
    from engine.shell.window import WindowOptions, WindowRunner
    WindowRunner(led, broker, "main", WindowOptions(settle_timeout=1)).run(date(2026, 11, 23))
    state = s.data_dir / "simulated-broker.json"
    doc = _json.loads(state.read_text())
    doc["positions"]["MSFT"] = str(D(doc["positions"]["MSFT"]) + 3)
    state.write_text(_json.dumps(doc))
    led.deposit("a", "100", key="later")
    led.dispose()
    d = Daemon(s, now=lambda: datetime.combine(date(2026, 11, 24), _time(10, 0), ny))
    try:
        d.open()
        with capture_logs() as logs:
            assert d.run_window("open") is None                    # held, and the daemon goes on
        waits = [x for x in logs if x["event"] == "window waits for an operator"]
        assert waits and waits[0]["alert"] is True and "MSFT" in waits[0]["reason"]
        Service(s, d.ledger, lambda syms: {}).accept_breaks("3 MSFT moved in by hand", caller=Caller("ops", "operator"))
        report = d.run_window("open")
        assert report is not None and report["orders"]            # it traded the deposit
    finally:
        d.lock.release()
        d.ledger.dispose()


def test_an_agreeing_window_costs_the_check_two_broker_calls(tmp_path, db_url):
    w = funded(tmp_path, db_url)
    broker = Wrapped(w.broker)
    report = w.run(DAY2, broker)
    # the check's two calls; then the corporate-action step (the actions on held symbols and
    # the positions it checks them against, docs/corporate-actions.md); then collect's own call
    assert broker.calls[:5] == ["positions", "balance", "corporate_actions", "positions", "cash_activities"]
    assert "orders_since" not in broker.calls and broker.calls.count("corporate_actions") == 1
    assert before(report) == {"agrees": True, "waits": False, "breaks": []}
    assert report["reconciliation"]["after"]["agrees"] is True
