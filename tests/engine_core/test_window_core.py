"""The pure window core over whole random windows: many accounts on nested pies, every
event kind, liquidations crossing other accounts' buys, prices moving up to 5% between
planning and fill, partial fills in several parts, rejected orders. After close the
ledger must agree with the broker exactly, and the same inputs must give the same window.

`simulate` composes the core's steps in the order engine/shell/window.py does, with a
broker made of two dicts (positions and cash) instead of a database and a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.fills import NANO, floor9
from engine.core.window.allocation import allocate_symbol, shares_after, spent
from engine.core.window.collect import split_dividend
from engine.core.window.model import (AccountState, CashLine, Cause, FillReport, Holding, Intent, Kind, Outcome, Phase,
                                      WindowEvent)
from engine.core.window.netting import net_symbols
from engine.core.window.planning import plan_account
from engine.core.window.scaling import scale_buys
from engine.core.window.settlement import settle
from rules.library import standard_rules
from rules.model import FULL, Pie, Security

from engine_core.strategies import targets

DAY = date(2026, 11, 24)
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
HOUSE = 0
CENT = Decimal("0.01")


@st.composite
def small_pie(draw, name: str = "Root", target: int = FULL, depth: int = 1) -> Pie:
    """A pie over a few shared symbols (so accounts cross each other), nested to depth 3."""
    n = draw(st.integers(1, 4))
    ts = draw(targets(n, False))
    syms = draw(st.lists(st.sampled_from(SYMBOLS), min_size=n, max_size=n, unique=True))
    slices = []
    for k, (t, s) in enumerate(zip(ts, syms)):
        if depth < 3 and draw(st.integers(0, 3)) == 0:
            slices.append(draw(small_pie(f"P{depth}{k}", t, depth + 1)))
        else:
            slices.append(Security(s, t))
    return Pie(name, target, tuple(slices))


def leaves(pie: Pie) -> list[tuple[str, str]]:
    return [(p, s.symbol) for p, s in pie.walk() if isinstance(s, Security)]


def nested(pie: Pie) -> list[str]:
    return [p for p, s in pie.walk() if isinstance(s, Pie)]


shares = st.decimals(min_value=Decimal(0), max_value=Decimal(400), places=9)


@st.composite
def worlds(draw) -> dict[str, Any]:
    prices = {s: draw(st.decimals(min_value=Decimal("5"), max_value=Decimal("600"), places=2)) for s in SYMBOLS}
    pies = [draw(small_pie()) for _ in range(draw(st.integers(1, 3)))]
    rules = standard_rules()
    accounts = []
    eid = 1
    for aid in range(1, draw(st.integers(2, 9)) + 1):
        pie = draw(st.sampled_from(pies))
        held = [Holding(p, s, draw(shares)) for p, s in leaves(pie) if draw(st.booleans())]
        if draw(st.integers(0, 2)) == 0:       # a slice the pie no longer has: liquidated
            sym = draw(st.sampled_from(SYMBOLS))
            held.append(Holding(f"Gone/{sym}", sym, draw(shares.filter(bool))))
        events = []
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from([Kind.DEPOSIT, Kind.WITHDRAWAL, Kind.DIVIDEND, Kind.REBALANCE,
                                         Kind.TARGET_CHANGE]))
            if kind in (Kind.DEPOSIT, Kind.WITHDRAWAL, Kind.DIVIDEND):
                events.append(WindowEvent(eid, aid, kind, draw(st.integers(1, 3_000_000))))
            elif kind == Kind.REBALANCE:
                path = draw(st.sampled_from(["", "Nope", *nested(pie)]))
                events.append(WindowEvent(eid, aid, kind, None, path or None))
            else:
                events.append(WindowEvent(eid, aid, kind))
            eid += 1
        for h in held:
            if h.path.startswith("Gone/"):
                events.append(WindowEvent(eid, aid, Kind.LIQUIDATION, None, h.path))
                eid += 1
        if draw(st.integers(0, 5)) == 0:       # the account is being closed
            events.append(WindowEvent(eid, aid, Kind.CLOSE))
            eid += 1
        ruleset = rules[draw(st.sampled_from(sorted(rules)))]
        accounts.append(AccountState(aid, f"a{aid}", draw(st.integers(0, 500_000)), pie, ruleset, tuple(held),
                                     tuple(events), None))
    house_shares = {s: draw(st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=9)) for s in SYMBOLS}
    fills = {s: (draw(st.sampled_from([Decimal(1), Decimal(1), Decimal("0.5"), Decimal("0.3"), Decimal(0)])),
                 draw(st.integers(-500, 500)), draw(st.integers(1, 3)))
             for s in SYMBOLS}
    min_order = draw(st.sampled_from([0, 100, 500]))
    return {"prices": prices, "accounts": accounts, "house_shares": house_shares, "fills": fills,
            "min_order": min_order, "house_cash": draw(st.integers(0, 1_000_000))}


@dataclass
class Broker:
    """Positions and cash; fills each order by the world's fault plan for its symbol."""

    positions: dict[str, Decimal]
    cash: int
    plan: dict[str, tuple[Decimal, int, int]]
    prices: dict[str, Decimal]
    sent: list = field(default_factory=list)

    def fill(self, order) -> tuple[FillReport, ...]:
        share, move_bp, parts = self.plan[order.symbol]
        price = (self.prices[order.symbol] * (10_000 + move_bp) / 10_000).quantize(Decimal("0.0001"))
        self.sent.append(order)
        if order.side == "sell":
            qty = floor9(order.qty * share)
            assert qty <= self.positions.get(order.symbol, Decimal(0)), "the broker sold shares it does not hold"
        else:
            qty = floor9(Decimal(order.notional) / 100 / price * share)
        if not qty:
            return ()
        total = order.notional if (order.side == "buy" and share == 1) else \
            int((qty * price * 100).to_integral_value(rounding=ROUND_DOWN))
        self.positions[order.symbol] = self.positions.get(order.symbol, Decimal(0)) + (qty if order.side == "buy" else -qty)
        self.cash += -total if order.side == "buy" else total
        # Reported in `parts` pieces, as a broker reports a fill that came in over time.
        out, q_left, c_left = [], qty, total
        for k in range(parts, 0, -1):
            q = q_left if k == 1 else floor9(qty / parts)
            c = c_left if k == 1 else total // parts
            if q:
                out.append(FillReport(q, c, price))
            q_left, c_left = q_left - q, c_left - c
        return tuple(out)


