"""One trading window for N accounts on the simulated broker, on SQLite and PostgreSQL.

    python bench/window.py                                        # N = 10k and 100k, both databases
    python bench/window.py --n 1000000 --db postgresql --workers 2

Accounts follow 20-slice, 2-level pies and are already invested, each holding in `--lots`
tax lots (default 2, bought on different days of 2025 at prices either side of today's);
a third have an event (deposits mostly, some withdrawals and rebalances). The window books
every trade (docs/books.md); `--no-books` skips the books step (for measuring only: what the
window costs without lots; the ledger it leaves has no lots for its trades). Setup is streamed in (COPY on
PostgreSQL, 10,000 accounts at a time) and not timed. Prints the seconds of each window
step, the total, and the peak memory: this process's, and all processes' together at most
(this one's plus each worker at the largest worker's). PostgreSQL comes from
PIES_TEST_POSTGRES_URL (default: the local server, database `test`), in a schema of its
own that is dropped afterwards. After setup the ledger is vacuumed and checkpointed, so the
window does not pay for the setup's writes (hint bits, a checkpoint of gigabytes).

`--reuse` (PostgreSQL) keeps the set-up ledger in a database of its own, `pies_bench_N_L`
(N accounts, L lots), with its files in bench/.cache/, and later runs start from a copy of
it (CREATE DATABASE ... TEMPLATE, STRATEGY FILE_COPY): a million accounts set up once
(12-17 minutes) and then a minute or two per run; `--repeat K` runs the window K times.
`--drop` removes the kept database and files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import random
import resource
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, make_url, text  # noqa: E402

from adapters.ledger import bulk  # noqa: E402

from adapters.broker.simulated import SimulatedBroker, SimulatedConfig  # noqa: E402
from adapters.ledger.schema import Account, Event, Holding, LotRow  # noqa: E402
from adapters.ledger.store import Ledger  # noqa: E402
from engine.shell.window import STEPS, WindowOptions, WindowRunner  # noqa: E402
from engine.shell import policies  # noqa: E402

PG = os.environ.get("PIES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAY = date(2026, 11, 24)


def policy_text(rng: random.Random, pies: int = 8) -> tuple[str, dict[str, list[tuple[str, str]]]]:
    """Pies of 12 securities plus a nested pie of 8: (text, pie -> [(path, symbol)])."""
    out, layout = [], {}
    for p in range(pies):
        syms = rng.sample(range(400), 20)
        top = "\n".join(f"    S{s}" for s in syms[:12])
        inner = "\n".join(f"        S{s}" for s in syms[12:])
        out.append(f'pie "P{p}" {{\n    pie "Inner" 40% equal {{\n{inner}\n    }}\n    pie "Top" 60% equal {{\n{top}\n    }}\n}}\n')
        layout[f"P{p}"] = [(f"Top/S{s}", f"S{s}") for s in syms[:12]] + [(f"Inner/S{s}", f"S{s}") for s in syms[12:]]
    return "\n".join(out), layout


def _lots(rng: random.Random, account: int, sym: str, q: Decimal, price: Decimal, k: int) -> list[tuple]:
    """`k` lots of one holding: its shares split, each bought on its own day of 2025 at a
    price up to 30 % either side of `price`."""
    out, left = [], q
    for j in range(k):
        shares = left if j == k - 1 else (q / k).quantize(Decimal("0.000000001"))
        left -= shares
        day = date(2025, 1, 2) + timedelta(days=rng.randrange(360))
        basis = (shares * price * Decimal(rng.randint(70, 130)) / 100).quantize(Decimal("0.01"))
        out.append((account, sym, day, day, shares, basis, Decimal("0.00"), Decimal(0), False))
    return out


def _rows(n: int, rng: random.Random, layout, prices, version: int, created: datetime, positions, lots: int = 0):
    """Accounts, holdings, lots and events of accounts 2..n+1, 10,000 accounts at a time."""
    for lo in range(1, n + 1, 10_000):
        accounts, holdings, events, lot_rows = [], [], [], []
        for i in range(lo, min(n, lo + 9_999) + 1):
            pie = f"P{rng.randrange(8)}"
            accounts.append((i + 1, f"a{i}", pie, version, "m1", "main", Decimal("0.00"), False, created, "active"))
            for path, sym in layout[pie]:
                q = (Decimal(rng.randint(10_000, 2_000_000)) / prices[sym]).quantize(Decimal("0.000000001"))
                holdings.append((i + 1, path, sym, q))
                positions[sym] += q
                if lots:
                    lot_rows.extend(_lots(rng, i + 1, sym, q, prices[sym], lots))
            if i % 3 == 0:
                r = rng.random()
                kind, amount, path = ("deposit", Decimal(rng.randint(1000, 200000)).scaleb(-2), None) if r < 0.7 else \
                    ("withdrawal", Decimal(rng.randint(100, 5000)).scaleb(-2), None) if r < 0.9 else \
                    ("rebalance", None, "Inner")
                events.append((i + 1, f"bench-{i}", kind, amount, path, "pending", created))
        yield accounts, holdings, events, lot_rows


LOT_COLS = ("account_id", "symbol", "bought", "acquired", "shares", "basis", "wash_adjustment", "replaced", "closed")
ACCOUNT_COLS = ("id", "name", "pie", "policy_version_id", "rules", "broker", "cash", "is_house", "created_at", "status")
HOLDING_COLS = ("account_id", "path", "symbol", "shares")
EVENT_COLS = ("account_id", "key", "kind", "amount", "path", "status", "created_at")


def setup(url: str, n: int, workdir: Path, lots: int = 2) -> tuple[Ledger, SimulatedBroker]:
    """The ledger and the broker, streamed in 10,000 accounts at a time (COPY on PostgreSQL)."""
    rng = random.Random(11)
    text_, layout = policy_text(rng)
    (workdir / "policy.pie").write_text(text_)
    prices = {f"S{i}": Decimal(rng.randint(1000, 60000)).scaleb(-2) for i in range(400)}
    (workdir / "prices.csv").write_text("".join(f"{s},{p}\n" for s, p in prices.items()))
    led = Ledger(url)
    version, _ = policies.apply_file(led, workdir / "policy.pie")
    positions: dict[str, Decimal] = defaultdict(Decimal)
    cash = Decimal(100_000_000 + 1_000 * n).quantize(Decimal("0.01"))    # the broker's: more than all deposits
    created = datetime.now(timezone.utc) - timedelta(minutes=5)
    with led.tx() as s:
        s.add(Account(id=1, name="house:main", broker="main", cash=cash, is_house=True, rules="m1"))
        s.flush()
        for accounts, holdings, events, lot_rows in _rows(n, rng, layout, prices, version.id, created, positions,
                                                          lots):
            bulk.insert_rows(s, Account.__table__, ACCOUNT_COLS, accounts)
            bulk.insert_rows(s, Holding.__table__, HOLDING_COLS, holdings)
            bulk.insert_rows(s, Event.__table__, EVENT_COLS, events)
            bulk.insert_rows(s, LotRow.__table__, LOT_COLS, lot_rows)
    if led.engine.dialect.name == "postgresql":
        with led.engine.begin() as c:
            c.exec_driver_sql("select setval(pg_get_serial_sequence('accounts', 'id'), (select max(id) from accounts))")
        with led.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("vacuum analyze")         # the setup's hint bits and statistics, not the window's
            c.exec_driver_sql("checkpoint")             # nor a checkpoint of the setup's gigabytes
    (workdir / "start.json").write_text(json.dumps({"cash": str(cash),
                                                    "positions": {k: str(v) for k, v in sorted(positions.items())}}))
    return led, broker_of(workdir)


def broker_of(workdir: Path) -> SimulatedBroker:
    """The simulated broker holding what setup left in `workdir` (start.json)."""
    start = json.loads((workdir / "start.json").read_text())
    return SimulatedBroker(SimulatedConfig(state_file=workdir / "broker.json", prices_file=workdir / "prices.csv",
                                           starting_cash=Decimal(start["cash"]),
                                           starting_positions={k: Decimal(v) for k, v in start["positions"].items()}),
                           now=lambda: datetime(2026, 11, 24, 9, 40, tzinfo=timezone.utc), sleep=lambda s: None)


BOOK = WindowRunner._book

CACHE = Path(__file__).resolve().parent / ".cache"


def _admin():
    return create_engine(PG, isolation_level="AUTOCOMMIT")


def _url(database: str) -> str:
    """PG's server, another database on it."""
    return make_url(PG).set(database=database).render_as_string(hide_password=False)


