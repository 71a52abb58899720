"""A page of `pies accounts` through the HTTP API at N accounts, on SQLite and PostgreSQL.

    python bench/accounts.py                                      # N = 100k, PostgreSQL
    python bench/accounts.py --n 1000000 --db postgresql --db sqlite
    python bench/accounts.py --n 1000000 --keep bench_1m           # build once, time again later

The ledger is bench/window.py's (accounts on 20-slice, 2-level pies of one policy version,
already invested, a third with a pending event), streamed in (COPY on PostgreSQL) and not
timed, plus one closed window whose prices value the accounts. Times GET
/api/v1/accounts?size=100 (FastAPI's TestClient: the whole request, token check included)
at the first page, the middle and last pages by cursor (`after=`, how a client pages on),
the same two by `page=` (an offset, kept for old clients), and with a search, and prints
the median and the slowest of 5 requests each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from adapters.ledger.access import Access  # noqa: E402
from adapters.ledger.schema import Window  # noqa: E402
from adapters.ledger.store import Ledger  # noqa: E402
from config.settings import load  # noqa: E402
from engine.shell.api import Limiter, create_app  # noqa: E402
from window import DAY, PG, policy_text, setup  # noqa: E402

SIZE = 100


def timed(client: TestClient, headers: dict[str, str], query: str, repeat: int = 5) -> tuple[float, float, dict]:
    times, doc = [], {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(f"/api/v1/accounts?{query}", headers=headers)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        doc = r.json()
    return statistics.median(times), max(times), doc


def run(db: str, n: int, keep: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        schema, built = None, 0
        admin = create_engine(PG, isolation_level="AUTOCOMMIT")
        if db == "sqlite":
            path = Path(tempfile.gettempdir()) / f"pies-{keep}.db" if keep else workdir / "bench.db"
            built = int(path.exists())
            url = f"sqlite:///{path}"
        else:
            schema = keep or f"bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as c:
                built = c.execute(text("select count(*) from information_schema.tables where table_schema = :s "
                                       "and table_name = 'windows'"), {"s": schema}).scalar()
                if not built:
                    c.execute(text(f'create schema if not exists "{schema}"'))
            url = f"{PG}{'&' if '?' in PG else '?'}options=-csearch_path%3D{schema}"
        try:
            t0 = time.perf_counter()
            reused = bool(keep and built)
            if reused:                                         # a ledger kept from an earlier run
                led = Ledger(url)
                with led.tx() as s:
                    n = s.scalar(text("select count(*) from accounts where not is_house"))
                    priced = s.scalar(text("select count(*) from windows where prices is not null"))
            else:
                led, _ = setup(url, n, workdir)
                priced = 0
            rng = random.Random(11)                            # the prices setup() gave the broker
            policy_text(rng)
            prices = {f"S{i}": Decimal(rng.randint(1000, 60000)).scaleb(-2) for i in range(400)}
            if not priced:
                with led.tx() as s:                     # the last window's prices value the accounts
                    s.add(Window(broker="main", trading_date=DAY, name="open", step="closed",
                                 closed_at=datetime.now(timezone.utc), prices={k: str(v) for k, v in prices.items()},
                                 report={}))
            if not reused and db == "postgresql":       # what autovacuum does after a bulk load
                with admin.connect() as c:
                    for table in ("accounts", "holdings", "events"):
                        c.execute(text(f'vacuum analyze "{schema}".{table}'))
            token = Access(led).create(f"bench-{uuid.uuid4().hex[:6]}", "viewer")
            setup_s = time.perf_counter() - t0
            settings = load(env={"PIES_DATABASE_URL": url, "PIES_DATA_DIR": str(workdir / "data")})
            asked: list[int] = []

            def live(symbols: list[str]):               # the broker is never asked: the window priced all
                asked.append(len(symbols))
                return {s: prices[s] for s in symbols}
            client = TestClient(create_app(settings, ledger=led, live_prices=live, limiter=Limiter()))
            headers = {"Authorization": f"Bearer {token}"}
            last = (n + SIZE - 1) // SIZE
            names = sorted(f"a{i}" for i in range(n))          # bench/window.py's names, in the index's order
            rows = []
            for label, query in (("first page", f"size={SIZE}"),
                                 ("middle page (after=)", f"size={SIZE}&after={names[(last // 2 - 1) * SIZE - 1]}"),
                                 ("last page (after=)", f"size={SIZE}&after={names[(last - 1) * SIZE - 1]}"),
                                 ("middle page (page=)", f"page={last // 2}&size={SIZE}"),
                                 ("last page (page=)", f"page={last}&size={SIZE}"),
                                 ("search a12", f"size={SIZE}&search=a12")):
                med, worst, doc = timed(client, headers, query)
                assert doc["total"] >= len(doc["accounts"]) > 0 and not asked
                rows.append(f"{label} {med * 1000:.0f} ms (max {worst * 1000:.0f})")
            first = client.get(f"/api/v1/accounts?size={SIZE}", headers=headers).json()
            rows.append(f"total {first['total']:,} ({'exact' if first.get('total_exact', True) else 'estimate'})")
            led.dispose()
        finally:
            if schema and not keep:
                with admin.connect() as c:
                    c.execute(text(f'drop schema "{schema}" cascade'))
        print(f"{db:10} N={n:>9,}  GET /api/v1/accounts size={SIZE}: " + ", ".join(rows) + f"  (setup {setup_s:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    ap.add_argument("--keep", metavar="NAME", help="build the ledger once and keep it (PostgreSQL: in this schema; "
                                                    "SQLite: in $TMPDIR/pies-NAME.db); later runs time it again "
                                                    "without building it")
    args = ap.parse_args()
    for db in args.db or ["postgresql"]:
        for n in args.n or [100_000]:
            run(db, n, args.keep)


if __name__ == "__main__":
    main()