def simulate(world: dict[str, Any], *, reverse: bool = False) -> dict[str, Any]:
    prices = world["prices"]
    accounts = list(reversed(world["accounts"])) if reverse else list(world["accounts"])
    holdings: dict[tuple[int, str], tuple[str, Decimal]] = {}
    for a in accounts:
        for h in a.holdings:
            holdings[(a.id, h.path)] = (h.symbol, h.shares)
    for s, q in world["house_shares"].items():
        holdings[(HOUSE, s)] = (s, q)
    dividends = sum(e.cents or 0 for a in accounts for e in a.events if e.kind == Kind.DIVIDEND)
    cash = {a.id: a.cash for a in accounts}
    house_cash = world["house_cash"] + sum(e.cents or 0 for a in accounts for e in a.events if e.kind == Kind.DEPOSIT)
    positions: dict[str, Decimal] = {}
    for sym, q in holdings.values():
        positions[sym] = positions.get(sym, Decimal(0)) + q
    broker = Broker(positions, sum(cash.values()) + house_cash + dividends, world["fills"], prices)

    # plan
    plans = [plan_account(a, prices, DAY) for a in accounts]
    lines = [CashLine(p.account_id, p.planned, p.reason, p.cash_before, p.deposits, p.dividends, p.withdrawals,
                      p.rebalanced) for p in plans if p.worth_recording]
    intents: dict[int, Intent] = {}
    for p in sorted(plans, key=lambda p: p.account_id):
        for t in p.trades:
            i = len(intents) + 1
            intents[i] = Intent(i, p.account_id, t.path, t.symbol, t.cents, t.cents, t.sell_all)
    decided = {o.event_id: o for p in plans for o in p.decided}

    def by_symbol(symbols=None):
        out: dict[str, list[Intent]] = {}
        for r in intents.values():
            if symbols is None or r.symbol in symbols:
                out.setdefault(r.symbol, []).append(r)
        return out

    def held() -> dict[tuple[int, str], Decimal]:
        return {k: v[1] for k, v in holdings.items()}

    def update(amounts):
        for k, c in amounts.items():
            intents[k] = Intent(k, intents[k].account_id, intents[k].path, intents[k].symbol, intents[k].planned, c,
                                intents[k].sell_all)

    # net
    n = net_symbols(by_symbol(), held(), prices, world["min_order"])
    update(n.amounts)
    orders = {o.symbol: o for o in n.orders}
    dropped: set[str] = set()
    reports: dict[str, tuple[FillReport, ...]] = {}
    moves = []

    def run_phase(phase: Phase) -> None:
        for sym in sorted(orders):
            if orders[sym].phase == phase:
                reports[sym] = broker.fill(orders[sym])
        mine = {s for s in by_symbol() if (orders[s].phase if s in orders else
                                           (Phase.BUY if s in dropped else Phase.SELL)) == phase}
        h = held()
        for sym in sorted(mine):
            o = orders.get(sym)
            ms = allocate_symbol(sym, by_symbol({sym})[sym], o, reports.get(sym, ()), prices[sym], h, HOUSE)
            moves.extend(ms)
            for key, v in shares_after(h, ms).items():
                holdings[key] = v

    run_phase(Phase.SELL)
    buy_syms = {s for s, o in orders.items() if o.phase == Phase.BUY}
    buys = by_symbol(buy_syms)
    sc = scale_buys(lines, [r for rows in buys.values() for r in rows], spent(moves))
    if sc.notes:
        update(sc.amounts)
        touched = {intents[k].symbol for k in sc.amounts}
        for s in touched:
            dropped.add(s)
            del orders[s]
        rn = net_symbols(by_symbol(touched), held(), prices, world["min_order"], Phase.BUY)
        update(rn.amounts)
        orders.update({o.symbol: o for o in rn.orders})
    run_phase(Phase.BUY)

    # settle
    open_events = [e for a in accounts for e in a.events if e.id not in decided]
    liquidating = {e: key for p in plans for e, path in p.liquidating for key in [(p.account_id, path)]}
    closing = {e.account_id for e in open_events if e.kind == Kind.CLOSE}
    remaining = {aid: [Holding(p, sym, q) for (a, p), (sym, q) in sorted(holdings.items()) if a == aid]
                 for aid in closing}
    st_ = settle(lines, open_events, spent(moves), house_id=HOUSE, house_cash=house_cash, liquidating=liquidating,
                 held_after=held(), remaining=remaining, prices=prices)
    for key, v in shares_after(held(), st_.sweeps).items():
        holdings[key] = v
    for a in st_.accounts:
        cash[a.account_id] = a.cash
    outcomes = {**decided, **{o.event_id: o for o in st_.outcomes}}
    return {"holdings": {k: v for k, v in sorted(holdings.items()) if v[1]}, "cash": dict(sorted(cash.items())),
            "house_cash": st_.house_cash, "broker": broker, "outcomes": dict(sorted(outcomes.items())),
            "plans": plans, "liquidating": liquidating, "intents": intents, "moves": moves, "orders": dict(sorted(orders.items())),
            "settlement": st_}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
