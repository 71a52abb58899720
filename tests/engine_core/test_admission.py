"""Admission of deposits and withdrawals (engine/core/admission.py), as properties: a deposit
is never admitted beyond the house's free cash, a withdrawal never beyond what the account
holds after its pending events, and a bulk import decides each row exactly as recording
the rows one by one would (with the same functions), all of them or none."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.ledger.schema import Holding
from adapters.ledger.store import Ledger, LedgerError
from engine.core.admission import AccountRoom, HouseCash, admit_deposit, admit_withdrawal
from engine.shell import policies

cents = st.integers(min_value=1, max_value=2_000_000)


@given(cash=st.integers(0, 5_000_000), promised=st.integers(0, 5_000_000), asks=st.lists(cents, max_size=30))
def test_deposits_are_admitted_while_and_only_while_the_houses_free_cash_covers_them(cash, promised, asks):
    house = HouseCash("main", cash, promised)
    admitted = 0
    for a in asks:
        verdict = admit_deposit(a, "alice", house)
        assert verdict.admitted == (a <= cash - promised - admitted)          # never beyond, never refused below
        assert (verdict.reason is None) == verdict.admitted
        if verdict:
            house = house.after(a)
            admitted += a
        else:
            assert "\n" not in verdict.reason and f"only ${max(house.free, 0) // 100}." in verdict.reason
    assert admitted <= max(cash - promised, 0) and house.free == cash - promised - admitted


@given(value=st.integers(0, 5_000_000), cash=st.integers(0, 1_000_000), deposits=st.integers(0, 1_000_000),
       withdrawals=st.integers(0, 1_000_000),
       steps=st.lists(st.tuples(st.sampled_from(["deposit", "withdrawal"]), cents), max_size=30))
def test_withdrawals_never_take_more_than_the_account_holds_after_pending_events(value, cash, deposits, withdrawals,
                                                                                 steps):
    room = AccountRoom("alice", value, cash, deposits, withdrawals)
    taken = added = 0
    for kind, a in steps:
        if kind == "deposit":
            room = room.after_deposit(a)
            added += a
            continue
        verdict = admit_withdrawal(a, room, in_batch=True)
        assert verdict.admitted == (a <= value + cash + deposits + added - withdrawals - taken)
        if verdict:
            room = room.after_withdrawal(a)
            taken += a
            assert room.room >= 0
        else:
            assert verdict.reason.startswith(f"withdrawal of ${a // 100}.{a % 100:02d} from 'alice' is more than")
    assert taken <= max(value + cash + deposits + added - withdrawals, 0)


POLICY = 'pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\n'
PRICES = {"VTI": Decimal("250.00"), "BND": Decimal("72.50"), "TIP": Decimal("110.00")}
rows = st.lists(st.tuples(st.sampled_from(["alice", "bob"]), st.sampled_from(["deposit", "withdrawal"]),
                          st.integers(1, 400_000)), min_size=1, max_size=8)


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.ensure_house("main", Decimal("5000.00"), {})
    (tmp_path / "core.pie").write_text(POLICY)
    for name in ("alice", "bob"):
        policies.add_account(led, name, "Core", tmp_path / "core.pie")
    with led.tx() as s:                                   # alice holds $1,500.00 of VTI, bob nothing
        s.add(Holding(account_id=led.account("alice").id, path="VTI", symbol="VTI", shares=Decimal("6")))
    yield led
    led.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=rows)
def test_an_import_admits_exactly_the_rows_that_recording_them_one_by_one_admits_and_all_or_none(ledger, batch):
    def pending() -> list:
        return [(n, e.kind, e.amount) for e, n in ledger.events(status="pending")]
    before = pending()
    refused, recorded = [], []
    for line, (name, kind, c) in enumerate(batch, start=2):          # one by one, then undone
        amount = f"{c // 100}.{c % 100:02d}"
        try:
            rec = ledger.deposit(name, amount) if kind == "deposit" else ledger.withdraw(name, amount, PRICES)
            recorded.append(rec.event_id)
        except LedgerError:
            refused.append(line)
    for event_id in recorded:
        ledger.cancel(event_id)
    assert pending() == before
    csv_rows = [{"account": n, "kind": k, "amount": Decimal(c).scaleb(-2)} for n, k, c in batch]   # parsed (service)
    if refused:
        with pytest.raises(LedgerError) as e:
            ledger.import_events(csv_rows, PRICES, check_rebalance=policies.rebalance_check())
        assert [int(part.split(":", 2)[1]) for part in str(e.value).split("; ")] == refused
        assert pending() == before                                   # none of them
    else:
        assert ledger.import_events(csv_rows, PRICES, check_rebalance=policies.rebalance_check()) == (len(batch), 0)
        added = pending()[len(before):]
        assert added == [(n, k, Decimal(c).scaleb(-2)) for n, k, c in batch]
        for e, _ in ledger.events(status="pending"):                 # undone for the next example
            ledger.cancel(e.id)
