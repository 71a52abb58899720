"""Day one of the windows that the crash and one-window tests drive: the house, eight
accounts on the two pies, each funded, and the first window run."""

from __future__ import annotations

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


def day_one(led: Ledger, broker, policy: Path) -> dict[str, Decimal]:
    """Accounts a0..a7 (odd ones Growth, even ones Tech) funded and invested on DAY1;
    returns the prices, for the withdrawals of day two."""
    ensure_house(led, broker, "main")
    for i in range(8):
        policies.add_account(led, f"a{i}", "Growth" if i % 2 else "Tech", policy)
        led.deposit(f"a{i}", f"{1000 + 137 * i}.{i:02d}", key=f"k1-{i}")
    WindowRunner(led, broker, "main", WindowOptions(settle_timeout=1)).run(DAY1)
    return {s: Decimal(p) for s, p in (line.split(",") for line in PRICES.split())}
