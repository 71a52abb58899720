"""What the worst policy files within the limits cost to compile and to `pies show`, and
what the hostile files of issue 19 cost to refuse.

    python bench/policy_limits.py            # every case, each in a child process
    python bench/policy_limits.py --case wide

Each case runs in a child of its own (peak memory only grows within a process), which
compiles the file (CPU seconds and wall seconds), renders `pies show` of its largest pie
when it compiles (to /dev/null; CPU seconds, compiling again included), and reports its peak memory (ru_maxrss, the interpreter
and its imports included: about 60 MB for the CLI). The generators are the tests' own
(tests/language/hostile.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from language import hostile  # noqa: E402

# name -> (what it is, the text, the pie `show` prints when the file compiles)
CASES = {
    "wide": ("within the caps: 5 levels of 7 pies each using 7 (19,607 slices below L1P0, "
             "160,083 in the file)", lambda: hostile.fanout(5, 7, 7), "L1P0"),
    "deep": ("within the caps: 8 levels of 3 pies each using 3 (9,840 slices below L1P0)",
             lambda: hostile.fanout(8, 3, 3), "L1P0"),
    "blocks": ("within the caps: 40,000 small pies (1 MB)", lambda: hostile.many_blocks(40_000), "P0"),
    "fanout-8x50": ("issue: 8 levels x 50 pies x 50 uses (362 KB)", lambda: hostile.fanout(8, 50, 50), None),
    "fanout-6x10": ("issue: 6 levels x 10 pies x 10 uses (11.5 KB)", lambda: hostile.fanout(6, 10, 10), None),
    "nested-5000": ("issue: 5,000 nested pies", lambda: hostile.nested(5000), None),
    "extends-18000": ("issue: an extends chain of 18,000", lambda: hostile.extends_chain(18_000), None),
    "use-chain-18000": ("a use chain of 18,000", lambda: hostile.use_chain(18_000), None),
    "use-cycle-18000": ("a use cycle of 18,000", lambda: hostile.use_chain(18_000, cycle=True), None),
    "one-line-140000": ("issue: VTI 1% x 140,000 on one line", lambda: hostile.one_line(140_000), None),
    "unknown-uses": ("28,000 pies each using one that does not exist",
                     lambda: hostile.many_unknown_uses(28_000), None),
}


def one(name: str) -> dict:
    """Run in the child: compile, show, peak memory."""
    import rules
    from engine.shell import console
    from engine.shell.cli import main
    _, make, pie = CASES[name]
    text = make()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.pie"
        path.write_text(text, encoding="utf-8")
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            policy = rules.compile_file(path)
            outcome = f"compiles: {len(policy.pies):,} pies"
        except rules.PolicyError as e:
            outcome = f"{len(e.diagnostics)} errors, first: {e.diagnostics[0].message[:70]}"
            pie = None
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        show = None
        if pie is not None:
            console.out.file = open(os.devnull, "w")
            show = time.process_time()
            try:
                main(["show", str(path), "--pie", pie], standalone_mode=False)
            finally:
                show = time.process_time() - show
                console.out.file.close()
    return {"case": name, "kb": len(text.encode()) / 1024, "outcome": outcome, "cpu": cpu, "wall": wall,
            "show": show, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES), action="append", help="(repeatable) default: all")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one(args.child)))
        return
    print(f"{'case':17} {'KB':>7} {'compile CPU s':>13} {'wall s':>7} {'show CPU s':>10} {'peak MB':>8}  outcome")
    for name in args.case or list(CASES):
        done = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode:
            print(f"{name:17} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        show = "-" if r["show"] is None else f"{r['show']:.2f}"
        print(f"{name:17} {r['kb']:7.0f} {r['cpu']:13.2f} {r['wall']:7.2f} {show:>10} {r['peak_mb']:8.0f}  {r['outcome']}")
    print("\n" + "\n".join(f"{n}: {CASES[n][0]}" for n in (args.case or CASES)))


if __name__ == "__main__":
    main()
