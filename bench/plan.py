"""How fast the engine plans accounts, and how much memory it takes.

    python bench/plan.py                 # the issue's figures: N = 10k and 100k
    python bench/plan.py --n 20000 --shape target

Shapes:
  target  20-slice, 2-level pies, one cash event per account (the performance target)
  mixed   5-50 securities, 1-3 levels, a mix of deposits, withdrawals, dividends, rebalances

Accounts share a few pies, as real accounts share a policy. Prints accounts planned per
second on one core with `explain=False`: streamed (each plan's orders netted per symbol and
the plan dropped, as the window does; best of three runs) and with every plan held in memory
(the worst case, which adds the garbage collector's scans), and the process's peak memory
(ru_maxrss) with every plan held, inputs included. Peak memory only grows within a process,
so run one N per process for a clean figure (`--n 100000`).
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.core import events as ev  # noqa: E402
from engine.core.planner import plan  # noqa: E402
from rules.library import standard_rules  # noqa: E402
from rules.model import FULL, Pie, Security  # noqa: E402


def split(n: int, rng: random.Random) -> list[int]:
    cuts = sorted(rng.sample(range(1, FULL), n - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, FULL])]


def make_pie(rng: random.Random, securities: int, levels: int, name: str = "Root", target: int = FULL) -> Pie:
    if levels <= 1 or securities < 4:
        syms = rng.sample(range(5000), securities)
        return Pie(name, target, tuple(Security(f"S{s}", t) for s, t in zip(syms, split(securities, rng))))
    kids = rng.randint(2, min(4, securities // 2))
    sizes = [securities // kids] * kids
    sizes[0] += securities - sum(sizes)
    ts = split(kids, rng)
    return Pie(name, target, tuple(make_pie(rng, s, levels - 1, f"{name[:1]}{i}", t)
                                   for i, (s, t) in enumerate(zip(sizes, ts))))


def leaves(pie: Pie) -> list[str]:
    return [p for p, s in pie.walk() if isinstance(s, Security)]


def accounts(n: int, shape: str, seed: int = 7):
    rng = random.Random(seed)
    if shape == "target":
        pies = [make_pie(rng, 20, 2) for _ in range(50)]
    else:
        pies = [make_pie(rng, rng.randint(5, 50), rng.randint(1, 3)) for _ in range(200)]
    paths = {id(p): leaves(p) for p in pies}
    for _ in range(n):
        pie = rng.choice(pies)
        h = {path: rng.randint(0, 2_000_000) for path in paths[id(pie)]}
        if shape == "target":
            events = [ev.Deposit(rng.randint(1_000, 500_000))]
        else:
            kind = rng.random()
            if kind < 0.5:
                events = [ev.Deposit(rng.randint(1_000, 500_000))]
            elif kind < 0.7:
                events = [ev.Withdrawal(rng.randint(1, max(1, sum(h.values()) // 3)))]
            elif kind < 0.85:
                events = [ev.Dividend(rng.randint(1, 5_000)), ev.Deposit(rng.randint(1_000, 100_000))]
            else:
                events = [ev.Rebalance()]
        yield pie, h, events


def net_orders(work, m1) -> dict[str, int]:
    """Plan every account and net its orders per symbol, as the window does: plans stream."""
    net: dict[str, int] = {}
    for pie, h, events in work:
        for o in plan(pie, h, events, m1, explain=False).orders:
            net[o.symbol] = net.get(o.symbol, 0) + (o.cents if o.side == "buy" else -o.cents)
    return net


def run(n: int, shape: str) -> None:
    m1 = standard_rules()["m1"]
    work = list(accounts(n, shape))
    slices = sum(len(h) for _, h, _ in work)
    gc.collect()
    gc.freeze()          # the inputs are long-lived; don't charge their GC scans to the planner
    best = float("inf")
    for _ in range(3):   # best of three: the machine is shared and timings are noisy
        t0 = time.perf_counter()
        net = net_orders(work, m1)
        best = min(best, time.perf_counter() - t0)
    # Worst case for memory: every plan held at once.
    t0 = time.perf_counter()
    plans = [plan(pie, h, events, m1, explain=False) for pie, h, events in work]
    held = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trades = sum(len(p.trades) for p in plans)
    print(f"{shape:6} N={n:>7,}  {n / best:>9,.0f} accounts/s streamed  {n / held:>9,.0f}/s all held  "
          f"{slices / n:5.1f} slices/acct  {trades:>9,} slice trades  {len(net):>5} symbols  "
          f"peak {peak:,.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append", help="accounts (repeatable; default 10k and 100k)")
    ap.add_argument("--shape", choices=["target", "mixed"], action="append")
    args = ap.parse_args()
    for shape in args.shape or ["target", "mixed"]:
        for n in args.n or [10_000, 100_000]:
            run(n, shape)


if __name__ == "__main__":
    main()
