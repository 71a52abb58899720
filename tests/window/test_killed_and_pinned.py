"""The workers of a window killed with SIGKILL stop within seconds and commit nothing more;
the daemon's clock is PIES_NOW like every other command's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.ledger.store import Ledger
from adapters.ledger.window_repo import WindowRepository
from config.settings import load
from engine.shell import policies
from engine.shell.wiring import ensure_house, open_broker

ROOT = Path(__file__).resolve().parents[2]


def world(tmp_path: Path, db_url: str, extra: str = "", accounts: int = 8) -> dict[str, str]:
    (tmp_path / "policy.pie").write_text('pie "Tech" equal { AAPL MSFT NVDA }\n')
    (tmp_path / "prices.csv").write_text("AAPL,172.78\nMSFT,415\nNVDA,131.31\n")
    (tmp_path / "settings.toml").write_text(
        f'[broker.simulated]\nprices_file = "{tmp_path / "prices.csv"}"\n'
        f'[policies]\nfiles = ["{tmp_path / "policy.pie"}"]\n{extra}')
    env = {"PIES_CONFIG": str(tmp_path / "settings.toml"), "PIES_DATA_DIR": str(tmp_path / "data"),
           "PIES_DATABASE_URL": db_url, "PIES_NOW": "2026-11-24T15:00:00+00:00"}   # 10:00 in New York, a Tuesday
    s = load(env=env)
    led = Ledger(s.database_url)
    ensure_house(led, open_broker(s), "main")
    for i in range(accounts):
        policies.add_account(led, f"a{i}", "Tech", tmp_path / "policy.pie")
        led.deposit(f"a{i}", "250")
    led.dispose()
    return {**os.environ, **env}


def _children(pid: int) -> list[int]:
    """The pool's worker processes of `pid` (spawned: their command line says spawn_main)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmd:
            found.append(int(d.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_workers_of_a_killed_window_stop_and_commit_nothing_more(tmp_path, db_url):
    env = world(tmp_path, db_url, "[scale]\nworkers = 2\nshard_size = 2\n")
    paused = tmp_path / "paused"
    # Shard 0 holds its transaction open for a minute in a worker; the window is killed meanwhile.
    run = subprocess.Popen([sys.executable, "-m", "engine.shell.cli", "window", "run", "--force"], cwd=ROOT,
                           env={**env, "PIES_TEST_PAUSE_AT": "shard:planned:0=60", "PIES_TEST_PAUSED": str(paused)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if paused.exists() or run.poll() is not None:
                break
            time.sleep(0.1)
        assert paused.exists(), "the worker never reached shard 0"
        workers = _children(run.pid)
        assert workers
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        for _ in range(100):                      # a bound, not a speed: 10 s where they used to go on for 30+
            if not any(_alive(p) for p in workers):
                break
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "workers outlived their window by 10 s"
    finally:
        if run.poll() is None:
            run.kill()
    led = Ledger(db_url, upgrade=False)
    try:
        repo = WindowRepository(led, "main")
        with repo.step(1) as tx:
            assert not tx.shard_done("planned", 0)            # the paused shard never committed
    finally:
        led.dispose()
    again = subprocess.run([sys.executable, "-m", "engine.shell.cli", "window", "run", "--force", "--json"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["problems"] == []


def test_the_daemon_runs_the_window_of_the_day_pies_now_says(tmp_path):
    env = world(tmp_path, f"sqlite:///{tmp_path / 'data' / 'pies.db'}", accounts=1)
    proc = subprocess.Popen([sys.executable, "-m", "engine.shell.cli", "daemon"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(json.loads(line))
            if lines[-1]["event"] in ("window report", "window skipped", "today's window does not run"):
                break
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    report = next((x for x in lines if x["event"] == "window report"), None)
    assert report is not None, [x["event"] for x in lines]
    assert report["day"] == "2026-11-24" and report["problems"] == [] and report["orders"] == 3