def _exists(admin, name: str) -> bool:
    with admin.connect() as c:
        return c.execute(text("select 1 from pg_database where datname = :n"), {"n": name}).first() is not None


@contextmanager
def reused(n: int, lots: int, workdir: Path) -> Iterator[tuple[str, float]]:
    """(the URL of a fresh copy of the kept ledger, setup seconds or 0 when it was kept):
    sets the ledger up into `pies_bench_N_L` first if it is not there; the copy is dropped
    afterwards, the kept one stays."""
    keep, admin = f"pies_bench_{n}_{lots}", _admin()
    cache = CACHE / keep
    setup_s = 0.0
    kept = _exists(admin, keep)
    if not kept or not (cache / "start.json").exists():
        with admin.connect() as c:
            if kept:                       # its files are gone: set it up again
                c.execute(text(f'drop database "{keep}"'))
            c.execute(text(f'create database "{keep}"'))
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        t0 = time.perf_counter()
        led, _ = setup(_url(keep), n, cache, lots)
        led.dispose()
        setup_s = time.perf_counter() - t0
    copy = f"{keep}_run_{uuid.uuid4().hex[:6]}"
    with admin.connect() as c:
        c.execute(text(f'create database "{copy}" template "{keep}" strategy file_copy'))
        c.execute(text("checkpoint"))
    for f in ("policy.pie", "prices.csv", "start.json"):
        shutil.copy(cache / f, workdir / f)
    try:
        yield _url(copy), setup_s
    finally:
        with admin.connect() as c:
            c.execute(text(f'drop database if exists "{copy}" with (force)'))