def test_whole_windows_leave_ledger_and_broker_in_exact_agreement(world):
    r = simulate(world)
    broker = r["broker"]
    owned: dict[str, Decimal] = {}
    for (aid, path), (sym, q) in r["holdings"].items():
        assert q == q.quantize(NANO)
        assert q >= 0, f"{aid} holds {q} {sym} at {path}"
        owned[sym] = owned.get(sym, Decimal(0)) + q
    for sym in sorted(set(owned) | set(broker.positions)):
        assert owned.get(sym, Decimal(0)) == broker.positions.get(sym, Decimal(0)), sym
    assert sum(r["cash"].values()) + r["house_cash"] == broker.cash
    assert all(c >= 0 for c in r["cash"].values())
    # A close sells everything and withdraws all cash; done only when nothing is left.
    for a in world["accounts"]:
        for e in a.events:
            if e.kind == Kind.CLOSE and r["outcomes"][e.id].outcome == Outcome.DONE:
                assert r["cash"][a.id] == 0
                assert not any(q for (aid, _), (_, q) in r["holdings"].items() if aid == a.id)
    # Every event ends done, paid in part with a reason, pending again, or rejected with a reason.
    events = [e for a in world["accounts"] for e in a.events]
    assert sorted(r["outcomes"]) == sorted(e.id for e in events)
    for o in r["outcomes"].values():
        if o.outcome in (Outcome.PAID_IN_PART, Outcome.REJECTED, Outcome.RETRY):
            assert o.reason and o.cause is not None
    # A liquidation leaves exactly zero unless its sell filled short or was cut below the
    # minimum; then it is pending again, and only then.
    cut = {(r.account_id, r.path) for r in r["intents"].values() if r.amount != r.planned}
    for eid, key in r["liquidating"].items():
        sym = r["holdings"].get(key, (key[1].rsplit("/", 1)[-1],))[0]
        o = r["orders"].get(sym)
        short = o is not None and o.side == "sell" and world["fills"][sym][0] < 1
        still = r["holdings"].get(key, (sym, Decimal(0)))[1]
        assert (r["outcomes"][eid].outcome == Outcome.RETRY) == (still > 0)
        if not short and key not in cut:
            assert still == 0, (key, still)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
