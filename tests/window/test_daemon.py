"""The daemon: when windows run, SIGTERM between steps, policy reloads, its log lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, time as dtime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog
from sqlalchemy import func, select
from structlog.testing import capture_logs

from adapters.ledger.schema import PolicyVersion, Window
from adapters.ledger.store import Ledger
from config.settings import Window as WindowSetting
from config.settings import load
from engine.shell.daemon import Daemon, window_due
from engine.shell.window import Interrupted, WindowOptions, WindowRunner
from engine.shell.wiring import ensure_house, open_broker
from engine.shell import policies

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")
OPEN = WindowSetting("open", dtime(9, 35), "America/New_York", dtime(15, 30))


@pytest.mark.parametrize("now, trading, run, why", [
    (datetime(2026, 11, 24, 9, 35, tzinfo=NY), True, True, "due"),
    (datetime(2026, 11, 24, 10, 10, tzinfo=NY), True, True, "due"),            # started late: still today
    (datetime(2026, 11, 24, 15, 31, tzinfo=NY), True, False, "after the 15:30 cut-off"),
    (datetime(2026, 11, 24, 9, 0, tzinfo=NY), True, False, "before 09:35"),
    (datetime(2026, 11, 26, 10, 0, tzinfo=NY), False, False, "the market is closed on 2026-11-26"),
    (datetime(2026, 11, 24, 15, 0, tzinfo=ZoneInfo("UTC")), True, True, "due"),  # 10:00 in New York
])
def test_when_a_window_runs(now, trading, run, why):
    due = window_due(OPEN, now, trading)
    assert (due.run, due.reason) == (run, why)


def make_world(tmp_path: Path, windows: str = "") -> dict[str, str]:
    (tmp_path / "policy.pie").write_text('pie "Tech" equal { AAPL MSFT NVDA }\n')
    (tmp_path / "prices.csv").write_text("AAPL,172.78\nMSFT,415\nNVDA,131.31\n")
    (tmp_path / "settings.toml").write_text(
        f'[broker.simulated]\nprices_file = "{tmp_path / "prices.csv"}"\n'
        f'[policies]\nfiles = ["{tmp_path / "policy.pie"}"]\n{windows}')
    return {"PIES_CONFIG": str(tmp_path / "settings.toml"), "PIES_DATA_DIR": str(tmp_path / "data")}


def one_account(tmp_path: Path):
    """A ledger with one account on "Tech" and its simulated broker."""
    s = load(env=make_world(tmp_path))
    led = Ledger(s.database_url)
    broker = open_broker(s)
    ensure_house(led, broker, "main")
    policies.add_account(led, "a", "Tech", tmp_path / "policy.pie")
    return led, broker


def test_sigterm_between_steps_leaves_a_window_that_resumes(tmp_path):
    led, broker = one_account(tmp_path)
    led.deposit("a", "100")
    stop = threading.Event()
    runner = WindowRunner(led, broker, "main", WindowOptions(), stop=stop,
                          crash=lambda point: stop.set() if point == "planned" else None)
    with pytest.raises(Interrupted):
        runner.run(date(2026, 11, 24))
    with led.tx() as sess:
        assert sess.scalars(select(Window.step)).one() == "planned"
    report = WindowRunner(led, broker, "main", WindowOptions()).run(date(2026, 11, 24))
    assert report["problems"] == [] and len(report["orders"]) == 3


def test_policy_reload_keeps_the_old_version_when_the_new_one_is_broken(tmp_path):
    env = make_world(tmp_path)
    d = Daemon(load(env=env))
    d.open()
    policy = tmp_path / "policy.pie"
    policy.write_text('pie "Tech" { AAPL 50% MSFT 40% }\n')
    with capture_logs() as logs:
        d.reload_policies()
    err = [x for x in logs if x["event"].startswith("policy rejected")]
    assert err and f"{policy}:1:" in err[0]["error"] and "90%" in err[0]["error"]
    with d.ledger.tx() as sess:
        assert sess.scalar(select(func.count()).select_from(PolicyVersion)) == 1
    policy.write_text('pie "Tech" { AAPL 50% MSFT 50% }\n')
    time.sleep(0.01)
    os.utime(policy)
    with capture_logs() as logs:
        d.reload_if_changed()
    assert [x["version"] for x in logs if x["event"] == "policy loaded"] == [2]
    d.ledger.dispose()


@pytest.mark.parametrize("now", ["2026-11-24T12:00:00-05:00", "2026-11-22T12:00:00-05:00"], ids=["tuesday", "sunday"])
def test_the_daemon_runs_todays_window_logs_json_and_stops_on_sigterm(tmp_path, now):
    # A window from 00:00 to 23:59 New York time: the daemon catches it up at start on a
    # weekday, and says why it does not run on a weekend. The day is pinned (PIES_NOW), so
    # the test asserts the same thing whatever day it runs on.
    env = make_world(tmp_path, '[[windows]]\nname = "allday"\nat = "00:00"\ncutoff = "23:59"\n'
                               'timezone = "America/New_York"\n')
    env["PIES_NOW"] = now
    s = load(env=env)
    led = Ledger(s.database_url)
    ensure_house(led, open_broker(s), "main")
    policies.add_account(led, "a", "Tech", tmp_path / "policy.pie")
    led.deposit("a", "250")
    led.dispose()
    proc = subprocess.Popen([sys.executable, "-m", "engine.shell.cli", "daemon"], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(json.loads(line))
            if lines[-1]["event"] in ("window report", "window skipped", "today's window does not run"):
                break
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)[1], None
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += [json.loads(x) for x in (rest or "").splitlines() if x.strip()]
    assert proc.returncode == 0
    events = [x["event"] for x in lines]
    assert events[0] == "pies daemon starting" and events[-1] == "pies daemon stopped"
    assert "heartbeat" in events
    today = datetime.fromisoformat(now).date()
    if today.weekday() < 5:
        report = next(x for x in lines if x["event"] == "window report")
        assert report["problems"] == [] and report["orders"] == 3
        steps = [x for x in lines if x["event"] == "window step"]
        assert steps and all("window" in x for x in steps)
        assert any("client_order_id" in x for x in lines if x["event"] == "order placed")
    else:
        assert any(x["event"] == "today's window does not run" and "closed" in x["reason"] for x in lines)
    assert not any("SECRET" in json.dumps(x) for x in lines)


def test_recurring_deposits_are_recorded_once_per_period(tmp_path):
    from engine.shell.window import Recurring
    led, broker = one_account(tmp_path)
    monthly = (Recurring("a", Decimal("100.00"), "month", 24), Recurring("nobody", Decimal("5.00"), "day"))
    opts = WindowOptions(recurring=monthly)
    WindowRunner(led, broker, "main", opts).run(date(2026, 11, 23))       # before the 24th: not due
    assert [e.kind for e, _ in led.events("a")] == []
    WindowRunner(led, broker, "main", opts).run(date(2026, 11, 24))
    WindowRunner(led, broker, "main", opts).run(date(2026, 11, 25))       # same month: not again
    assert [(e.kind, e.amount, e.status) for e, _ in led.events("a")] == [("deposit", Decimal("100.00"), "done")]
    assert sum(q for _, q in led.holdings("a").values()) > 0


def test_fills_are_awaited_until_fifteen_minutes_before_the_close(tmp_path):
    from datetime import time as t
    env = make_world(tmp_path)
    (tmp_path / "settings.toml").write_text((tmp_path / "settings.toml").read_text().replace(
        "[broker.simulated]\n", '[broker.simulated]\nholidays = ["2026-11-26"]\n'))
    d = Daemon(load(env=env))
    d.broker = open_broker(d.settings)
    w = WindowSetting("open", t(9, 35), "America/New_York", t(15, 30))
    assert d._settle_bound(w, datetime(2026, 11, 24, 9, 35, tzinfo=NY)) == 6 * 3600 + 10 * 60
    assert d._settle_bound(w, datetime(2026, 11, 24, 15, 50, tzinfo=NY)) == 60.0
    assert d._settle_bound(w, datetime(2026, 11, 26, 9, 35, tzinfo=NY)) == 60.0     # closed all day
    # Both figures are settings.
    (tmp_path / "settings.toml").write_text((tmp_path / "settings.toml").read_text()
                                            + "[settle]\nbefore_close_minutes = 30\nat_least_seconds = 90\n")
    d.settings = load(env=env)
    assert d._settle_bound(w, datetime(2026, 11, 24, 9, 35, tzinfo=NY)) == 5 * 3600 + 55 * 60
    assert d._settle_bound(w, datetime(2026, 11, 24, 15, 50, tzinfo=NY)) == 90.0


def _invested_daemon(tmp_path: Path, extra: str = "") -> Daemon:
    """A daemon whose one account holds AAPL, MSFT and NVDA after a window."""
    env = make_world(tmp_path)
    (tmp_path / "settings.toml").write_text((tmp_path / "settings.toml").read_text() + extra)
    led, broker = one_account(tmp_path)
    led.deposit("a", "900")
    assert WindowRunner(led, broker, "main", WindowOptions(settle_timeout=1)).run(date(2026, 11, 24))["problems"] == []
    led.dispose()
    d = Daemon(load(env=env))
    d.open()
    return d


def _change(policy: Path, text: str) -> None:
    policy.write_text(text)
    time.sleep(0.01)
    os.utime(policy)


def test_a_watched_change_that_liquidates_is_staged_until_applied(tmp_path):
    d = _invested_daemon(tmp_path)
    policy = tmp_path / "policy.pie"
    v1 = d.ledger.accounts()[0].policy_version_id
    _change(policy, 'pie "Tech" equal { AAPL MSFT }\n')              # NVDA is held: it would be sold
    with capture_logs() as logs:
        d.reload_if_changed()
        d._mtimes.clear()
        d.reload_if_changed()                                      # seen again: staged once, not twice
    staged = [x for x in logs if x["event"].startswith("policy change staged")]
    assert len(staged) == 1 and staged[0]["accounts"] == 1 and set(staged[0]["by_symbol"]) == {"NVDA"}
    assert "liquidates $" in staged[0]["reason"]
    assert d.ledger.accounts()[0].policy_version_id == v1 and d.ledger.events(status="pending") == []
    # A change that trades nothing applies at once, and the staged one waits for `policy apply`.
    _change(policy, 'pie "Tech" { AAPL 30% MSFT 30% NVDA 40% }\n')
    with capture_logs() as logs:
        d.reload_if_changed()
    assert [x["event"] for x in logs] == ["policy loaded"]
    _change(policy, 'pie "Tech" equal { AAPL MSFT }\n')
    d.reload_if_changed()
    env = {"PIES_CONFIG": str(tmp_path / "settings.toml"), "PIES_DATA_DIR": str(tmp_path / "data")}
    from click.testing import CliRunner
    from engine.shell.cli import main
    r = CliRunner().invoke(main, ["policy", "apply", str(policy), "--yes"], env=env)
    assert r.exit_code == 0 and "queued liquidation a NVDA" in r.output
    d.ledger.dispose()


@pytest.mark.parametrize("limit, applied", [('auto_apply_max_dollars = "100000"', True),
                                             ('auto_apply_max_dollars = "1.00"', False),
                                             ("auto_apply_max_accounts = 0", False)])
def test_auto_apply_applies_within_its_limit(tmp_path, limit, applied):
    d = _invested_daemon(tmp_path)
    settings = tmp_path / "settings.toml"
    settings.write_text(settings.read_text().replace("[policies]\n", f"[policies]\nauto_apply = true\n{limit}\n"))
    d.settings = load(env={"PIES_CONFIG": str(settings), "PIES_DATA_DIR": str(tmp_path / "data")})
    assert d.settings.auto_apply
    _change(tmp_path / "policy.pie", 'pie "Tech" equal { AAPL MSFT }\n')
    with capture_logs() as logs:
        d.reload_if_changed()
    events = [x["event"] for x in logs]
    if applied:
        assert events == ["policy loaded"] and [e.kind for e, _ in d.ledger.events(status="pending")] == \
            ["target_change", "liquidation"]
        assert d.ledger.versions()[-1][1][0].source == "auto"
    else:
        assert events == ["policy change staged: it waits for `pies policy apply`"]
        assert "over the auto_apply limit of " + ("$1.00" if "dollars" in limit else "0") in logs[0]["reason"]
    d.ledger.dispose()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_second_daemon_on_the_same_ledger_is_refused_and_names_the_first(tmp_path, db_url):
    env = {**make_world(tmp_path), "PIES_DATABASE_URL": db_url}
    first = subprocess.Popen([sys.executable, "-m", "engine.shell.cli", "daemon"], cwd=ROOT,
                             env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:        # wait until it holds the lock and says so
            line = first.stderr.readline()
            if not line or json.loads(line)["event"] == "heartbeat":
                break
        second = subprocess.run([sys.executable, "-m", "engine.shell.cli", "daemon"], cwd=ROOT,
                                env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stderr[-2000:]
        said = second.stdout + second.stderr
        assert f"another daemon already runs on this ledger (pies-daemon pid={first.pid} host=" in said
        assert "Traceback" not in said
        pidfile = tmp_path / "data" / "daemon.pid"
        assert pidfile.read_text() == str(first.pid)            # the refused one left it alone
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
        assert first.returncode == 0 and not pidfile.exists()
        # Once the first has stopped, the lock is free again.
        d = Daemon(load(env=env))
        d.open()
        d.lock.release()
        d.ledger.dispose()
    finally:
        if first.poll() is None:
            first.kill()


class _Hooks:
    """A local webhook receiver (127.0.0.1, an ephemeral port): the first `fail` posts get a 500."""

    def __init__(self, fail: int = 0):
        import http.server
        self.bodies: list[dict] = []
        self.fail = fail
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hooks.fail > 0:
                    hooks.fail -= 1
                    self.send_response(500)
                else:
                    hooks.bodies.append(body)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=s3cret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_two_brokers_in_one_daemon_one_failing_does_not_stop_the_other(tmp_path, monkeypatch):
    from engine.shell import logs
    from engine.shell.alerts import Alerter
    hooks = _Hooks(fail=1)                                         # the first post is retried
    env = make_world(tmp_path)
    f = tmp_path / "settings.toml"
    f.write_text(f.read_text().replace("[broker.simulated]\n", "[broker.simulated]\n")
                 .split("[policies]")[0].replace("[broker.simulated]", "[[brokers]]\nname = \"paper\"\n"
                                                 "[brokers.simulated]")
                 + '[[brokers]]\nname = "alpaca-b"\nkind = "alpaca"\n[brokers.alpaca]\nkey_env = "NO_SUCH_KEY"\n'
                   'secret_env = "NO_SUCH_SECRET"\n'
                 + "[policies]" + f.read_text().split("[policies]")[1]
                 + f'[alerts]\nwebhooks = ["{hooks.url}"]\nretries = 3\n')
    s = load(env=env)
    assert [b.name for b in s.brokers] == ["paper", "alpaca-b"]
    led = Ledger(s.database_url)
    broker = open_broker(s, "paper")
    ensure_house(led, broker, "paper")
    policies.add_account(led, "a", "Tech", tmp_path / "policy.pie", broker="paper")
    led.deposit("a", "300")
    led.dispose()
    alerter = Alerter(s.webhooks, retries=s.alert_retries, backoff=0.01)
    logs.configure(json=True, alerts=alerter)
    monkeypatch.setenv("PIES_NOW", "2026-11-24T15:00:00+00:00")
    d = Daemon(s, now=lambda: datetime(2026, 11, 24, 10, 0, tzinfo=NY))
    try:
        with capture_logs() as captured:
            d.open()                                               # the Alpaca account has no keys
            report = d.run_window("open", "paper")
            skipped = d.run_window("open", "alpaca-b")
        assert report is not None and report["problems"] == [] and len(report["orders"]) == 3
        assert skipped is None
        unavailable = [x for x in captured if x["event"] == "broker account unavailable"]
        assert unavailable and unavailable[0]["broker"] == "alpaca-b" and "NO_SUCH_KEY" in unavailable[0]["reason"]
        assert any(x["event"] == "window not run: the broker account is unavailable" for x in captured)
        nxt = d.upcoming()
        assert {"broker": "paper", "window": "open", "at": "2026-11-25T09:35:00-05:00",
                "timezone": "America/New_York"} in nxt
        assert any(x.get("broker") == "alpaca-b" and "error" in x for x in nxt)
    finally:
        logs.configure(json=True)
        d.lock.release()
        d.ledger.dispose()
    # capture_logs replaces the processors, so send one marked line through the real chain
    logs.configure(json=True, alerts=alerter)
    structlog.get_logger("t").error("ledger and broker disagree", window=7, problem="main VTI: ...", alert=True,
                                    api_token="hunter2")
    alerter.flush()
    logs.configure(json=True)
    hooks.close()
    (body,) = hooks.bodies
    assert body["alert"] == "ledger and broker disagree" and body["window"] == 7 and body["api_token"] == "***"
    assert "hunter2" not in json.dumps(body) and alerter.sent == 1


def test_piped_logs_keep_the_traceback_as_a_field(capsys):
    from engine.shell import logs
    logs.configure(json=True)
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("t").exception("window failed")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "window failed" and "Traceback" in line["exception"] and "boom" in line["exception"]
