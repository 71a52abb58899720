"""A policy apply with many followers while a window runs and an operator records
deposits, on both databases: nobody waits long enough to fail (no `database is locked`,
no error at all), the window closes without problems with the books agreeing with the
broker, every follower ends on the new version with the liquidations the core decides,
and every deposit is recorded."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from sqlalchemy import func, select

from adapters.ledger.schema import Account, Event
from adapters.ledger.store import Ledger
from adapters.ledger.window_repo import check_invariants
from engine.shell import policies
from engine.shell.window import WindowOptions, WindowRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))      # the benchmarks build the ledger
from bench.apply import drop_securities  # noqa: E402
from bench.window import DAY, setup  # noqa: E402


def test_an_apply_in_shards_beside_a_window_and_deposits(db_url, tmp_path):
    led, broker = setup(db_url, 800, tmp_path)
    file = tmp_path / "policy.pie"
    changed = drop_securities(file.read_text(), "P3", 4)
    file.write_text(changed)
    plan = policies.plan(led, file, changed, broker.latest_prices)
    followers = set(plan.retargeted)
    dropped = {x.path for a in plan.accounts for x in a.liquidations}
    assert len(followers) > 60 and len(dropped) == 4
    operator = Ledger(db_url, upgrade=False)
    others = sorted(a.name for a in operator.accounts() if a.name not in followers)[:20]
    failures: list[BaseException] = []
    results: dict[str, object] = {}

    def guarded(name, fn):
        def run() -> None:
            try:
                results[name] = fn()
            except BaseException as e:  # noqa: BLE001 - any failure fails the test below
                failures.append(e)
        return threading.Thread(target=run, name=name)

    window_ledger = Ledger(db_url, upgrade=False)
    threads = [
        guarded("window", lambda: WindowRunner(window_ledger, broker, "main", WindowOptions(settle_timeout=5))
                .run(DAY, accounts=False)),
        guarded("apply", lambda: policies.apply(led, file, changed, shard=25)),
        guarded("deposits", lambda: [operator.deposit(n, "10.00", key=f"during-{n}") for n in others]),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert results["window"]["problems"] == []
    applied = results["apply"]
    assert applied.accounts == 800 and applied.liquidations == 4 * len(followers)
    with led.tx() as s:
        versions = set(s.scalars(select(Account.policy_version_id).where(Account.is_house.is_(False))))
        liquidated = {(n, p) for n, p in s.execute(select(Account.name, Event.path).join(
            Event, Event.account_id == Account.id).where(Event.kind == "liquidation"))}
        deposits = s.scalar(select(func.count()).select_from(Event).where(Event.key.like("during-%")))
    assert versions == {applied.version.id}
    assert liquidated == {(n, p) for n in followers for p in dropped}
    assert deposits == len(others)
    positions = {sym: p.qty for sym, p in broker.positions().items()}
    assert check_invariants(led, "main", positions, broker.balance().cash) == []
    for x in (led, operator, window_ledger):
        x.dispose()
