"""A policy apply at scale, on SQLite and PostgreSQL, with an operator recording deposits
all along.

    python bench/apply.py                          # N = 20,000 accounts, both databases
    python bench/apply.py --n 100000 --db sqlite

The ledger of bench/window.py (8 pies, invested accounts); one pie loses 4 of its
securities, so its followers (about N/8) each get a target change and 4 liquidations.
Prints the plan's and the apply's seconds, the apply's shards and its longest transaction
(how long it held the ledger at most, from its first read), the CPU time of the
applying thread (what the figure is on an idle machine, about), and the deposits recorded meanwhile by another
connection with the longest any of them waited.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.ledger.store import Ledger  # noqa: E402
from bench.window import database, setup  # noqa: E402
from engine.shell import policies  # noqa: E402


def drop_securities(policy: str, pie: str, n: int) -> str:
    """The policy text with the first `n` securities of `pie`'s "Top" slice removed."""
    block = re.search(rf'pie "{pie}" \{{.*?\n\}}\n', policy, re.S).group(0)
    top = re.search(r'pie "Top" 60% equal \{\n(.*?)\n    \}', block, re.S)
    kept = "\n".join(top.group(1).splitlines()[n:])
    return policy.replace(block, block.replace(top.group(1), kept))


def run(db: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with database(db, workdir) as url:
            led, broker = setup(url, n, workdir)
            file = workdir / "policy.pie"
            changed = drop_securities(file.read_text(), "P3", 4)
            file.write_text(changed)
            t0 = time.perf_counter()
            plan = policies.plan(led, file, changed, broker.latest_prices)
            plan_s = time.perf_counter() - t0
            operator = Ledger(url, upgrade=False)
            others = [a.name for a in operator.accounts() if a.pie != "P3"][:500]
            waits: list[float] = []
            done = threading.Event()

            def deposits() -> None:
                i = 0
                while not done.is_set():
                    start = time.perf_counter()
                    operator.deposit(others[i % len(others)], "1.00", key=f"bench-apply-{i}")
                    waits.append(time.perf_counter() - start)
                    i += 1
                    time.sleep(0.05)
            shards: list[tuple[int, float]] = []
            t = threading.Thread(target=deposits)
            t.start()
            t0, cpu = time.perf_counter(), time.thread_time()
            applied = policies.apply(led, file, changed, on_shard=lambda k, s: shards.append((k, s)))
            apply_s, apply_cpu = time.perf_counter() - t0, time.thread_time() - cpu
            done.set()
            t.join()
            operator.dispose()
            led.dispose()
        print(f"{db:10} N={n:>7,}  followers moved {applied.accounts:,} ({len(plan.retargeted):,} retargeted, "
              f"{applied.liquidations:,} liquidations; planned {sum(len(a.liquidations) for a in plan.accounts):,})")
        print(f"    plan {plan_s:.2f} s  apply {apply_s:.2f} s ({apply_s / max(applied.accounts, 1) * 1000:.2f} ms "
              f"per account; {apply_cpu:.2f} s of CPU) in {len(shards)} transactions, "
              f"longest held {max(s for _, s in shards):.2f} s; "
              f"{len(waits)} deposits meanwhile, longest wait {max(waits, default=0):.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    args = ap.parse_args()
    for db in args.db or ["sqlite", "postgresql"]:
        for n in args.n or [20_000]:
            run(db, n)


if __name__ == "__main__":
    main()
