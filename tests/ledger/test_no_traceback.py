"""No traceback for what an operator's machine can do to a command: a read-only data
directory, a PostgreSQL server that goes away (before a command and in the middle of a
window), a mistyped data directory. Each command is run as a real process; its output is
scanned for `Traceback`; it ends with one line and an exit code that says what to do:
2 fix something, 75 run it again once the database is back."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.ledger.schema import Order
from adapters.ledger.store import Ledger

ROOT = Path(__file__).resolve().parents[2]
PIES = [sys.executable, "-m", "engine.shell.cli"]
POLICY = 'pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\n'


def setup_world(tmp_path: Path, db_url: str, extra: str = "") -> dict[str, str]:
    (tmp_path / "core.pie").write_text(POLICY)
    (tmp_path / "prices.csv").write_text("VTI,250\nBND,72.5\nTIP,110\n")
    (tmp_path / "settings.toml").write_text(
        f'[broker.simulated]\nprices_file = "{tmp_path / "prices.csv"}"\nstarting_cash = "50000.00"\n{extra}'
        f'[settle]\npoll_seconds = 0.5\n[policies]\nfiles = ["{tmp_path / "core.pie"}"]\n')
    env = {**os.environ, "PIES_DATABASE_URL": db_url, "PIES_DATA_DIR": str(tmp_path / "data"),
           "PIES_CONFIG": str(tmp_path / "settings.toml"), "PIES_NOW": "2026-11-24T15:00:00+00:00"}
    for args in (("account", "add", "alice", "--pie", "Core"), ("account", "add", "bob", "--pie", "Core"),
                 ("deposit", "alice", "1000"), ("deposit", "bob", "700")):
        r = subprocess.run(PIES + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    return env


def one_line_error(r: subprocess.CompletedProcess, codes: tuple[int, ...]) -> str:
    said = r.stdout + r.stderr
    assert "Traceback" not in said, said[-3000:]
    assert r.returncode in codes, (r.returncode, said[-2000:])
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, said[-2000:]
    return errors[0]


# --- a read-only data directory ------------------------------------------------------------

def _can_mount_read_only(tmp_path: Path) -> bool:
    d = tmp_path / "probe"
    d.mkdir()
    r = subprocess.run(["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{d}" "{d}" && touch "{d}/x"'],
                       capture_output=True, text=True)
    return "Read-only file system" in r.stderr


COMMANDS_ON_A_READ_ONLY_DIR = [
    ("deposit", "alice", "10"),
    ("token", "create", "someone", "--role", "admin"),
    ("window", "run", "--force"),
    ("daemon",),
    ("cancel", "1"),
    ("account", "add", "carol", "--pie", "Core"),
]


def test_a_read_only_data_directory_is_one_line_never_a_traceback(tmp_path, db_url):
    """SQLite: the ledger itself is in the directory. PostgreSQL: the ledger is writable but
    the simulated broker's state, the window's and the daemon's files are not."""
    if shutil.which("unshare") is None or not _can_mount_read_only(tmp_path):
        pytest.skip("needs `unshare -m` and a bind mount (root in a container) to make a directory read-only")
    sqlite = db_url.startswith("sqlite")
    env = setup_world(tmp_path, f"sqlite:///{tmp_path / 'data' / 'pies.db'}" if sqlite else db_url)
    data = tmp_path / "data"
    day1 = subprocess.run(PIES + ["window", "run", "--force"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**env, "PIES_NOW": "2026-11-23T15:00:00+00:00"})       # the broker's books exist
    assert day1.returncode == 0 and (data / "simulated-broker.json").exists(), day1.stderr[-2000:]
    assert subprocess.run(PIES + ["deposit", "alice", "100"], cwd=ROOT, env=env).returncode == 0
    for args in COMMANDS_ON_A_READ_ONLY_DIR if sqlite else [("window", "run", "--force"), ("daemon",)]:
        script = f'mount --bind -o ro "{data}" "{data}" && exec "$@"'
        r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *PIES, *args], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
        line = one_line_error(r, (2, 3))           # 3: the simulated broker cannot keep its books (a broker error)
        assert "read-only" in line.lower() or "readonly" in line.lower(), (args, line)
    ok = subprocess.run(PIES + ["history", "alice", "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert [e["kind"] for e in json.loads(ok.stdout)["events"]] == ["deposit", "deposit"]   # nothing was written


# --- PostgreSQL going away ----------------------------------------------------------------

class Proxy:
    """A TCP relay to the PostgreSQL server that can be cut (every connection closed, new
    ones refused) and restored on the same port: an outage, from the client's side."""

    def __init__(self, target: tuple[str, int], port: int = 0):
        self.target = target
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for attempt in range(50):                     # the port of a relay just cut may take a moment
            try:
                self.srv.bind(("127.0.0.1", port))
                break
            except OSError:
                if attempt == 49 or not port:
                    raise
                time.sleep(0.1)
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        try:
            self.srv.shutdown(socket.SHUT_RDWR)       # wakes the accepting thread: the port is free at once
        except OSError:
            pass
        self.srv.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def _through(db_url: str, port: int) -> str:
    return db_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{port}/")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_commands_while_postgresql_is_down_say_try_again(tmp_path, db_url):
    if "@127.0.0.1:5432/" not in db_url:
        pytest.skip("the relay needs the server at 127.0.0.1:5432")
    setup_world(tmp_path, db_url)
    proxy = Proxy(("127.0.0.1", 5432))
    proxy.cut()                                     # the port is known and nothing answers on it
    env = {**os.environ, "PIES_DATABASE_URL": _through(db_url, proxy.port), "PIES_DATA_DIR": str(tmp_path / "data"),
           "PIES_CONFIG": str(tmp_path / "settings.toml"), "PIES_NOW": "2026-11-24T15:00:00+00:00"}
    for args in (("accounts",), ("deposit", "alice", "10"), ("token", "create", "t", "--role", "admin"),
                 ("window", "run", "--force"), ("status",), ("history", "alice"), ("daemon",), ("serve",)):
        r = subprocess.run(PIES + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        line = one_line_error(r, (75,))
        assert "unavailable" in line and "run the command again" in line, (args, line)
        assert "postgres@" not in line                # never the credentials


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_lost_in_the_middle_of_a_window_is_one_line_and_a_rerun_finishes_it(tmp_path, db_url):
    if "@127.0.0.1:5432/" not in db_url:
        pytest.skip("the relay needs the server at 127.0.0.1:5432")
    journal = tmp_path / "placed.log"
    setup_world(tmp_path, db_url, f'fill_delay = 2.0\njournal_file = "{journal}"\n')
    proxy = Proxy(("127.0.0.1", 5432))
    env = {**os.environ, "PIES_DATABASE_URL": _through(db_url, proxy.port), "PIES_DATA_DIR": str(tmp_path / "data"),
           "PIES_CONFIG": str(tmp_path / "settings.toml"), "PIES_NOW": "2026-11-24T15:00:00+00:00"}
    run = subprocess.Popen(PIES + ["window", "run", "--force"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    for _ in range(600):                           # the orders are out; the window waits for fills
        if journal.exists() and journal.read_text().strip():
            break
        time.sleep(0.1)
    proxy.cut()
    out, err = run.communicate(timeout=120)
    r = subprocess.CompletedProcess(run.args, run.returncode, out, err)
    line = one_line_error(r, (75,))
    assert "run" in line and "again" in line, line
    proxy = Proxy(("127.0.0.1", 5432), proxy.port)  # the server is back
    try:
        again = subprocess.run(PIES + ["window", "run", "--force", "--json"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=180)
    finally:
        proxy.cut()
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr[-3000:]
    assert json.loads(again.stdout)["problems"] == []
    placed = [x.split()[0] for x in journal.read_text().splitlines()]
    assert len(placed) == len(set(placed)) > 0                 # nothing sent twice
    state = json.loads((tmp_path / "data" / "simulated-broker.json").read_text())
    led = Ledger(db_url, upgrade=False)
    try:
        with led.tx() as s:
            mine = {o.client_order_id: (o.status, o.broker_id) for o in s.scalars(select(Order)) if o.broker_id}
    finally:
        led.dispose()
    assert mine == {c: (state["orders"][c]["status"], state["orders"][c]["broker_id"]) for c in placed}


# --- a mistyped data directory ------------------------------------------------------------

def test_a_read_command_on_a_missing_ledger_says_so_and_creates_nothing(tmp_path):
    typo = tmp_path / "dtaa"
    env = {k: v for k, v in os.environ.items() if k not in ("PIES_CONFIG", "PIES_DATABASE_URL")}
    env["PIES_DATA_DIR"] = str(typo)
    for args in (("accounts",), ("status",), ("windows",), ("history", "alice"), ("audit",), ("token", "list")):
        r = subprocess.run(PIES + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        line = one_line_error(r, (2,))
        assert f"no ledger at {typo / 'pies.db'}: nothing was created" in line, line
        assert not typo.exists(), args
    made = subprocess.run(PIES + ["db", "init"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0 and f"created the ledger at sqlite:///{typo / 'pies.db'}" in made.stdout
    assert (typo / "pies.db").exists()
    listed = subprocess.run(PIES + ["accounts", "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and json.loads(listed.stdout)["accounts"] == []
    again = subprocess.run(PIES + ["db", "init"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "exists already" in again.stdout


def test_the_first_write_creates_the_ledger_and_says_where(tmp_path):
    where = tmp_path / "fresh"
    env = {k: v for k, v in os.environ.items() if k not in ("PIES_CONFIG", "PIES_DATABASE_URL")}
    env["PIES_DATA_DIR"] = str(where)
    r = subprocess.run(PIES + ["token", "create", "me", "--role", "admin"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and f"created a new ledger at sqlite:///{where / 'pies.db'}" in r.stderr
    assert (where / "pies.db").exists()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_api_answers_503_problem_details_while_postgresql_is_down(tmp_path, db_url):
    if "@127.0.0.1:5432/" not in db_url:
        pytest.skip("the relay needs the server at 127.0.0.1:5432")
    from fastapi.testclient import TestClient

    from adapters.ledger.access import Access
    from config.settings import load
    from engine.shell.api import Limiter, create_app
    first = Ledger(db_url)
    token = Access(first).create("watcher", "viewer")
    first.dispose()
    proxy = Proxy(("127.0.0.1", 5432))
    led = Ledger(_through(db_url, proxy.port))
    try:
        app = create_app(load(env={"PIES_DATABASE_URL": led.url, "PIES_DATA_DIR": str(tmp_path / "data")}),
                         ledger=led, live_prices=lambda symbols: {}, limiter=Limiter())
        c, h = TestClient(app), {"Authorization": f"Bearer {token}"}
        assert c.get("/api/v1/accounts", headers=h).status_code == 200
        proxy.cut()
        r = c.get("/api/v1/accounts", headers=h)
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["Retry-After"] == "30" and "run the command again" in r.json()["detail"]
        assert "postgres@" not in r.text
    finally:
        proxy.cut()
        led.dispose()