def drop_kept() -> None:
    admin = _admin()
    with admin.connect() as c:
        for (name,) in c.execute(text("select datname from pg_database where datname like 'pies\\_bench\\_%'")):
            c.execute(text(f'drop database "{name}" with (force)'))
            print("dropped", name)
    shutil.rmtree(CACHE, ignore_errors=True)


@contextmanager
def database(db: str, workdir: Path) -> Iterator[str]:
    """The URL of an empty ledger: a file in `workdir`, or a PostgreSQL schema of its own
    that is dropped afterwards."""
    if db == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'create schema "{schema}"'))
    try:
        yield f"{PG}{'&' if '?' in PG else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'drop schema "{schema}" cascade'))


@contextmanager
def ledger(db: str, n: int, lots: int, workdir: Path, reuse: bool) -> Iterator[tuple[Ledger, SimulatedBroker, float]]:
    """The set-up ledger and broker, and the seconds setup took."""
    if reuse:
        with reused(n, lots, workdir) as (url, setup_s):
            yield Ledger(url, upgrade=False), broker_of(workdir), setup_s
        return
    with database(db, workdir) as url:
        t0 = time.perf_counter()
        led, broker = setup(url, n, workdir, lots)
        yield led, broker, time.perf_counter() - t0


def run(db: str, n: int, workers: int = 1, shard_size: int = 5_000, lots: int = 2, books: bool = True,
        reuse: bool = False) -> None:
    WindowRunner._book = BOOK if books else (lambda self, w: None)   # no books: for measuring only
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with ledger(db, n, lots, workdir, reuse) as (led, broker, setup_s):
            marks: list[tuple[str, float]] = []
            runner = WindowRunner(led, broker, "main", WindowOptions(settle_timeout=5, workers=workers,
                                                                     shard_size=shard_size),
                                  crash=lambda step: marks.append((step, time.perf_counter())))
            start = time.perf_counter()
            report = runner.run(DAY, accounts=False)
            total = time.perf_counter() - start
            led.dispose()
        prev = start
        steps = []
        for step, t in marks:
            if step in STEPS or step in ("settled", "booked"):
                steps.append(f"{step} {t - prev:.2f}")
                prev = t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        # All processes together, at most: this one's peak plus each worker at the largest worker's peak.
        together = peak + (workers * child if workers > 1 and db != "sqlite" else 0)
        cpu, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"{db:10} N={n:>7,}  lots {lots}/holding{'' if books else ' (no books step)'}  workers {workers}  window {total:6.1f} s  (setup {setup_s:.1f} s)  "
              f"orders {len(report['orders'])}  problems {len(report['problems'])}  peak {peak:,.0f} MiB "
              f"(all processes at most {together:,.0f} MiB)")
        print("    " + ", ".join(steps))
        print(f"    CPU: this process {cpu.ru_utime + cpu.ru_stime:.1f} s (setup included), its workers "
              f"{kids.ru_utime + kids.ru_stime:.1f} s (PostgreSQL's own not counted); load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    ap.add_argument("--workers", type=int, default=1, help="processes that plan shards (PostgreSQL)")
    ap.add_argument("--shard-size", type=int, default=5_000)
    ap.add_argument("--lots", type=int, default=2, help="tax lots per holding at the start (0: none)")
    ap.add_argument("--no-books", dest="books", action="store_false",
                    help="skip the window's books step (to measure what lots cost; the ledger is then incomplete)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the set-up ledger in a database of its own and start later runs from a copy (PostgreSQL)")
    ap.add_argument("--repeat", type=int, default=1, help="windows to run, each on a fresh ledger")
    ap.add_argument("--drop", action="store_true", help="drop the kept ledgers of --reuse and stop")
    args = ap.parse_args()
    if args.drop:
        drop_kept()
        return
    if args.reuse and (args.db or ["sqlite"]) != ["postgresql"]:
        ap.error("--reuse needs --db postgresql")
    if args.repeat > 1:
        # Each window in a process of its own: its memory and CPU figures are its own, and its
        # workers are not forked from a parent that already ran a million accounts.
        once, skip = [], False
        for a in sys.argv[1:]:
            if not skip and not a.startswith("--repeat"):
                once.append(a)
            skip = a == "--repeat"                          # its value follows it
        for _ in range(args.repeat):
            subprocess.run([sys.executable, __file__, *once], check=True)
        return
    for db in args.db or ["sqlite", "postgresql"]:
        for n in args.n or [10_000, 100_000]:
            run(db, n, args.workers, args.shard_size, args.lots, args.books, args.reuse)


if __name__ == "__main__":
    main()
