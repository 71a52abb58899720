"""plan(): one account's trades for one window, to the cent. Pure: no I/O, no clock.

Order of work (docs/allocation.md): liquidations first, then the account's cash events
netted into one flow (invested or raised after keeping the cash reserve), then rebalance
requests in the order received, then the rules' triggers; trades are netted per slice and
per symbol, and a per-symbol net below the broker minimum is deferred, its cash kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Mapping, Sequence

from rules.library import DEFAULT_RULES, standard_rules
from rules.model import Pie, RuleSet

from . import allocate
from .actions import algorithm
from .events import Deposit, Dividend, Event, Rebalance, TargetChange, Withdrawal
from .money import fmt
from .portfolio import Node, Portfolio, portfolio


class PlanError(ValueError):
    """The events cannot be planned as given (a user's mistake, said in one line)."""


@dataclass(frozen=True, slots=True)
class Order:
    symbol: str
    side: str          # "buy" | "sell"
    cents: int         # notional, > 0


@dataclass(frozen=True, slots=True)
class Deferred:
    symbol: str
    side: str
    cents: int
    reason: str


@dataclass(frozen=True, slots=True)
class Step:
    """One reason for trading and the slice trades it caused (before per-symbol netting)."""

    cause: str                      # liquidation | cash flow | rebalance | drift | calendar ...
    refs: tuple[str, ...]           # the events behind it
    trades: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Plan:
    trades: Mapping[str, int]                  # slice path -> signed cents (+ buy, - sell), nonzero
    orders: tuple[Order, ...]                  # per symbol, sells first
    deferred: tuple[Deferred, ...]
    holdings_after: Mapping[str, int]          # slice path -> cents, every slice of the pie
    cash_before: int
    cash_after: int
    inflow: int                                # deposits + dividends
    withdrawn: int                             # withdrawals paid this window
    shortfall: int                             # withdrawals that could not be raised (deferred sells)
    steps: tuple[Step, ...] = field(default=())

    def symbol_of(self, path: str) -> str:
        return path.rsplit("/", 1)[-1]


def _period(d: date, every: str) -> tuple[int, ...]:
    if every == "day":
        return (d.toordinal(),)
    if every == "week":
        return tuple(d.isocalendar()[:2])
    if every == "month":
        return (d.year, d.month)
    if every == "quarter":
        return (d.year, (d.month - 1) // 3)
    return (d.year,)


def calendar_due(every: str, as_of: date, last: date | None) -> bool:
    """An `every PERIOD rebalance` trigger fires in the first window of each period."""
    return last is None or _period(as_of, every) != _period(last, every)


class _Work:
    """The mutable working state of one plan: cents per security slice."""

    __slots__ = ("pf", "vals")

    def __init__(self, pf: Portfolio, vals: list[int]):
        self.pf = pf
        self.vals = vals

    def value(self, node: Node) -> int:
        return sum(self.vals[node.lo:node.hi])

    def _child_values(self, node: Node) -> list[int]:
        vals = self.vals
        return [vals[c] if type(c) is int else sum(vals[c.lo:c.hi]) for c in node.children]

    def deposit(self, node: Node, amount: int, split) -> None:
        amounts = split(amount, self._child_values(node), node.targets)
        for child, a in zip(node.children, amounts):
            if a:
                if type(child) is int:
                    self.vals[child] += a
                else:
                    self.deposit(child, a, split)

    def withdraw(self, node: Node, amount: int, split) -> None:
        amounts = split(amount, self._child_values(node), node.targets)
        for child, a in zip(node.children, amounts):
            if a:
                if type(child) is int:
                    self.vals[child] -= a
                else:
                    self.withdraw(child, a, split)

    def rebalance(self, node: Node, total: int) -> None:
        goals = allocate.rebalance_to(total, self._child_values(node), node.targets)
        for child, goal in zip(node.children, goals):
            if type(child) is int:
                self.vals[child] = goal
            else:
                self.rebalance(child, goal)

    def max_drift_over(self, threshold_bp: int) -> bool:
        """Is any slice further than threshold from its target share of its own pie?"""
        for node in self.pf.pies.values():
            cv = self._child_values(node)
            total = sum(cv)
            if total <= 0:
                continue
            limit = threshold_bp * total
            for v, t in zip(cv, node.targets):
                if abs(v * 10_000 - t * total) > limit:
                    return True
        return False


def _net_by_symbol(vals: list[int], before: list[int], symbols: list[str],
                   orphans: Mapping[str, int], kept: Mapping[str, int]) -> dict[str, int]:
    """Signed cents per symbol, summed over the slices that hold it."""
    out: dict[str, int] = {}
    for i, (v, b) in enumerate(zip(vals, before)):
        if v != b:
            out[symbols[i]] = out.get(symbols[i], 0) + v - b
    for path, c in orphans.items():
        if path not in kept:
            s = path.rsplit("/", 1)[-1]
            out[s] = out.get(s, 0) - c
    return out


def _check_amount(ev: Deposit | Dividend | Withdrawal) -> int:
    if type(ev.cents) is not int or ev.cents <= 0:
        kind = type(ev).__name__.lower()
        raise PlanError(f"a {kind} must be a positive amount, not {ev.cents!r} cents")
    return ev.cents


def plan(pie: Pie | Portfolio, holdings: Mapping[str, int], events: Sequence[Event] = (),
         rules: RuleSet | None = None, *, cash: int = 0, min_order: int = 100,
         as_of: date | None = None, last_rebalanced: date | None = None,
         explain: bool = True) -> Plan:
    """Decide one account's trades. Holdings are cents per security slice path.

    Held paths that are not securities of the pie, or whose target (or a pie above them)
    is 0%, are liquidated. `min_order` is the smallest per-symbol net order worth sending
    (0 when the window runner applies the broker minimum after netting accounts).
    """
    pf = portfolio(pie)
    rules = rules or standard_rules()[DEFAULT_RULES]
    if cash < 0:
        raise PlanError(f"cash cannot be negative ({fmt(cash)})")
    n = len(pf.paths)
    vals = [0] * n
    orphans: dict[str, int] = {}
    index = pf.leaf_index
    for path, c in holdings.items():
        if c < 0:
            raise PlanError(f"holding {path!r} cannot be negative ({fmt(c)})")
        i = index.get(path)
        if i is None:
            if c:
                orphans[path] = c
        else:
            vals[i] = c
    before = vals[:]
    w = _Work(pf, vals)
    steps: list[Step] = []
    snap = before

    def record(cause: str, refs: Iterable[str | None], extra: Mapping[str, int] | None = None) -> None:
        nonlocal snap
        if not explain:
            return
        trades = {pf.paths[i]: vals[i] - snap[i] for i in range(n) if vals[i] != snap[i]}
        if extra:
            trades.update(extra)
        snap = vals[:]
        if trades:
            steps.append(Step(cause, tuple(r for r in refs if r), trades))

    buy = algorithm(rules.deposit.name)
    buy_split = buy.split or allocate.fill_underweight_first   # liquidation proceeds are always bought

    # 1. Liquidations: slices removed or set to 0% are sold, proceeds bought in their parent pie.
    proceeds: dict[str, int] = {}
    for path, c in orphans.items():
        dest = pf.surviving_ancestor(path).path
        proceeds[dest] = proceeds.get(dest, 0) + c
    for i in pf.zero_leaves:
        if vals[i]:
            dest = pf.surviving_ancestor(pf.paths[i]).path
            proceeds[dest] = proceeds.get(dest, 0) + vals[i]
            vals[i] = 0
    if proceeds:
        to_portfolio = rules.removal.param("proceeds-to") == "portfolio"
        for dest in sorted(proceeds):
            w.deposit(pf.root if to_portfolio else pf.pies[dest], proceeds[dest], buy_split)
        record("liquidation", (), {p: -c for p, c in orphans.items()})

    # 2. Cash events, netted into one flow.
    dep = div = out = 0
    refs: list[str | None] = []
    for ev in events:
        t = type(ev)
        if t is Deposit:
            dep += _check_amount(ev)
        elif t is Dividend:
            div += _check_amount(ev)
        elif t is Withdrawal:
            out += _check_amount(ev)
        else:
            continue
        refs.append(ev.ref)
    net = cash + dep + div - out
    free = 0
    if net < 0:
        need = -net
        total = sum(vals)
        if need > total:
            raise PlanError(f"withdrawal of ${fmt(out)} is more than the account holds: "
                            f"${fmt(total)} invested plus ${fmt(cash + dep + div)} cash")
        sell = algorithm(rules.withdrawal.name)
        w.withdraw(pf.root, need, sell.split)
        cash_now = 0
    else:
        cash_now = net
        held = (dep if algorithm(rules.deposit.name).kind == "hold" else 0) + \
               (div if algorithm(rules.dividend.name).kind == "hold" else 0)
        flow = algorithm((rules.deposit if dep or not div else rules.dividend).name)
        free = net - rules.cash_reserve_cents
        if flow.kind == "buy":
            invest = free - held
            if invest > 0 and invest >= rules.invest_minimum_cents:
                w.deposit(pf.root, invest, flow.split)
                cash_now -= invest
    if refs or net:
        record("cash flow", refs)

    # 3. Rebalances in the order received, then the rules' triggers.
    whole = False

    def rebalance_whole(cause: str, ref: str | None) -> None:
        nonlocal cash_now, whole
        spare = cash_now - rules.cash_reserve_cents
        invest = spare if spare > 0 and spare >= rules.invest_minimum_cents else 0
        cash_now -= invest
        w.rebalance(pf.root, sum(vals) + invest)
        whole = True
        record(cause, (ref,))

    for ev in events:
        t = type(ev)
        if t is Rebalance:
            path = ev.path.strip("/")
            if not path:
                rebalance_whole("rebalance", ev.ref)
                continue
            node = pf.pie_at(path)
            if node is None:
                what = "a security, not a pie" if path in index else "not a pie of this portfolio"
                raise PlanError(f"cannot rebalance {path!r}: it is {what}")
            w.rebalance(node, w.value(node))
            record(f"rebalance {path}", (ev.ref,))
        elif t is TargetChange and algorithm(rules.target_change.name).kind == "rebalance":
            rebalance_whole("target change", ev.ref)
    if rules.drift_threshold_bp is not None and not whole and w.max_drift_over(rules.drift_threshold_bp):
        rebalance_whole(f"drift over {fmt(rules.drift_threshold_bp)}%", None)
    if rules.every is not None and not whole and as_of is not None and \
            calendar_due(rules.every, as_of, last_rebalanced):
        rebalance_whole(f"every {rules.every}", None)

    # 4. Net per symbol; defer what is below the broker minimum, keeping its cash. A deferred
    # sell leaves less cash than the buys planned on it, so buys shrink until cash is not
    # negative; what is still missing is a withdrawal that could not be raised (shortfall).
    symbols = pf.symbols
    deferred: list[Deferred] = []
    kept: dict[str, int] = {}
    gone: set[str] = set()
    while True:
        by_symbol = _net_by_symbol(vals, before, symbols, orphans, kept)
        small = {s: d for s, d in by_symbol.items() if d and abs(d) < min_order}
        if small:
            for s, d in small.items():
                deferred.append(Deferred(s, "buy" if d > 0 else "sell", abs(d),
                                         f"below the ${fmt(min_order)} minimum order"))
            gone.update(small)
            for i in range(n):
                if symbols[i] in small and vals[i] != before[i]:
                    cash_now += vals[i] - before[i]
                    vals[i] = before[i]
            for path, c in orphans.items():
                if path.rsplit("/", 1)[-1] in small:
                    kept[path] = c
                    cash_now -= c
            continue
        buys = [i for i in range(n) if vals[i] > before[i]]
        if cash_now < 0 and buys:
            deltas = [vals[i] - before[i] for i in buys]
            cut = min(-cash_now, sum(deltas))
            cuts = allocate.drain_pro_rata(cut, deltas, [1] * len(deltas))
            for i, c in zip(buys, cuts):
                vals[i] -= c
            cash_now += cut
            record("buys reduced to the cash available", ())
            continue
        break
    if gone and explain:
        for step in steps:
            for p in [p for p in step.trades if p.rsplit("/", 1)[-1] in gone]:
                del step.trades[p]   # type: ignore[attr-defined]
        steps[:] = [s for s in steps if s.trades]
    shortfall = 0
    if cash_now < 0:
        shortfall, cash_now = -cash_now, 0

    trades = {pf.paths[i]: vals[i] - before[i] for i in range(n) if vals[i] != before[i]}
    for path, c in orphans.items():
        if path not in kept:
            trades[path] = -c
    orders = tuple(sorted(
        (Order(s, "buy" if d > 0 else "sell", abs(d)) for s, d in by_symbol.items()
         if d and abs(d) >= min_order),
        key=lambda o: (o.side == "buy", o.symbol)))
    after = dict(zip(pf.paths, vals))
    after.update(kept)
    return Plan(trades, orders, tuple(deferred), after, cash, cash_now, dep + div, out - shortfall,
                shortfall, tuple(steps))
