"""The engine's invariants on random pies (depth up to 4, up to 50 slices per pie)."""

from __future__ import annotations

import random
from dataclasses import replace
from fractions import Fraction

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.core import events as ev
from engine.core.planner import plan
from engine_core.strategies import cents, holdings, leaf_paths, pie_paths, pies
from rules.library import standard_rules
from rules.model import FULL, Pie, Security

settings.register_profile("default", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("default")

M1 = standard_rules()["m1"]
RULES = standard_rules()


def value_under(mapping: dict[str, int], prefix: str) -> int:
    if not prefix:
        return sum(mapping.values())
    return sum(v for p, v in mapping.items() if p.startswith(prefix + "/"))


def conserved(before: dict[str, int], p, cash: int = 0) -> None:
    """Cents in = cents out: holdings + cash move only by what came in and went out."""
    assert sum(p.holdings_after.values()) + p.cash_after == \
        sum(before.values()) + cash + p.inflow - p.withdrawn
    assert sum(p.trades.values()) == sum(p.holdings_after.values()) - sum(before.values())
    net = {}
    for path, c in p.trades.items():
        s = path.rsplit("/", 1)[-1]
        net[s] = net.get(s, 0) + c
    sent = {o.symbol: (o.cents if o.side == "buy" else -o.cents) for o in p.orders}
    assert {s: c for s, c in net.items() if c} == sent


def children(pie: Pie, prefix: str):
    for s in pie.slices:
        path = f"{prefix}/{s.name}" if prefix else s.name
        yield path, s


def check_levels(pie: Pie, prefix: str, before: dict, after: dict, sign: int) -> None:
    """No child of any pie is pushed past its target share of the pie's total after the flow
    (one cent of rounding allowed), and the distance to target falls by the amount moved."""
    total_after = value_under(after, prefix)
    dist_before = dist_after = Fraction(0)
    moved = 0
    for path, s in children(pie, prefix):
        b = before.get(path, 0) if isinstance(s, Security) else value_under(before, path)
        a = after.get(path, 0) if isinstance(s, Security) else value_under(after, path)
        goal = Fraction(total_after * s.target_bp, FULL)
        if sign > 0 and a > b:
            assert a <= goal + 1, f"{path} bought past its target: {a} > {goal}"
        if sign < 0 and a < b:
            assert a >= goal - 1, f"{path} sold past its target: {a} < {goal}"
        dist_before += abs(goal - b)
        dist_after += abs(goal - a)
        moved += abs(a - b)
        if isinstance(s, Pie):
            check_levels(s, path, before, after, sign)
    n = len(pie.slices)
    assert abs((dist_before - dist_after) - moved) <= 2 * n, (dist_before, dist_after, moved)


@given(st.data())
def test_deposit_conserves_cents_never_sells_never_overshoots(data):
    pie = data.draw(pies())
    h = data.draw(holdings(pie))
    amount = data.draw(st.integers(1, 50_000_000))
    p = plan(pie, h, [ev.Deposit(amount)], M1, min_order=0)
    conserved(h, p)
    assert all(c > 0 for c in p.trades.values())
    assert sum(p.trades.values()) == amount and p.cash_after == 0
    check_levels(pie, "", h, p.holdings_after, +1)


@given(st.data())
def test_withdrawal_conserves_cents_never_buys_never_overshoots(data):
    pie = data.draw(pies())
    h = data.draw(holdings(pie, empty_ok=False))
    amount = data.draw(st.integers(1, sum(h.values())))
    p = plan(pie, h, [ev.Withdrawal(amount)], M1, min_order=0)
    conserved(h, p)
    assert all(c < 0 for c in p.trades.values())
    assert -sum(p.trades.values()) == amount == p.withdrawn and p.shortfall == 0
    check_levels(pie, "", h, p.holdings_after, -1)


@given(st.data())
def test_withdrawal_above_value_and_cash_is_refused(data):
    from engine.core.planner import PlanError
    pie = data.draw(pies(max_depth=2))
    h = data.draw(holdings(pie))
    cash = data.draw(cents)
    too_much = sum(h.values()) + cash + data.draw(st.integers(1, 1000))
    try:
        plan(pie, h, [ev.Withdrawal(too_much)], M1, cash=cash)
    except PlanError as e:
        assert "more than the account holds" in str(e)
    else:
        raise AssertionError("an over-large withdrawal was planned")


@given(st.data())
def test_rebalance_twice_trades_nothing_the_second_time(data):
    pie = data.draw(pies())
    h = data.draw(holdings(pie))
    first = plan(pie, h, [ev.Rebalance()], M1, min_order=0)
    conserved(h, first)
    assert sum(first.trades.values()) == 0
    second = plan(pie, dict(first.holdings_after), [ev.Rebalance()], M1, min_order=0)
    assert second.trades == {} and second.orders == ()


@given(st.data())
def test_rebalance_puts_every_slice_within_a_cent_of_target(data):
    pie = data.draw(pies())
    h = data.draw(holdings(pie))
    p = plan(pie, h, [ev.Rebalance()], M1, min_order=0)

    def walk(node: Pie, prefix: str) -> None:
        total = value_under(p.holdings_after, prefix)
        for path, s in children(node, prefix):
            v = p.holdings_after[path] if isinstance(s, Security) else value_under(p.holdings_after, path)
            assert abs(Fraction(total * s.target_bp, FULL) - v) < 1
            if isinstance(s, Pie):
                walk(s, path)
    walk(pie, "")


@given(st.data())
def test_nested_rebalance_leaves_everything_outside_unchanged(data):
    pie = data.draw(pies())
    nested = pie_paths(pie)
    assume(nested)
    target = data.draw(st.sampled_from(nested))
    h = data.draw(holdings(pie))
    p = plan(pie, h, [ev.Rebalance(target)], M1, min_order=0)
    conserved(h, p)
    for path, v in h.items():
        if not path.startswith(target + "/"):
            assert p.holdings_after[path] == v, path
    assert value_under(p.holdings_after, target) == value_under(h, target)


@given(st.data())
def test_removed_slice_proceeds_stay_in_its_parent(data):
    pie = data.draw(pies())
    h = data.draw(holdings(pie))
    parent = data.draw(st.sampled_from(["", *pie_paths(pie)]))
    gone = data.draw(st.integers(1, 5_000_000))
    removed = f"{parent}/GONE" if parent else "GONE"
    h_with = {**h, removed: gone}
    p = plan(pie, h_with, [], M1, min_order=0)
    conserved(h_with, p)
    assert p.trades[removed] == -gone and removed not in p.holdings_after
    assert value_under(p.holdings_after, parent) == value_under(h_with, parent)
    for path, v in h.items():
        if parent and not path.startswith(parent + "/"):
            assert p.holdings_after[path] == v, f"{path} is outside {parent!r} and traded"
    assert all(c > 0 for path, c in p.trades.items() if path != removed)


def zero_one(pie: Pie, path: str) -> Pie:
    """The pie with the slice at `path` set to 0%, its points given to its first sibling."""
    head, _, rest = path.partition("/")
    slices = list(pie.slices)
    i = next(k for k, s in enumerate(slices) if s.name == head)
    if rest:
        slices[i] = zero_one(slices[i], rest)
    else:
        j = 0 if i else 1
        slices[j] = replace(slices[j], target_bp=slices[j].target_bp + slices[i].target_bp)
        slices[i] = replace(slices[i], target_bp=0)
    return replace(pie, slices=tuple(slices))


@given(st.data())
def test_slice_set_to_zero_is_sold_and_its_parent_keeps_its_value(data):
    pie = data.draw(pies())
    candidates = [p for p, s in pie.walk() if s.target_bp < FULL]   # has a sibling to take its points
    assume(candidates)
    path = data.draw(st.sampled_from(candidates))
    h = data.draw(holdings(pie))
    changed = zero_one(pie, path)
    p = plan(changed, h, [ev.TargetChange()], M1, min_order=0)
    conserved(h, p)
    parent = path.rpartition("/")[0]
    for leaf in leaf_paths(changed):
        if leaf == path or leaf.startswith(path + "/"):
            assert p.holdings_after[leaf] == 0
        elif parent and not leaf.startswith(parent + "/"):
            assert p.holdings_after[leaf] == h[leaf], "outside the parent nothing trades"
    assert value_under(p.holdings_after, parent) == value_under(h, parent)


@given(st.data())
def test_target_change_alone_trades_only_liquidations(data):
    pie = data.draw(pies(zeros=True))
    h = data.draw(holdings(pie))
    p = plan(pie, h, [ev.TargetChange()], M1, min_order=0)
    conserved(h, p)
    zero = {path for path, s in pie.walk() if s.target_bp == 0}
    if not any(h.get(path) for path in leaf_paths(pie)
               if any(path == z or path.startswith(z + "/") for z in zero)):
        assert p.trades == {}


def shuffled(pie: Pie, rng: random.Random) -> Pie:
    slices = [shuffled(s, rng) if isinstance(s, Pie) else s for s in pie.slices]
    rng.shuffle(slices)
    return replace(pie, slices=tuple(slices))


@given(st.data(), st.sampled_from(["deposit", "withdrawal", "rebalance"]), st.randoms(use_true_random=False))
def test_slice_order_changes_only_cent_tie_breaks(data, kind, rng):
    pie = data.draw(pies(max_depth=3))
    h = data.draw(holdings(pie, empty_ok=False))
    event = {"deposit": ev.Deposit(data.draw(st.integers(1, 10_000_000))),
             "withdrawal": ev.Withdrawal(data.draw(st.integers(1, sum(h.values())))),
             "rebalance": ev.Rebalance()}[kind]
    a = plan(pie, h, [event], M1, min_order=0)
    b = plan(shuffled(pie, rng), h, [event], M1, min_order=0)
    assert sum(a.trades.values()) == sum(b.trades.values())
    depth = max(p.count("/") for p in leaf_paths(pie)) + 1
    for path in set(a.trades) | set(b.trades):
        # Each level may hand a tied cent to a different child; no more than that.
        assert abs(a.trades.get(path, 0) - b.trades.get(path, 0)) <= 2 * depth, path


@given(st.data(), st.sampled_from(sorted(RULES)))
def test_every_rule_set_conserves_cents_with_mixed_events(data, rules_name):
    pie = data.draw(pies(max_depth=3, zeros=True))
    h = data.draw(holdings(pie))
    cash = data.draw(st.integers(0, 1_000_000))
    evs = data.draw(st.lists(st.one_of(
        st.builds(ev.Deposit, st.integers(1, 5_000_000)),
        st.builds(ev.Dividend, st.integers(1, 100_000)),
        st.builds(ev.Withdrawal, st.integers(1, 2_000_000)),
        st.just(ev.Rebalance()),
        st.sampled_from(pie_paths(pie) or [""]).map(ev.Rebalance),
        st.just(ev.TargetChange())), max_size=5))
    min_order = data.draw(st.sampled_from([0, 100, 2500]))
    out = sum(e.cents for e in evs if isinstance(e, ev.Withdrawal))
    inn = sum(e.cents for e in evs if isinstance(e, (ev.Deposit, ev.Dividend)))
    assume(out <= sum(h.values()) + cash + inn)
    p = plan(pie, h, evs, RULES[rules_name], cash=cash, min_order=min_order)
    conserved(h, p, cash)
    assert p.cash_after >= 0
    for d in p.deferred:
        assert 0 < d.cents < min_order
    for o in p.orders:
        assert o.cents >= min_order and o.cents > 0
