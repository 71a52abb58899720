"""The ledger on SQLite and PostgreSQL: idempotency, refusals that write nothing, policy
versions and liquidations, the invariant check, exact numbers, concurrent writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

import rules
from adapters.ledger import migrate
from adapters.ledger.schema import Account, Event, Holding, PolicyVersion
from adapters.ledger.store import Ledger, LedgerError
from adapters.ledger.window_repo import check_invariants
from engine.shell import policies

ROOT = Path(__file__).resolve().parents[2]
POLICY = 'pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\n'
PRICES = {"VTI": Decimal("250.00"), "BND": Decimal("72.50"), "TIP": Decimal("110.00")}


@pytest.fixture
def ledger(db_url, tmp_path):
    led = Ledger(db_url)
    led.ensure_house("main", Decimal("10000.00"), {})
    (tmp_path / "core.pie").write_text(POLICY)
    policies.add_account(led, "alice", "Core", tmp_path / "core.pie")
    yield led
    led.dispose()


def counts(led: Ledger) -> tuple[int, int, int, int]:
    with led.tx() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Event, Account, Holding, PolicyVersion))


def hold(led: Ledger, name: str, path: str, shares: str) -> None:
    with led.tx() as s:
        acct = s.scalars(select(Account).where(Account.name == name)).one()
        s.merge(Holding(account_id=acct.id, path=path, symbol=path.rsplit("/", 1)[-1], shares=Decimal(shares)))


def test_migrations_reach_head_and_run_once(db_url):
    led = Ledger(db_url)
    assert migrate.current(led.engine) == migrate.head() == migrate.HEAD == "0013"
    assert migrate.upgrade(led.engine) == ("0013", "0013")


def at_revision(db_url: str, revision: str):
    """An engine on a new ledger migrated only up to `revision` (an old ledger)."""
    from alembic import command
    from sqlalchemy import create_engine
    eng = create_engine(db_url)
    cfg = migrate._config(eng)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return eng


def test_fills_written_before_0003_become_part_one_of_their_order(db_url):
    """0003 lets an order fill in several parts; a ledger from before keeps its fills."""
    from sqlalchemy import text
    eng = at_revision(db_url, "0002")
    with eng.begin() as conn:
        conn.execute(text("insert into windows (id, broker, trading_date, name, step, opened_at) "
                          "values (1, 'main', '2026-11-24', 'open', 'closed', '2026-11-24 14:35:00')"))
        conn.execute(text("insert into orders (id, window_id, client_order_id, phase, symbol, side, notional, status) "
                          "values (1, 1, 'c1', 'buy', 'VTI', 'buy', 100, 'filled')"))
        conn.execute(text("insert into fills (id, order_id, qty, price, amount) values (7, 1, 0.4, 250, 100)"))
    assert migrate.upgrade(eng) == ("0002", "0013")
    with eng.connect() as conn:
        rows = conn.execute(text("select id, order_id, seq, qty, amount from fills")).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [(7, 1, 1)] and Decimal(str(rows[0][3])) == Decimal("0.4")
    eng.dispose()


def test_an_old_ledgers_unused_scheduler_jobs_table_is_dropped(db_url):
    """0012: APScheduler's old job store left a table outside the migrations; it goes."""
    from sqlalchemy import inspect, text
    eng = at_revision(db_url, "0008")
    with eng.begin() as conn:
        conn.execute(text("create table scheduler_jobs (id varchar(191) primary key, next_run_time float, "
                          "job_state bytea)" if eng.dialect.name == "postgresql" else
                          "create table scheduler_jobs (id varchar(191) primary key, next_run_time float, "
                          "job_state blob)"))
    assert migrate.upgrade(eng) == ("0008", migrate.HEAD)
    assert not inspect(eng).has_table("scheduler_jobs") and inspect(eng).has_table("accounts")
    eng.dispose()


def test_0013_refuses_a_ledger_whose_window_stopped_in_its_books_step(db_url):
    """0013 also changed how the books step cuts its shards: a window stopped inside that
    step is named, and the ledger stays as it was until it is finished."""
    import pytest
    from sqlalchemy import text

    from engine.core.errors import Conflict
    eng = at_revision(db_url, "0010")
    with eng.begin() as conn:
        conn.execute(text("insert into windows (id, broker, trading_date, name, step, opened_at) "
                          "values (7, 'main', '2026-11-24', 'open', 'settled', '2026-11-24 14:35:00')"))
        conn.execute(text("insert into window_shards (window_id, step, shard) values (7, 'booked', 0)"))
    with pytest.raises(Conflict, match="window 7 stopped in its books step"):
        migrate.upgrade(eng)
    assert migrate.current(eng) == "0010"
    with eng.begin() as conn:
        conn.execute(text("update windows set closed_at = '2026-11-24 16:00:00' where id = 7"))
    assert migrate.upgrade(eng) == ("0010", "0013")
    eng.dispose()