def test_the_same_window_twice_gives_the_same_result_whatever_the_input_order(world):
    a, b = simulate(world), simulate(world, reverse=True)
    for k in ("holdings", "cash", "house_cash", "outcomes", "orders"):
        assert a[k] == b[k], k
    assert sorted(a["moves"], key=repr) == sorted(b["moves"], key=repr)


# --- single decisions -------------------------------------------------------------------

def _account(events, holdings=(), cash=0, pie=None, aid=1):
    pie = pie or Pie("Root", FULL, (Security("AAA", 6000), Security("BBB", 4000)))
    return AccountState(aid, "a", cash, pie, standard_rules()["m1"], tuple(holdings), tuple(events))


def test_one_over_large_withdrawal_is_refused_alone():
    held = [Holding("AAA", "AAA", Decimal(10)), Holding("BBB", "BBB", Decimal(10))]      # $1,000 + $500
    evs = [WindowEvent(1, 1, Kind.WITHDRAWAL, 10_000), WindowEvent(2, 1, Kind.WITHDRAWAL, 500_000),
           WindowEvent(3, 1, Kind.WITHDRAWAL, 20_000), WindowEvent(4, 1, Kind.DEPOSIT, 5_000)]
    p = plan_account(_account(evs, held), {"AAA": Decimal(100), "BBB": Decimal(50)}, DAY)
    assert p.planned and p.withdrawals == 30_000 and p.deposits == 5_000
    assert [(o.event_id, o.outcome, o.cause) for o in p.decided] == [(2, Outcome.REJECTED, Cause.PLAN_REFUSED)]
    assert p.decided[0].reason.startswith("$5000.00 after $100.00 of earlier withdrawals: withdrawal of $5100.00 is")


def test_a_missing_price_refuses_the_account_and_keeps_its_liquidation_pending():
    held = [Holding("AAA", "AAA", Decimal(1)), Holding("Old/ZZZ", "ZZZ", Decimal(2))]
    evs = [WindowEvent(1, 1, Kind.DEPOSIT, 1_000), WindowEvent(2, 1, Kind.LIQUIDATION, None, "Old/ZZZ"),
           WindowEvent(3, 1, Kind.DIVIDEND, 77)]
    p = plan_account(_account(evs, held), {"AAA": Decimal(100), "BBB": Decimal(50)}, DAY)
    assert not p.planned and p.reason == "no price for ZZZ" and p.dividends == 77
    assert {o.event_id: o.outcome for o in p.decided} == {1: Outcome.REJECTED, 2: Outcome.RETRY}


def test_a_liquidation_of_a_slice_back_in_the_pie_is_done_without_trading():
    held = [Holding("AAA", "AAA", Decimal(1))]
    p = plan_account(_account([WindowEvent(1, 1, Kind.LIQUIDATION, None, "AAA")], held),
                     {"AAA": Decimal(100), "BBB": Decimal(50)}, DAY)
    assert p.trades == () and p.decided[0].outcome == Outcome.DONE and "in the pie again" in p.decided[0].reason


