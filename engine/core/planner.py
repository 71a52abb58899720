"""plan(): one account's trades for one window, to the cent. Pure: no I/O, no clock.

Order of work (docs/allocation.md): liquidations first, then the account's cash events
netted into one flow (invested or raised after keeping the cash reserve), then rebalance
requests in the order received, then the rules' triggers; trades are netted per slice and
per symbol, and a per-symbol net below the broker minimum is deferred, its cash kept.
"""

from __future__ import annotations

from itertools import compress
from operator import ne
from datetime import date
from typing import Iterable, Mapping, NamedTuple, Sequence

from rules.library import DEFAULT_RULES, standard_rules
from rules.model import Pie, RuleSet

from . import allocate
from .actions import Algorithm, algorithm
from .errors import Refused
from .events import Deposit, Dividend, Event, Proceeds, Rebalance, TargetChange, Withdrawal
from .money import fmt
from .portfolio import Node, Portfolio, portfolio


class PlanError(Refused):
    """The events cannot be planned as given (a user's mistake, said in one line).

    `refs` names the events at fault when known, so a caller can set them aside and plan
    the rest of the account's events."""

    def __init__(self, message: str, refs: tuple[str, ...] = ()):
        super().__init__(message)
        self.refs = refs


class Order(NamedTuple):
    """One per-symbol broker order of an account (immutable; a NamedTuple because the window
    runner makes hundreds of thousands of these and a frozen dataclass costs 3x to build)."""

    symbol: str
    side: str          # "buy" | "sell"
    cents: int         # notional, > 0


class Deferred(NamedTuple):
    symbol: str
    side: str
    cents: int
    reason: str


class Step(NamedTuple):
    """One reason for trading and the slice trades it caused (before per-symbol netting)."""

    cause: str                      # liquidation | cash flow | rebalance | drift | calendar ...
    refs: tuple[str, ...]           # the events behind it
    trades: Mapping[str, int]


class Plan(NamedTuple):
    trades: Mapping[str, int]                  # slice path -> signed cents (+ buy, - sell), nonzero
    orders: tuple[Order, ...]                  # per symbol, sells first
    deferred: tuple[Deferred, ...]
    holdings_after: Mapping[str, int]          # slice path -> cents, every slice of the pie
    cash_before: int
    cash_after: int
    inflow: int                                # deposits + dividends
    withdrawn: int                             # withdrawals paid this window
    shortfall: int                             # withdrawals that could not be raised (deferred sells)
    steps: tuple[Step, ...] = ()

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


def buy_targets(pf: Portfolio, blocked: frozenset[str]) -> dict[str, list[int]]:
    """The targets to buy by when the securities `blocked` may not be bought this window
    (`avoid wash-sales`): each pie's children with a blocked security, and a pie all of
    whose securities are blocked, at 0%, so the cash goes to the others by the usual rule.
    Only the pies that change are listed (by path)."""
    out: dict[str, list[int]] = {}

    def walk(node: Node) -> bool:          # True: nothing in it may be bought
        targets = []
        for child, t in zip(node.children, node.targets):
            shut = pf.symbols[child] in blocked if type(child) is int else walk(child)
            targets.append(0 if shut else t)
        if targets != node.targets:
            out[node.path] = targets
        return not any(targets)

    walk(pf.root)
    return out