def test_the_same_key_is_recorded_once(ledger):
    first = ledger.deposit("alice", "100", key="bank-ref-1")
    again = ledger.deposit("alice", "100.00", key="bank-ref-1")
    assert first.created and not again.created and again.event_id == first.event_id
    assert len(ledger.events("alice")) == 1
    with pytest.raises(LedgerError, match="already used for a different request"):
        ledger.deposit("alice", "200", key="bank-ref-1")
    assert len(ledger.events("alice")) == 1


@pytest.mark.parametrize("call, message", [
    (lambda l: l.deposit("alice", "-5"), "must be positive"),
    (lambda l: l.deposit("alice", "0"), "must be positive"),
    (lambda l: l.deposit("alice", "1.005"), "fractions of a cent"),
    (lambda l: l.deposit("alice", "lots"), "not a dollar amount"),
    (lambda l: l.deposit("bob", "5"), "no account named 'bob'"),
    (lambda l: l.deposit("alice", "10000.01"), "has only \\$10000.00 unowned cash"),
    (lambda l: l.withdraw("alice", "0.01", PRICES), "more than it holds"),
    (lambda l: policies.rebalance(l, "alice", "VTI"), "a security, not a pie"),
    (lambda l: policies.rebalance(l, "alice", "Stocks"), "not a pie of 'Core'"),
    (lambda l: l.cancel(999), "no event 999"),
])
def test_bad_input_is_refused_and_writes_nothing(ledger, call, message):
    before = counts(ledger)
    with pytest.raises(LedgerError, match=message):
        call(ledger)
    assert counts(ledger) == before


def test_deposits_reserve_house_cash_until_the_window(ledger):
    ledger.deposit("alice", "6000")
    with pytest.raises(LedgerError, match="has only \\$4000.00"):
        ledger.deposit("alice", "4000.01")
    ledger.deposit("alice", "4000")


def test_withdrawals_count_value_cash_and_pending_events(ledger):
    hold(ledger, "alice", "VTI", "2")            # $500.00
    ledger.deposit("alice", "100")
    ledger.withdraw("alice", "550", PRICES)
    with pytest.raises(LedgerError, match="\\$50.00 after pending events"):
        ledger.withdraw("alice", "50.01", PRICES)


def test_cancel_only_a_pending_event(ledger):
    rec = ledger.deposit("alice", "10")
    ev = ledger.cancel(rec.event_id)
    assert ev.status == "canceled"
    with pytest.raises(LedgerError, match="only a pending event"):
        ledger.cancel(rec.event_id)


def test_a_policy_change_that_removes_a_held_slice_queues_exactly_one_liquidation(ledger, tmp_path):
    hold(ledger, "alice", "VTI", "1")
    hold(ledger, "alice", "Bonds/TIP", "3.5")
    hold(ledger, "alice", "Bonds/BND", "0")      # not held: nothing to liquidate
    (tmp_path / "core.pie").write_text('pie "Core" { VTI 60% pie "Bonds" 40% { BND 100% } }\n')
    version, queued = policies.apply_file(ledger, tmp_path / "core.pie")
    assert version.id == 2
    events = [(e.kind, e.path) for e, _ in ledger.events("alice")]
    assert events == [("target_change", None), ("liquidation", "Bonds/TIP")]
    assert policies.apply_file(ledger, tmp_path / "core.pie")[1] == []       # same text: nothing new
    (tmp_path / "core.pie").write_text('pie "Core" { VTI 0% pie "Bonds" 100% { BND 100% } }\n')
    policies.apply_file(ledger, tmp_path / "core.pie")
    kinds = [(e.kind, e.path) for e, _ in ledger.events("alice")][2:]
    assert kinds == [("target_change", None), ("liquidation", "VTI")]   # TIP is not queued twice


