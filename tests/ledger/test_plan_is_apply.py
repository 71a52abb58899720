"""A policy's plan and its apply liquidate the same slices: over random policy changes
(slices added, removed, set to 0%, nested pies emptied), random holdings (slices the old
pie never had, shares of zero) and liquidations already pending, the liquidation events
an apply queues are exactly the plan's, and the accounts it gives a target-change event
are exactly those whose targets the plan says change."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from adapters.ledger.schema import Account, Event, Holding
from adapters.ledger.store import Ledger
from engine.shell import policies

TOP = ("AAA", "BBB", "CCC", "DDD")
NESTED = ("EEE", "FFF")
PATHS = TOP + tuple(f"N/{s}" for s in NESTED) + ("OLD", "N/GONE")
_files = itertools.count(1)


def _split(draw, n: int) -> list[int]:
    """n whole percentages summing to 100, some possibly 0 (one at least above 0)."""
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1)))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 100])]
    return parts


@st.composite
def pies(draw) -> str:
    top = draw(st.lists(st.sampled_from(TOP), min_size=1, max_size=4, unique=True))
    nested = draw(st.lists(st.sampled_from(NESTED), max_size=2, unique=True))
    names = sorted(top) + (["N"] if nested else [])
    shares = _split(draw, len(names))
    slices = []
    for name, pct in zip(names, shares):
        if name == "N":
            inner = _split(draw, len(nested))
            if not any(inner):
                inner[0] = 100
            slices.append(f'pie "N" {pct}% {{ ' + " ".join(f"{s} {p}%" for s, p in zip(sorted(nested), inner)) + " }")
        else:
            slices.append(f"{name} {pct}%")
    return 'pie "P" { ' + " ".join(slices) + " }\n"


accounts = st.lists(st.tuples(st.dictionaries(st.sampled_from(PATHS), st.sampled_from(["0", "1.5", "0.000000001"])),
                              st.sets(st.sampled_from(PATHS), max_size=2)),
                    min_size=1, max_size=4)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    led = Ledger(f"sqlite:///{tmp_path_factory.mktemp('plan_is_apply') / 'ledger.db'}")
    led.ensure_house("main", Decimal("0"), {})
    yield led, tmp_path_factory.mktemp("policies")
    led.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=pies(), new=pies(), held=accounts)
def test_plan_and_apply_liquidate_the_same_slices(ledger, old, new, held):
    led, where = ledger
    n = next(_files)
    file = where / f"p{n}.pie"
    file.write_text(old)
    names = [f"x{n}-{i}" for i in range(len(held))]
    for name in names:
        policies.add_account(led, name, "P", file)
    with led.tx() as s:
        for name, (holding, queued) in zip(names, held):
            aid = s.scalars(select(Account.id).where(Account.name == name)).one()
            for path, shares in holding.items():
                s.add(Holding(account_id=aid, path=path, symbol=path.rsplit("/", 1)[-1], shares=Decimal(shares)))
            for path in sorted(queued):
                s.add(Event(account_id=aid, key=f"earlier:{name}:{path}", kind="liquidation", path=path,
                            status="pending"))
    file.write_text(new)
    plan = policies.plan(led, file, new, lambda symbols: {sym: Decimal("10.00") for sym in symbols})
    before = max((e.id for e, _ in led.events()), default=0)
    applied = policies.apply(led, file, new)
    made = [(n_, e.kind, e.path) for e, n_ in led.events() if e.id > before]
    assert {(n_, p) for n_, k, p in made if k == "liquidation"} == \
        {(a.account, x.path) for a in plan.accounts for x in a.liquidations}
    assert sorted(n_ for n_, k, _ in made if k == "target_change") == sorted(plan.retargeted)
    assert applied.liquidations == sum(len(a.liquidations) for a in plan.accounts)
    # Every liquidation is of a slice held (shares above 0) and not already waiting.
    for a in plan.accounts:
        holding, queued = held[names.index(a.account)]
        assert all(Decimal(holding[x.path]) > 0 and x.path not in queued for x in a.liquidations)