class _Work:
    """The mutable working state of one plan: cents per security slice. `buy` holds the
    targets that deposits, dividends and rebalances buy by when some securities are
    blocked (buy_targets); liquidation proceeds still go by the pie's own."""

    __slots__ = ("pf", "vals", "buy")

    def __init__(self, pf: Portfolio, vals: list[int], buy: dict[str, list[int]] | None = None):
        self.pf = pf
        self.vals = vals
        self.buy = buy or {}

    def can_buy(self, node: Node) -> bool:
        return not self.buy or any(self.buy.get(node.path, node.targets))

    def value(self, node: Node) -> int:
        return sum(self.vals[node.lo:node.hi])

    def _child_values(self, node: Node) -> list[int]:
        vals = self.vals
        if node.flat:
            return vals[node.lo:node.hi]
        return [vals[c] if type(c) is int else sum(vals[c.lo:c.hi]) for c in node.children]

    def deposit(self, node: Node, amount: int, split, blocking: bool = True) -> None:
        targets = self.buy.get(node.path, node.targets) if blocking else node.targets
        amounts = split(amount, self._child_values(node), targets)
        vals = self.vals
        if node.flat:
            lo = node.lo
            for k, a in enumerate(amounts):
                if a:
                    vals[lo + k] += a
            return
        for child, a in zip(node.children, amounts):
            if a:
                if type(child) is int:
                    vals[child] += a
                else:
                    self.deposit(child, a, split, blocking)

    def withdraw(self, node: Node, amount: int, split) -> None:
        amounts = split(amount, self._child_values(node), node.targets)
        vals = self.vals
        if node.flat:
            lo = node.lo
            for k, a in enumerate(amounts):
                if a:
                    vals[lo + k] -= a
            return
        for child, a in zip(node.children, amounts):
            if a:
                if type(child) is int:
                    vals[child] -= a
                else:
                    self.withdraw(child, a, split)

    def rebalance(self, node: Node, total: int) -> None:
        if node.path in self.buy:
            goals = self._rebalance_blocked(node, total)
        else:
            goals = allocate.rebalance_to(total, self._child_values(node), node.targets)
        for child, goal in zip(node.children, goals):
            if type(child) is int:
                self.vals[child] = goal
            else:
                self.rebalance(child, goal)

    def _rebalance_blocked(self, node: Node, total: int) -> list[int]:
        """Goals for a pie with blocked children: a blocked child that the rebalance
        would buy stays as it is (it may still be sold down), and the others share the
        rest by their targets; repeated until no blocked child is raised."""
        cv = self._child_values(node)
        shut = [b == 0 and t > 0 for b, t in zip(self.buy[node.path], node.targets)]
        fixed: dict[int, int] = {}
        while True:
            free = [k for k in range(len(cv)) if k not in fixed]
            rest = total - sum(fixed.values())
            if not any(node.targets[k] for k in free):
                goals = [cv[k] for k in free]           # nothing left to buy by: rest == sum of these
                break
            goals = allocate.rebalance_to(rest, [cv[k] for k in free], [node.targets[k] for k in free])
            raised = [k for k, g in zip(free, goals) if shut[k] and g > cv[k]]
            if not raised:
                break
            for k in raised:
                fixed[k] = cv[k]
        out = dict(fixed)
        out.update(zip(free, goals))
        return [out[k] for k in range(len(cv))]

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


def _net_by_symbol(changed: list[int], vals: list[int], before: list[int], symbols: list[str],
                   orphans: Mapping[str, int], kept: Mapping[str, int]) -> dict[str, int]:
    """Signed cents per symbol, summed over the slices that hold it."""
    out: dict[str, int] = {}
    for i in changed:
        d = vals[i] - before[i]
        if d:
            s = symbols[i]
            out[s] = out.get(s, 0) + d
    for path, c in orphans.items():
        if path not in kept:
            s = path.rsplit("/", 1)[-1]
            out[s] = out.get(s, 0) - c
    return out


class SliceValues(Mapping[str, int]):
    """Cents per slice path after the plan: a read-only view over the planner's list, so a
    plan of a 50-slice account costs no 50-entry dict until someone asks for one."""

    __slots__ = ("_index", "_paths", "_vals", "_extra")

    def __init__(self, pf: Portfolio, vals: list[int], extra: Mapping[str, int]):
        self._index, self._paths, self._vals, self._extra = pf.leaf_index, pf.paths, vals, extra

    def __getitem__(self, path: str) -> int:
        i = self._index.get(path)
        return self._extra[path] if i is None else self._vals[i]

    def __iter__(self):
        yield from self._paths
        yield from self._extra

    def __len__(self) -> int:
        return len(self._paths) + len(self._extra)

    def __repr__(self) -> str:
        return f"SliceValues({dict(self)!r})"


