"""Day one of the windows that the crash and one-window tests drive: the house, eight
accounts on the two pies, each funded, and the first window run; and day two's window run
as its own process, killed at a point when asked (the crash tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

from adapters.ledger.store import Ledger
from engine.shell import policies
from engine.shell.window import WindowOptions, WindowRunner
from engine.shell.wiring import ensure_house

POLICY = 'pie "Growth" { VTI 40% VXUS 20% pie "Bonds" 40% { BND 70% TIP 30% } }\npie "Tech" equal { AAPL MSFT NVDA }\n'
PRICES = "VTI,250.00\nVXUS,60.25\nBND,72.50\nTIP,110.10\nAAPL,172.78\nMSFT,415.00\nNVDA,131.31\n"
DAY1, DAY2 = date(2026, 11, 23), date(2026, 11, 24)
ROOT = Path(__file__).resolve().parents[2]


def day_one(led: Ledger, broker, policy: Path) -> dict[str, Decimal]:
    """Accounts a0..a7 (odd ones Growth, even ones Tech) funded and invested on DAY1;
    returns the prices, for the withdrawals of day two."""
    ensure_house(led, broker, "main")
    for i in range(8):
        policies.add_account(led, f"a{i}", "Growth" if i % 2 else "Tech", policy)
        led.deposit(f"a{i}", f"{1000 + 137 * i}.{i:02d}", key=f"k1-{i}")
    WindowRunner(led, broker, "main", WindowOptions(settle_timeout=1)).run(DAY1)
    return {s: Decimal(p) for s, p in (line.split(",") for line in PRICES.split())}


def run_window(env: dict[str, str], crash_at: str | None = None) -> subprocess.CompletedProcess:
    """`pies window run` for DAY2 in a process of its own, SIGKILLed at `crash_at` if given."""
    full = {**os.environ, **env}
    full.pop("PIES_TEST_CRASH_AT", None)
    if crash_at:
        full["PIES_TEST_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "engine.shell.cli", "window", "run", "--date", DAY2.isoformat(),
                           "--force"], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)


def kill_then_resume(env: dict[str, str], point: str) -> None:
    """Day two's window SIGKILLed at `point`, then run again to its end, agreeing with the broker."""
    crashed = run_window(env, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, (point, crashed.returncode, crashed.stderr[-2000:])
    resumed = run_window(env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "ledger agrees with the broker" in resumed.stdout
