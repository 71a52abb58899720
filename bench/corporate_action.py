"""One corporate action (a 2-for-1 split) applied to N accounts' ledger, on SQLite and
PostgreSQL: what the window's corporate-action step costs at scale.

    python bench/corporate_action.py                           # N = 10k and 100k, both databases
    python bench/corporate_action.py --n 100000 --db postgresql

The ledger comes from bench/window.py's setup (accounts invested, `--lots` tax lots per
holding), with every pie holding the split symbol S0, so the split touches every account.
Not timed: setup. Timed, each in wall and CPU seconds of this process: reading the action's
book (holdings and lots of S0, locked), the core's decision (apply_action), and writing it
(holdings, lots, events, the action's row) with the commit. Prints the load average too:
the machine is shared, so wall time depends on it.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import window as bench_window  # noqa: E402

from adapters.ledger.window_repo import WindowRepository  # noqa: E402
from engine.core.corporate_actions import ActionKind, CorporateAction  # noqa: E402
from engine.core.corporate_moves import apply_action  # noqa: E402
from engine.shell.policies import COMPILER  # noqa: E402

DAY = date(2026, 11, 24)
SPLIT = CorporateAction("bench-split", ActionKind.FORWARD_SPLIT, "S0", DAY, old_rate=Decimal(1), new_rate=Decimal(2))


def policy_text(rng: random.Random, pies: int = 8):
    """bench/window.py's pies, each with S0 as its first top slice."""
    out, layout = [], {}
    for p in range(pies):
        syms = [0] + rng.sample(range(1, 400), 19)
        top = "\n".join(f"    S{s}" for s in syms[:12])
        inner = "\n".join(f"        S{s}" for s in syms[12:])
        out.append(f'pie "P{p}" {{\n    pie "Inner" 40% equal {{\n{inner}\n    }}\n    pie "Top" 60% equal {{\n{top}\n    }}\n}}\n')
        layout[f"P{p}"] = [(f"Top/S{s}", f"S{s}") for s in syms[:12]] + [(f"Inner/S{s}", f"S{s}") for s in syms[12:]]
    return "\n".join(out), layout


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t: tuple[float, float]) -> str:
    w, c = clock()
    return f"{w - t[0]:6.2f} s wall {c - t[1]:6.2f} s CPU"


def run(db: str, n: int, lots: int) -> None:
    bench_window.policy_text = policy_text
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with bench_window.database(db, workdir) as url:
            t0 = time.perf_counter()
            led, _ = bench_window.setup(url, n, workdir, lots)
            setup_s = time.perf_counter() - t0
            repo = WindowRepository(led, "main", COMPILER)
            w, _ = repo.open(DAY, "open")
            load = os.getloadavg()
            t_all = clock()
            t = clock()
            with repo.step(w.id) as tx:
                book = tx.action_book({"S0"})
                read = since(t)
                t = clock()
                _, moved = apply_action(book, SPLIT)
                decide = since(t)
                t = clock()
                summary = tx.save_action(moved, tx.account_names(moved.accounts))
            write = since(t)
            total = since(t_all)
            led.dispose()
        print(f"{db:10} N={n:>7,} accounts holding S0 {summary['account_count']:,}  holding rows "
              f"{len(moved.holdings):,}  lots {len(moved.lots):,}  (setup {setup_s:.0f} s)  "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"    read the book {read}; decide {decide}; write and commit {write}; total {total}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    ap.add_argument("--lots", type=int, default=2, help="tax lots per holding (0: none)")
    args = ap.parse_args()
    for db in args.db or ["sqlite", "postgresql"]:
        for n in args.n or [10_000, 100_000]:
            run(db, n, args.lots)


if __name__ == "__main__":
    main()