def test_liquidations_crossing_a_buy_leave_no_negative_house_and_no_dust():
    """The VNQI case: 8 accounts liquidate, one buys $92.26; the price moves before the fill."""
    price = Decimal("44.91")
    held = {(i, "Gone/VNQI"): Decimal("6.732134676") + Decimal(i) / 10**9 for i in range(1, 9)}
    intents = [Intent(i, i, "Gone/VNQI", "VNQI", -int((q * price * 100).to_integral_value()),
                      -int((q * price * 100).to_integral_value()), True) for i, ((_, _), q) in
               enumerate(sorted(held.items()), start=1)]
    intents.append(Intent(9, 9, "VNQI", "VNQI", 9_226, 9_226, False))
    n = net_symbols({"VNQI": intents}, held, {"VNQI": price}, 100)
    (order,) = n.orders
    assert order.side == "sell" and order.notional is None
    delivered = sum(held.values(), Decimal(0))
    taken = floor9(Decimal("92.26") / price)
    assert order.qty == delivered - taken                  # never more than the sellers deliver
    for move_bp in (-500, 0, 500):
        fill_price = price * (10_000 + move_bp) / 10_000
        proceeds = int((order.qty * fill_price * 100).to_integral_value(rounding=ROUND_DOWN))
        moves = allocate_symbol("VNQI", intents, order, (FillReport(order.qty, proceeds, fill_price),), price, held,
                                HOUSE)
        after = shares_after(held, moves)
        assert all(after[(i, "Gone/VNQI")][1] == 0 for i in range(1, 9))
        house = sum((m.shares for m in moves if m.account_id == HOUSE), Decimal(0))
        assert house >= 0
        assert sum((m.shares for m in moves), Decimal(0)) == -order.qty
        assert sum(m.cents for m in moves) == -proceeds


def test_scaling_splits_cents_the_same_whatever_the_order_of_its_inputs():
    lines = [CashLine(1, True, None, 1_003, 0, 0, 0), CashLine(2, True, None, 5_999, 0, 0, 0)]
    intents = [Intent(i, 1 + i % 2, f"P{i}", f"S{i % 3}", 1_000, 1_000, False) for i in range(1, 12)]
    spent = {1: 0, 2: 0}
    a = scale_buys(lines, intents, spent)
    b = scale_buys(list(reversed(lines)), list(reversed(intents)), spent)
    assert a == b and a.notes
    for note in a.notes:
        assert sum(c for k, c in a.amounts.items() if 1 + k % 2 == note.account_id) == note.spent


def test_a_dividend_splits_by_shares_exactly_and_the_house_keeps_its_part():
    holders = [(2, "X", Decimal("1.5")), (1, "Y/X", Decimal("1.5")), (0, "X", Decimal("0.000000003")), (3, "X", Decimal(0))]
    d = split_dividend(1_001, holders, 0)
    assert sum(c for _, c in d.parts) + d.house_cents == 1_001
    assert d.parts == ((1, 501), (2, 500))                 # the tie goes to the earlier account
    assert split_dividend(500, [], 0).house_cents == 500


@pytest.mark.parametrize("paid_ratio", [Decimal(1), Decimal("0.4"), Decimal(0)])
def test_withdrawals_are_paid_in_order_and_in_part_with_the_reason(paid_ratio):
    line = CashLine(1, True, None, 0, 0, 0, 30_000)
    events = [WindowEvent(1, 1, Kind.WITHDRAWAL, 10_000), WindowEvent(2, 1, Kind.WITHDRAWAL, 20_000)]
    proceeds = int(30_000 * paid_ratio)
    st_ = settle([line], events, {1: -proceeds}, house_id=HOUSE, house_cash=0, liquidating={}, held_after={})
    assert st_.accounts[0].withdrawn == proceeds and st_.accounts[0].cash == 0 and st_.house_cash == proceeds
    got = {o.event_id: o.outcome for o in st_.outcomes}
    if paid_ratio == 1:
        assert got == {1: Outcome.DONE, 2: Outcome.DONE}
    elif paid_ratio:
        assert got == {1: Outcome.DONE, 2: Outcome.PAID_IN_PART}
        assert st_.outcomes[1].reason == "paid $20.00 of $200.00: sells came in short"
    else:
        assert got == {1: Outcome.PAID_IN_PART, 2: Outcome.PAID_IN_PART}
