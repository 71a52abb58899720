"""One window at a time per broker account, whoever starts it: two `pies window run` at
once, the CLI and the API, three API calls at once. Exactly one runs, the others are
refused naming the holder (exit 2, a Conflict; HTTP 409), no client order id reaches the (simulated)
broker twice, and the ledger's orders are the broker's. Real processes on both databases;
the broker fills after a delay so the windows overlap for seconds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from adapters.ledger.access import Access
from adapters.ledger.schema import Order
from adapters.ledger.store import Ledger
from config.settings import load
from engine.shell.wiring import open_broker

from day_one import POLICY, PRICES, day_one

ROOT = Path(__file__).resolve().parents[2]


def _settings(root: Path, extra: str = "") -> None:
    (root / "settings.toml").write_text(
        f'[broker.simulated]\nprices_file = "{root / "prices.csv"}"\nstarting_cash = "500000.00"\n{extra}'
        f'[settle]\npoll_seconds = 0.5\n[policies]\nfiles = ["{root / "policy.pie"}"]\n')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def world(db_url, tmp_path):
    """Accounts funded on day 1; day 2's events recorded; the broker now fills 2 s after an
    order and writes a line per order placed; an operator token."""
    root = tmp_path / "w"
    root.mkdir()
    (root / "policy.pie").write_text(POLICY)
    (root / "prices.csv").write_text(PRICES)
    _settings(root)
    env = {"PIES_CONFIG": str(root / "settings.toml"), "PIES_DATABASE_URL": db_url, "PIES_DATA_DIR": str(root / "data"),
           "PIES_NOW": "2026-11-24T15:00:00+00:00"}
    led = Ledger(db_url)
    prices = day_one(led, open_broker(load(env=env)), root / "policy.pie")
    for i in range(8):
        led.deposit(f"a{i}", f"{300 + i}", key=f"k2-{i}")
    led.withdraw("a1", "300", prices, key="w2-1")
    led.rebalance("a5", "Bonds", key="r2-5")
    token = Access(led).create("ops", "operator")
    led.dispose()
    journal = root / "submissions.log"
    _settings(root, f'fill_delay = 2.0\njournal_file = "{journal}"\n')
    return {"env": {**os.environ, **env}, "root": root, "journal": journal, "token": token, "url": db_url}


def cli_run(w) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine.shell.cli", "window", "run", "--json", "--force"],
                            cwd=ROOT, env=w["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Server:
    def __init__(self, w):
        self.port = _free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.shell.cli", "serve", "--port", str(self.port)],
                                     cwd=ROOT, env=w["env"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.base = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {w['token']}"}
        for _ in range(300):
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.proc.stderr.read()
            time.sleep(0.1)
        raise AssertionError("pies serve did not start")

    def run(self) -> httpx.Response:
        return httpx.post(self.base + "/api/v1/windows/run", headers=self.headers, timeout=60)

    def follow(self, location: str) -> dict:
        for _ in range(1200):
            doc = httpx.get(self.base + location, headers=self.headers, timeout=10).json()
            if doc["status"] != "running":
                return doc
            time.sleep(0.1)
        raise AssertionError("the window run never ended")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            return self.proc.communicate(timeout=20)[1]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()[1]


def check_books(w) -> int:
    """No client order id placed twice; every order of the ledger is the broker's, status
    and fill alike. Returns how many orders were placed."""
    placed = [line.split()[0] for line in w["journal"].read_text().splitlines()] if w["journal"].exists() else []
    assert len(placed) == len(set(placed)), "a client order id was submitted twice"
    state = json.loads((w["root"] / "data" / "simulated-broker.json").read_text())
    led = Ledger(w["url"], upgrade=False)
    try:
        with led.tx() as s:
            mine = {o.client_order_id: o for o in s.scalars(select(Order).where(Order.window_id == 2))}
    finally:
        led.dispose()
    assert set(placed) == {c for c, o in mine.items() if o.broker_id} == \
        {c for c in state["orders"] if c in mine} != set()
    for coid in placed:
        o, b = mine[coid], state["orders"][coid]
        assert (o.status, o.filled_qty, o.broker_id) == (b["status"], Decimal(b["filled_qty"]), b["broker_id"]), coid
    return len(placed)


def test_two_cli_windows_at_once_one_runs_the_other_is_refused(world):
    procs = [cli_run(world), cli_run(world)]
    results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    ran = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] == 2]
    assert len(ran) == 1 and len(refused) == 1, [(c, e[-2000:]) for c, _, e in results]
    report = json.loads(ran[0][1])
    assert report["problems"] == [] and report["orders"]
    err = refused[0][2]
    assert "a window of broker account 'main' is running already" in err and "pid=" in err
    assert "Traceback" not in err and refused[0][1] == ""
    assert check_books(world) > 0


def test_the_cli_and_the_api_at_once_one_runs(world):
    server = Server(world)
    try:
        cli = cli_run(world)
        time.sleep(0.2)
        api = server.run()
        code, out, err = cli.wait(timeout=180), *cli.communicate()
        if api.status_code == 202:                        # the API won: the CLI was refused
            assert code == 2 and "running already (pies api (token ops) pid=" in err, err[-2000:]
            run = server.follow(api.headers["Location"])
            assert run["status"] == "closed", run
            window = httpx.get(server.base + run["links"]["window"], headers=server.headers).json()
        else:                                             # the CLI won: the API said 409
            assert api.status_code == 409 and code == 0, (api.text, err[-2000:])
            assert api.headers["content-type"].startswith("application/problem+json")
            assert "running already" in api.json()["detail"]
            window = {"report": json.loads(out), "step": "closed"}
        assert window["step"] == "closed" and window["report"]["problems"] == []
        assert "Traceback" not in err
    finally:
        assert "Traceback" not in server.stop()
    assert check_books(world) > 0


def test_three_api_calls_at_once_one_runs_two_are_refused(world):
    server = Server(world)
    try:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: server.run(), range(3)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [202, 409, 409], [a.text for a in answers]
        for a in answers:
            if a.status_code == 409:
                body = a.json()
                assert body["status"] == 409 and body["title"] == "conflict"
                assert "running already (pies api (token ops) pid=" in body["detail"]
        started = next(a for a in answers if a.status_code == 202)
        doc = started.json()
        assert doc["status"] == "running" and started.headers["Location"] == doc["links"]["run"]
        run = server.follow(started.headers["Location"])
        assert run["status"] == "closed" and run["error"] is None, run
        window = httpx.get(server.base + run["links"]["window"], headers=server.headers).json()
        assert window["step"] == "closed" and window["report"]["problems"] == []
        again = server.run()                              # closed now: returned as it is
        assert again.status_code == 200 and again.json()["already_closed"]
    finally:
        assert "Traceback" not in server.stop()
    assert check_books(world) > 0