class _Algorithms(NamedTuple):
    deposit: Algorithm
    dividend: Algorithm
    withdrawal: Algorithm
    target_change: Algorithm


_RESOLVED: dict[int, tuple[RuleSet, _Algorithms]] = {}


def _algorithms(rules: RuleSet) -> _Algorithms:
    """The registry's algorithms for a rule set, looked up once per rule set, not per account."""
    hit = _RESOLVED.get(id(rules))
    if hit is None or hit[0] is not rules:
        if len(_RESOLVED) > 1024:
            _RESOLVED.clear()
        hit = _RESOLVED[id(rules)] = (rules, _Algorithms(
            algorithm(rules.deposit.name), algorithm(rules.dividend.name),
            algorithm(rules.withdrawal.name), algorithm(rules.target_change.name)))
    return hit[1]


def _check_amount(ev: Deposit | Dividend | Withdrawal | Proceeds) -> int:
    if type(ev.cents) is not int or ev.cents <= 0:
        kind = type(ev).__name__.lower()
        raise PlanError(f"a {kind} must be a positive amount, not {ev.cents!r} cents",
                        (ev.ref,) if ev.ref else ())
    return ev.cents


def plan(pie: Pie | Portfolio, holdings: Mapping[str, int], events: Sequence[Event] = (),
         rules: RuleSet | None = None, *, cash: int = 0, min_order: int = 100,
         as_of: date | None = None, last_rebalanced: date | None = None,
         explain: bool = True, blocked: frozenset[str] = frozenset()) -> Plan:
    """Decide one account's trades. Holdings are cents per security slice path.

    Held paths that are not securities of the pie, or whose target (or a pie above them)
    is 0%, are liquidated. `min_order` is the smallest per-symbol net order worth sending
    (0 when the window runner applies the broker minimum after netting accounts).
    `blocked`: symbols that deposits, dividends and rebalances may not buy this window
    (`avoid wash-sales`); their slices are left out of the buying and their cash goes to
    the others. Withdrawals and liquidations are not affected.
    """
    pf = portfolio(pie)
    rules = rules or standard_rules()[DEFAULT_RULES]
    if cash < 0:
        raise PlanError(f"cash cannot be negative ({fmt(cash)})")
    n = len(pf.paths)
    index = pf.leaf_index
    get = holdings.get
    vals = [get(p, 0) for p in pf.paths]
    orphans = {p: holdings[p] for p in holdings.keys() - index.keys() if holdings[p]} \
        if len(holdings) > n - vals.count(0) else {}
    if holdings and min(holdings.values()) < 0:
        path, c = min(holdings.items(), key=lambda kv: kv[1])
        raise PlanError(f"holding {path!r} cannot be negative ({fmt(c)})")
    before = vals[:]
    w = _Work(pf, vals, buy_targets(pf, blocked) if blocked else None)
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

    algos = _algorithms(rules)
    buy = algos.deposit
    buy_split = buy.split or allocate.fill_underweight_first   # liquidation proceeds are always bought

    # 1. Liquidations: slices removed or set to 0% are sold, proceeds bought in their parent
    # pie; so is the cash a corporate action paid for a slice (already in the account's cash,
    # taken from it in the order recorded, never more than there is).
    proceeds: dict[str, int] = {}
    for path, c in orphans.items():
        dest = pf.surviving_ancestor(path).path
        proceeds[dest] = proceeds.get(dest, 0) + c
    from_cash = 0
    action_refs: list[str | None] = []
    for ev in events:
        if type(ev) is Proceeds:
            c = min(_check_amount(ev), cash - from_cash)
            if c > 0:
                dest = pf.surviving_ancestor(ev.path).path
                proceeds[dest] = proceeds.get(dest, 0) + c
                from_cash += c
                action_refs.append(ev.ref)
    for i in pf.zero_leaves:
        if vals[i]:
            dest = pf.surviving_ancestor(pf.paths[i]).path
            proceeds[dest] = proceeds.get(dest, 0) + vals[i]
            vals[i] = 0
    if proceeds:
        to_portfolio = rules.removal.param("proceeds-to") == "portfolio"
        for dest in sorted(proceeds):
            w.deposit(pf.root if to_portfolio else pf.pies[dest], proceeds[dest], buy_split, blocking=False)
        record("liquidation", action_refs, {p: -c for p, c in orphans.items()})

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
    net = cash - from_cash + dep + div - out
    free = 0
    if net < 0:
        need = -net
        total = sum(vals)
        if need > total:
            raise PlanError(f"withdrawal of ${fmt(out)} is more than the account holds: "
                            f"${fmt(total)} invested plus ${fmt(cash + dep + div)} cash",
                            tuple(e.ref for e in events if type(e) is Withdrawal and e.ref))
        w.withdraw(pf.root, need, algos.withdrawal.split)
        cash_now = 0
    else:
        cash_now = net
        held = (dep if algos.deposit.kind == "hold" else 0) + (div if algos.dividend.kind == "hold" else 0)
        flow = algos.deposit if dep or not div else algos.dividend
        free = net - rules.cash_reserve_cents
        if flow.kind == "buy":
            invest = free - held
            if invest > 0 and invest >= rules.invest_minimum_cents and w.can_buy(pf.root):
                w.deposit(pf.root, invest, flow.split)
                cash_now -= invest
    if refs or net:
        record("cash flow", refs)

    # 3. Rebalances in the order received, then the rules' triggers.
    whole = False

    def rebalance_whole(cause: str, ref: str | None) -> None:
        nonlocal cash_now, whole
        spare = cash_now - rules.cash_reserve_cents
        invest = spare if spare > 0 and spare >= rules.invest_minimum_cents and w.can_buy(pf.root) else 0
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
                raise PlanError(f"cannot rebalance {path!r}: it is {what}", (ev.ref,) if ev.ref else ())
            w.rebalance(node, w.value(node))
            record(f"rebalance {path}", (ev.ref,))
        elif t is TargetChange and algos.target_change.kind == "rebalance":
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
    changed = list(compress(range(n), map(ne, vals, before)))
    while True:
        by_symbol = _net_by_symbol(changed, vals, before, symbols, orphans, kept)
        small = {s: d for s, d in by_symbol.items() if d and abs(d) < min_order}
        if small:
            for s, d in small.items():
                deferred.append(Deferred(s, "buy" if d > 0 else "sell", abs(d),
                                         f"below the ${fmt(min_order)} minimum order"))
            gone.update(small)
            for i in changed:
                if symbols[i] in small and vals[i] != before[i]:
                    cash_now += vals[i] - before[i]
                    vals[i] = before[i]
            for path, c in orphans.items():
                if path.rsplit("/", 1)[-1] in small:
                    kept[path] = c
                    cash_now -= c
            continue
        buys = [i for i in changed if vals[i] > before[i]] if cash_now < 0 else None
        if buys:
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

    paths = pf.paths
    trades = {paths[i]: vals[i] - before[i] for i in changed if vals[i] != before[i]}
    for path, c in orphans.items():
        if path not in kept:
            trades[path] = -c
    nets = sorted(by_symbol.items())
    orders = tuple([Order(s, "sell", -d) for s, d in nets if d < 0] + [Order(s, "buy", d) for s, d in nets if d > 0])
    return Plan(trades, orders, tuple(deferred), SliceValues(pf, vals, kept), cash, cash_now, dep + div, out - shortfall,
                shortfall, tuple(steps))
