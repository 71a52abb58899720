"""How long a `pies` command that only touches the ledger takes, start to finish.

    python bench/cli.py            # 7 runs of each command, prints the median and the fastest

Runs each command in a fresh process on a scratch SQLite ledger (the embedded defaults,
simulated broker), as a script or an operator would. The target: under 0.5 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7


def timed(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "engine.shell.cli", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True)
    if r.returncode not in (0, 1, 2):         # 2: a refusal (cancel of a canceled event) is still a full run
        raise SystemExit(f"pies {' '.join(args)} failed: {r.stderr[-500:]}")
    return time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PIES_DATA_DIR": tmp}
        env.pop("PIES_CONFIG", None)
        policy = str(ROOT / "rules" / "examples" / "growth.pie")
        timed(["account", "add", "alice", "--pie", "Growth", "--policy", policy], env)   # opens the broker once
        for probe in ("pass", "import sqlalchemy.orm"):
            times = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", probe], check=True)
                times.append(time.perf_counter() - t0)
            print(f"python -c {probe!r:<26} median {statistics.median(times):.3f} s  fastest {min(times):.3f} s")
        for args in (["deposit", "alice", "10"], ["history", "alice", "--json"], ["cancel", "1"],
                     ["windows", "--json"], ["policy", "history", "--json"]):
            times = [timed(args, env) for _ in range(RUNS)]
            print(f"pies {' '.join(args):<28} median {statistics.median(times):.3f} s  fastest {min(times):.3f} s")


if __name__ == "__main__":
    main()
