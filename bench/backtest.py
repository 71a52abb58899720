"""How fast `pies backtest` runs: the issue's target and a grid over the cores.

    python bench/backtest.py                  # one backtest, then 100 with --jobs 2
    python bench/backtest.py --days 7600 --grid 100 --jobs 2

One backtest: a 20-slice, 2-level pie (4 pies of 5 securities) over generated daily closes
(`--days` trading days, about 30 years at 7,600), $10,000 to start, $500 deposited monthly,
`when drift > 5% rebalance`, through the whole `pies backtest` command (CSV read, the
simulation, the metrics, the JSON), timed best of three on one core. Then a grid of
`--grid` rule sets (the drift rule with cash reserves $0 .. $99 x 10) in one
`pies backtest --jobs N` call. Writes its files to a temporary folder; prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from click.testing import CliRunner  # noqa: E402

from engine.shell.cli import main  # noqa: E402


def prices(path: Path, days: int, symbols: list[str], seed: int = 1) -> tuple[str, str]:
    """Geometric random walks, 2-decimal closes, one row per weekday from 1996-01-01."""
    rng = random.Random(seed)
    price = {s: rng.uniform(20, 200) for s in symbols}
    d = date(1996, 1, 1)
    rows = ["date," + ",".join(symbols)]
    first = None
    while len(rows) <= days:
        if d.weekday() < 5:
            first = first or d
            rows.append(d.isoformat() + "," + ",".join(f"{price[s]:.2f}" for s in symbols))
            price = {s: max(1.0, p * (1 + rng.gauss(0.0003, 0.012))) for s, p in price.items()}
        d += timedelta(days=1)
    path.write_text("\n".join(rows) + "\n")
    return first.isoformat(), (d - timedelta(days=1)).isoformat()


def policy(path: Path, grid: int) -> list[str]:
    symbols = [f"S{i:02d}" for i in range(20)]
    pies = " ".join(f'pie "P{k}" {t}% {{ ' + " ".join(f"{s} 20%" for s in symbols[k * 5:k * 5 + 5]) + " }"
                    for k, t in enumerate((40, 30, 20, 10)))
    rules = "\n".join(f'rules "g{k:03d}" extends "drift-5" {{ cash reserve ${k * 10} }}' for k in range(grid))
    path.write_text(f'pie "Twenty" {{ {pies} }}\n{rules}\n')
    return symbols


def backtest(*args: str) -> str:
    r = CliRunner().invoke(main, ["backtest", *args])
    if r.exit_code != 0:
        raise SystemExit(r.output)
    return r.stdout


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main_() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=7600)
    ap.add_argument("--grid", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        symbols = policy(folder / "grid.pie", a.grid)
        start, end = prices(folder / "prices.csv", a.days, symbols)
        common = [str(folder / "grid.pie"), "--pie", "Twenty", "--prices", str(folder / "prices.csv"),
                  "--from", start, "--to", end, "--deposit", "monthly:500"]
        times, cpu = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            doc = json.loads(backtest(*common, "--rules", "drift-5", "--json"))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        m = doc["metrics"]
        print(f"one backtest: {len(doc['curve']):,} trading days ({start} .. {end}), 20 slices in 2 levels, "
              f"monthly deposits, drift > 5% rebalance")
        print(f"  {min(times):.2f} s wall, {min(cpu):.2f} s CPU (best of 3; wall {', '.join(f'{t:.2f}' for t in times)}), "
              f"{min(cpu) / len(doc['curve']) * 1e6:.0f} us CPU a day; final value ${doc['final_value']}, "
              f"{m['orders']:,} orders, {m['skipped_orders']:,} skipped, turnover {m['turnover']:.1%}")
        grid = [arg for k in range(a.grid) for arg in ("--rules", f"g{k:03d}")]
        t0, c0 = time.perf_counter(), children_cpu()
        backtest(*common, *grid, "--jobs", str(a.jobs))
        wall, cpu_grid = time.perf_counter() - t0, children_cpu() - c0
        n = a.grid
        print(f"grid: {n} backtests (the table) with --jobs {a.jobs} on {os.cpu_count()} cores: {wall:.1f} s wall, "
              f"{cpu_grid:.1f} s CPU in the workers ({cpu_grid / n:.2f} s a backtest)")
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} (the machine is shared: wall > CPU)")


if __name__ == "__main__":
    main_()
