"""A window's planning over shards and worker processes gives the same ledger whatever the
number of workers or shards; a shard that committed is not planned again on resume."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, select, text

from adapters.ledger import window_reports
from adapters.ledger.schema import Account, Intent, WindowShard
from conftest import PG_URL, _pg_or_skip
from test_crash import books_snapshot, lots_match_holdings
from test_faults import DAY1, DAY2, PRICES, World

POLICY = 'pie "Two" { AAA 50% BBB 50% }\npie "Mix" { pie "Inner" 60% { AAA 30% ZZZ 70% } BBB 40% }\n'


def _schema() -> tuple[str, str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with create_engine(PG_URL, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'create schema "{name}"'))
    sep = "&" if "?" in PG_URL else "?"
    return name, f"{PG_URL}{sep}options=-csearch_path%3D{name}"


def _drop(name: str) -> None:
    with create_engine(PG_URL, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'drop schema "{name}" cascade'))


def _day_of_trading(world: World, workers: int, cluster: str | None = None, owners: dict | None = None) -> dict:
    for i in range(14):
        world.add(f"a{i:02d}", "Two" if i % 3 else "Mix", f"{100 + 37 * i}.{i:02d}")
    for name, owner in (owners or {}).items():
        world.led.set_owner(name, owner)
    opts = {"workers": workers, "shard_size": 3, "cluster": cluster}
    assert world.run(DAY1, **opts)["problems"] == []
    prices = {s: __import__("decimal").Decimal(p) for s, p in PRICES.items()}
    for i in range(0, 14, 2):
        world.led.deposit(f"a{i:02d}", f"{10 + i}.33", key=f"d2-{i}")
    for i in range(1, 14, 4):
        world.led.withdraw(f"a{i:02d}", "20.01", prices, key=f"w2-{i}")
    world.led.rebalance("a03", key="r")
    assert world.run(DAY2, **opts)["problems"] == [] and world.agrees() == []
    snap = world.snapshot()
    with world.led.tx() as s:
        snap["shards"] = sorted(s.execute(select(WindowShard.window_id, WindowShard.step, WindowShard.shard)).all())
        snap["intents"] = sorted((i.account_id, i.path, str(i.planned), str(i.amount)) for i in s.scalars(select(Intent)))
        snap["lots"], snap["realized"] = books_snapshot(s, {a.id: a.name for a in s.scalars(select(Account))})
        assert snap["lots"] and snap["realized"] and lots_match_holdings(s) == []
    return snap


def test_one_two_and_four_workers_give_the_same_ledger(tmp_path):
    _pg_or_skip()
    snaps = []
    for workers in (1, 2, 4):
        name, url = _schema()
        try:
            w = World(tmp_path / f"w{workers}", url, POLICY)
            snaps.append(_day_of_trading(w, workers))
            w.led.dispose()
        finally:
            _drop(name)
    assert snaps[0]["shards"] and len({s[2] for s in snaps[0]["shards"]}) > 2     # several shards ran
    assert snaps[0] == snaps[1] == snaps[2]


def test_owners_spread_over_shards_book_the_same_with_one_and_two_workers(tmp_path):
    """Owners whose accounts lie far apart in id, their units cut into shards with accounts
    alone: the same shards, lots and realized rows whether the shards run here in turn or
    on a pool."""
    _pg_or_skip()
    owners = {"a01": "household", "a09": "household", "a13": "household", "a04": "pair", "a11": "pair"}
    snaps = []
    for workers in (1, 2):
        name, url = _schema()
        try:
            w = World(tmp_path / f"o{workers}", url, POLICY)
            snaps.append(_day_of_trading(w, workers, owners=owners))
            w.led.dispose()
        finally:
            _drop(name)
    booked = [s for s in snaps[0]["shards"] if s[1] == "booked"]
    assert len({s[0] for s in booked}) == 2 and len(booked) > 4          # two windows, several books shards
    assert snaps[0] == snaps[1]


def test_a_dask_cluster_plans_the_same_ledger_as_the_process_pool(tmp_path):
    _pg_or_skip()
    from distributed import LocalCluster
    snaps = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for how in ({"workers": 2}, {"workers": 1, "cluster": cluster.scheduler_address}):
            name, url = _schema()
            try:
                w = World(tmp_path / f"w{len(snaps)}", url, POLICY)
                snaps.append(_day_of_trading(w, **how))
                w.led.dispose()
            finally:
                _drop(name)
    assert snaps[0] == snaps[1]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_committed_shard_is_not_planned_again_on_resume(db_url, tmp_path):
    w = World(tmp_path / "w", db_url, POLICY)
    for i in range(7):
        w.add(f"a{i}", "Two", "100")

    class Died(Exception):
        pass

    calls = []
    import engine.shell.window as window_mod
    real = window_mod.plan_shard

    def flaky(job, repo=None):
        calls.append(job[4])
        if len(calls) == 2:
            raise Died("killed during the second shard")
        return real(job, repo)
    window_mod.plan_shard = flaky
    try:
        with pytest.raises(Died):
            w.run(DAY1, shard_size=3)
        assert w.run(DAY1, shard_size=3)["problems"] == []
    finally:
        window_mod.plan_shard = real
    assert calls == [0, 1, 0, 1, 2]                       # shard 0 committed: skipped inside, not replanned
    with w.led.tx() as s:
        assert sorted(x.shard for x in s.scalars(select(WindowShard).where(WindowShard.step == "planned"))) == [0, 1, 2]
        per_account = s.execute(text("select account_id, count(*) from window_accounts group by account_id")).all()
    assert all(n == 1 for _, n in per_account) and len(per_account) == 7
    w.led.dispose()


@pytest.mark.parametrize("point", ["shard:planned:0", "shard:planned:2", "shard:allocated:0", "shard:allocated:1",
                                   "shard:closed:0", "shard:closed:2", "shard:booked:0", "shard:booked:2"])
def test_a_worker_killed_mid_shard_loses_nothing(tmp_path, monkeypatch, point):
    """A pool worker is killed (SIGKILL) inside a shard's transaction on day 2; the pool
    breaks, the window stops; run again, the shards that did not commit are redone by new
    workers and the ledger is the one an uninterrupted single-process run gives."""
    _pg_or_skip()
    from concurrent.futures.process import BrokenProcessPool
    snaps = []
    for crash in (None, point):
        name, url = _schema()
        try:
            w = World(tmp_path / f"w{len(snaps)}", url, POLICY)
            real_run = w.run
            fired = []

            def run(day, crash=crash, real_run=real_run, fired=fired, **opts):
                if day != DAY2 or crash is None or fired:
                    return real_run(day, **{**opts, "workers": 1 if crash is None else 2, "shard_size": 1})
                monkeypatch.setenv("PIES_TEST_CRASH_AT", crash)        # spawned workers inherit it
                with pytest.raises(BrokenProcessPool):
                    real_run(day, **{**opts, "workers": 2, "shard_size": 1})
                monkeypatch.delenv("PIES_TEST_CRASH_AT")
                fired.append(crash)
                return real_run(day, **{**opts, "workers": 2, "shard_size": 1})
            w.run = run
            snap = _day_of_trading(w, 2)
            if crash:
                assert fired == [crash]
            snaps.append(snap)
            w.led.dispose()
        finally:
            _drop(name)
    assert snaps[0] == snaps[1]


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_report_pages_are_the_whole_reports_lines_in_order(db_url, tmp_path):
    """Each account's report lines live in the window's tables; a page of them is the same
    lines as the whole report's, for the same accounts."""
    w = World(tmp_path / "w", db_url, POLICY)
    for i in range(5):
        w.add(f"a{i}", "Mix" if i % 2 else "Two", f"{200 + i}.{i:02d}")
    whole = w.run(DAY1)
    assert whole["account_count"] == len(whole["accounts"]) == 5
    assert [a["account"] for a in whole["accounts"]] == [f"a{i}" for i in range(5)]
    assert all(a["trades"] and a["events"] for a in whole["accounts"])
    wid = whole["window"]
    pages = [window_reports.window(w.led, wid, page, 2)["report"]["accounts"] for page in (1, 2, 3, 4)]
    assert pages == [whole["accounts"][0:2], whole["accounts"][2:4], whole["accounts"][4:5], []]
    w.led.dispose()
