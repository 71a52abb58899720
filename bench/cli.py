"""How long a `pies` command that only touches the ledger takes, start to finish.

    python bench/cli.py            # 7 runs of each command, prints the median and the fastest

Runs each command in a fresh process on a scratch SQLite ledger (the embedded defaults,
simulated broker), as a script or an operator would. The target: under 0.5 s. Besides the
wall time, the median CPU time (user + system) of the process: on a shared, loaded machine
the wall time mostly measures the others' load, the CPU time much less.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds, result) of one process."""
    t0, c0 = time.perf_counter(), cpu()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, cpu() - c0, r


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    wall, used, r = run([sys.executable, "-m", "engine.shell.cli", *args], env)
    if r.returncode not in (0, 1, 2):         # 2: a refusal (cancel of a canceled event) is still a full run
        raise SystemExit(f"pies {' '.join(args)} failed: {r.stderr[-500:]}")
    return wall, used


def line(what: str, runs: list[tuple[float, float]]) -> str:
    walls = [w for w, _ in runs]
    return (f"{what:<36} median {statistics.median(walls):.3f} s  fastest {min(walls):.3f} s  "
            f"CPU median {statistics.median(c for _, c in runs):.3f} s")


def main() -> None:
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set, so every run compiles pies' own modules from source; "
              "unset it to time what an installed pies does")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PIES_DATA_DIR": tmp}
        env.pop("PIES_CONFIG", None)
        policy = str(ROOT / "rules" / "examples" / "growth.pie")
        timed(["account", "add", "alice", "--pie", "Growth", "--policy", policy], env)   # opens the broker once
        for probe in ("pass", "import sqlalchemy", "import sqlalchemy.orm"):
            runs = [run([sys.executable, "-c", probe])[:2] for _ in range(RUNS)]
            print(line(f"python -c {probe!r}", runs))
        for args in (["deposit", "alice", "10"], ["history", "alice", "--json"], ["cancel", "1"],
                     ["windows", "--json"], ["policy", "history", "--json"]):
            print(line(f"pies {' '.join(args)}", [timed(args, env) for _ in range(RUNS)]))


if __name__ == "__main__":
    main()