def test_a_policy_that_does_not_compile_changes_nothing(ledger, tmp_path):
    before = counts(ledger)
    (tmp_path / "core.pie").write_text('pie "Core" { VTI 60% BND 30% }\n')
    with pytest.raises(rules.PolicyError):
        policies.apply_file(ledger, tmp_path / "core.pie")
    (tmp_path / "core.pie").write_text('pie "Other" { VTI 100% }\n')
    with pytest.raises(LedgerError, match="'Core' is gone but accounts follow it \\(alice\\)"):
        policies.apply_file(ledger, tmp_path / "core.pie")
    assert counts(ledger) == before


def test_invariants_catch_a_seeded_discrepancy(ledger):
    hold(ledger, "alice", "VTI", "1.5")
    hold(ledger, "house:main", "VTI", "0.000000003")
    assert check_invariants(ledger, "main", {"VTI": Decimal("1.500000003")}, Decimal("10000.00")) == []
    hold(ledger, "alice", "VTI", "1.500000001")
    problems = check_invariants(ledger, "main", {"VTI": Decimal("1.500000003")}, Decimal("9999.99"))
    assert problems == [
        "main VTI: ledger holds 1.500000004 shares, broker reports 1.500000003 (difference 1E-9)",
        "main cash: ledger holds $10000.00, broker reports $9999.99 (difference 0.01)",
    ]


def test_invariants_name_negative_holdings_and_leave_other_broker_accounts_out(ledger, tmp_path):
    hold(ledger, "alice", "VTI", "2")
    assert check_invariants(ledger, "main", {"VTI": Decimal("2")}, Decimal("10000.00")) == []
    ledger.ensure_house("other", Decimal("0.00"), {})          # a second broker account in the same ledger
    hold(ledger, "house:other", "VTI", "7")
    assert check_invariants(ledger, "main", {"VTI": Decimal("2")}, Decimal("10000.00")) == []
    hold(ledger, "alice", "BND", "-0.5")
    problems = check_invariants(ledger, "main", {"VTI": Decimal("2"), "BND": Decimal("-0.5")}, Decimal("10000.00"))
    assert len(problems) == 1 and "alice" in problems[0] and "BND" in problems[0] and "-0.5" in problems[0]


def test_numbers_are_exact_and_floats_are_refused(ledger):
    hold(ledger, "alice", "VTI", "0.000000001")
    assert ledger.holdings("alice")["VTI"] == ("VTI", Decimal("0.000000001"))
    with pytest.raises(Exception, match="never floats"):
        with ledger.tx() as s:
            s.add(Holding(account_id=1, path="X", symbol="X", shares=0.1))


WRITER = textwrap.dedent("""
    import sys
    from adapters.ledger.store import Ledger
    led = Ledger(sys.argv[1], upgrade=False)
    me = sys.argv[2]
    for i in range(30):
        led.deposit("alice", "1.00", key=f"shared-{i}")     # both writers send these
        led.deposit("alice", "2.00", key=f"{me}-{i}")       # only this one
    print("ok")
""")


def test_two_concurrent_writers_never_lose_or_double_an_event(ledger, db_url):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, db_url, name], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    events = ledger.events("alice")
    keys = sorted(e.key for e, _ in events)
    assert len(keys) == len(set(keys)) == 30 + 30 + 30
    assert sum(e.amount for e, _ in events) == Decimal("30") + Decimal("120")


def test_accounts_page_on_by_cursor_and_count_exactly_up_to_a_limit_then_estimate(ledger, tmp_path, monkeypatch):
    for name in ("bob", "carol", "dave"):
        policies.add_account(ledger, name, "Core", tmp_path / "core.pie")
    rows = ledger.account_rows(limit=2)
    assert ([a.name for a in rows.accounts], rows.total, rows.total_exact) == (["alice", "bob"], 4, True)
    after = ledger.account_rows(limit=2, after="bob")
    assert [a.name for a in after.accounts] == ["carol", "dave"]
    assert [a.name for a in ledger.account_rows(limit=2, offset=2).accounts] == ["carol", "dave"]  # the old way
    assert ledger.account_rows(limit=2, after="dave").accounts == []
    monkeypatch.setattr(Ledger, "COUNTED_UP_TO", 2)   # past the limit: an estimate, never less than what was seen
    est = ledger.account_rows(limit=2)
    assert not est.total_exact and est.total >= 3 and [a.name for a in est.accounts] == ["alice", "bob"]
    searched = ledger.account_rows(limit=2, search="a")        # alice, carol, dave: "more than 2"
    assert (searched.total, searched.total_exact) == (3, False)
    everyone = ledger.account_rows()                          # all of them read: counted exactly
    assert (everyone.total, everyone.total_exact) == (4, True)
