"""A backtest: one account run through the live window's own steps, one window a trading
day, over a price history. Pure: no I/O, no clock; frozen values in, a curve out.

Each trading day, in this order (docs/backtest.md):
1. splits: every holding (the house's too) times the ratio, rounded down to 9 decimals;
2. dividends: the broker's cash per share on the shares held, split over the holders as a
   live window's collect splits it, each account's part an event of the day;
3. the day's deposit and withdrawal, recorded as events (the start cash is the first
   day's deposit, as a live account is funded, but it is V_0, not a flow);
4. one window at the day's close, by the same functions the live window calls in the same
   order: plan_account -> net_symbols -> fills -> allocate_symbol (sells) -> scale_buys ->
   fills -> allocate_symbol (buys) -> settle. The account is planned when it has an event
   or its rules may trigger on their own (drift, calendar), as the live window picks them.

Fills are the simulated broker's: at the day's close; a notional buy gets its dollars'
shares rounded down to 9 decimals, a sell by quantity the cents of qty x price. A symbol
with no close that day cannot trade (its order is skipped, as a broker's rejection is)
and is valued at its last close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from engine.core.fills import floor9
from engine.core.money import market_cents
from engine.core.planner import calendar_due
from engine.core.window.allocation import allocate_symbol
from engine.core.window.collect import split_dividend
from engine.core.window.model import (AccountState, CashLine, FillReport, Holding, Intent, Kind, Move, OrderPlan,
                                      Outcome, Phase, WindowEvent)
from engine.core.window.netting import net_symbols
from engine.core.window.planning import plan_account
from engine.core.window.scaling import scale_buys
from engine.core.window.settlement import settle
from rules.model import Pie, RuleSet, Security

ACCOUNT, HOUSE = 1, 0
PERIODS = {"weekly": "week", "monthly": "month", "quarterly": "quarter", "yearly": "year"}
CENT = Decimal("0.01")
FILL_PRICE = Decimal("0.0001")     # the simulated broker's fill price precision
ZERO = Decimal(0)


class BacktestError(ValueError):
    """The inputs cannot be backtested (one line that says why)."""


@dataclass(frozen=True, slots=True)
class PriceDay:
    day: date
    closes: Mapping[str, Decimal]        # only the symbols with a close that day


@dataclass(frozen=True, slots=True)
class CorporateAction:
    day: date
    symbol: str
    kind: str                            # dividend (cash per share) | split (new shares per old)
    value: Decimal


@dataclass(frozen=True, slots=True)
class Recurring:
    period: str                          # weekly | monthly | quarterly | yearly
    cents: int


@dataclass(frozen=True, slots=True)
class Spec:
    pie: Pie
    rules: RuleSet
    start: date
    end: date
    start_cents: int = 1_000_000
    deposit: Recurring | None = None
    withdraw: Recurring | None = None
    min_order: int = 100


@dataclass(frozen=True, slots=True)
class Fill:
    symbol: str
    side: str
    qty: Decimal
    cents: int


@dataclass(frozen=True, slots=True)
class Day:
    """The account at the close of one trading day, after its window."""

    day: date
    value: int                            # cents: cash + holdings at the day's (or last) closes
    cash: int
    flow: int                             # deposits credited - withdrawals paid (0 on the first day)
    deposited: int                        # deposits credited (not the start cash)
    withdrawn: int                        # withdrawals paid
    dividends: int
    fills: tuple[Fill, ...]
    skipped: int                          # orders not sent: below the minimum, or no close that day
    bought: int                           # cents the account paid for shares (fills and crosses)
    sold: int                             # cents it received for shares
    holdings: tuple[tuple[str, str, Decimal], ...]   # (path, symbol, shares), nonzero, by path
    rejected: tuple[str, ...] = ()        # events the planner refused, with its reason


@dataclass(frozen=True, slots=True)
class Point:
    day: date
    value: int
    cash: int
    flow: int


@dataclass(frozen=True, slots=True)
class Result:
    spec: Spec
    curve: tuple[Point, ...]
    deposits: int
    withdrawals: int
    dividends: int
    bought: int
    sold: int
    orders: int
    skipped_orders: int
    holdings: tuple[tuple[str, str, Decimal], ...]

    @property
    def final_value(self) -> int:
        return self.curve[-1].value if self.curve else self.spec.start_cents


def triggers_alone(rules: RuleSet) -> bool:
    """Rules that may rebalance with no event: the live window plans such accounts every
    window (adapters/ledger/window_repo._triggering picks them the same way)."""
    return rules.drift_threshold_bp is not None or rules.every is not None


def pie_symbols(pie: Pie) -> list[str]:
    return sorted({s.symbol for _, s in pie.walk() if isinstance(s, Security)})


def fill_at_close(order: OrderPlan, close: Decimal, broker_held: Decimal) -> FillReport:
    """The simulated broker's fill of a market order at the close: a notional buy moves its
    dollars for the shares they buy (rounded down); a sell by quantity (never more than the
    broker holds) the cents of its shares (adapters/broker/simulated.py does the same)."""
    price = close.quantize(FILL_PRICE)
    if order.notional is not None:
        cents = order.notional
        qty = (Decimal(cents) / 100 / price).quantize(Decimal("0.000000001"), rounding=ROUND_DOWN)
        if order.side == "sell":
            qty = min(qty, broker_held)
        return FillReport(qty, cents, price)
    qty = min(order.qty or ZERO, broker_held) if order.side == "sell" else (order.qty or ZERO)
    return FillReport(qty, int((qty * price).quantize(CENT) * 100), price)


class _Account:
    """The mutable state of the one account (and the house beside it) between windows."""

    def __init__(self) -> None:
        self.cash = 0
        self.held: dict[str, tuple[str, Decimal]] = {}     # path -> (symbol, shares), nonzero
        self.house: dict[str, Decimal] = {}                # symbol -> the house's residue
        self.house_cash = 0
        self.last_rebalanced: date | None = None
        self.next_id = 0
        self._holdings: tuple[Holding, ...] | None = None     # built again only after a change

    def event(self, kind: Kind, cents: int) -> WindowEvent:
        self.next_id += 1
        return WindowEvent(self.next_id, ACCOUNT, kind, cents)

    def broker_shares(self, symbol: str) -> Decimal:
        return sum((q for s, q in self.held.values() if s == symbol), self.house.get(symbol, ZERO))

    def split(self, symbol: str, ratio: Decimal) -> None:
        for path, (s, q) in list(self.held.items()):
            if s == symbol:
                self.held[path] = (s, floor9(q * ratio))
        if symbol in self.house:
            self.house[symbol] = floor9(self.house[symbol] * ratio)
        self.held = {p: v for p, v in self.held.items() if v[1]}
        self._holdings = None

    def dividend(self, symbol: str, per_share: Decimal) -> int:
        """The account's cents of the broker's dividend on `symbol` (the house keeps its part)."""
        total = self.broker_shares(symbol) * per_share
        cents = int((total * 100).to_integral_value(rounding=ROUND_DOWN))
        if cents <= 0:
            return 0
        holders = [(ACCOUNT, p, q) for p, (s, q) in sorted(self.held.items()) if s == symbol]
        if self.house.get(symbol):
            holders.append((HOUSE, symbol, self.house[symbol]))
        sp = split_dividend(cents, holders, HOUSE)
        self.house_cash += sp.house_cents
        return sum(c for _, c in sp.parts)

    def holdings(self) -> tuple[Holding, ...]:
        if self._holdings is None:
            self._holdings = tuple(Holding(p, s, q) for p, (s, q) in sorted(self.held.items()))
        return self._holdings

    def rows(self) -> tuple[tuple[str, str, Decimal], ...]:
        return tuple((h.path, h.symbol, h.shares) for h in self.holdings())

    def held_map(self) -> dict[tuple[int, str], Decimal]:
        out = {(ACCOUNT, p): q for p, (_, q) in self.held.items()}
        out.update(((HOUSE, s), q) for s, q in self.house.items())
        return out

    def apply(self, moves: Iterable[Move]) -> tuple[int, int, int]:
        """Shares and cash of the moves; returns (account's net cents spent, bought, sold)."""
        spent = bought = sold = 0
        self._holdings = None
        for m in moves:
            if m.account_id == HOUSE:
                self.house[m.symbol] = self.house.get(m.symbol, ZERO) + m.shares
                self.house_cash -= m.cents
                continue
            s, q = self.held.get(m.path, (m.symbol, ZERO))
            q += m.shares
            if q:
                self.held[m.path] = (s, q)
            else:
                self.held.pop(m.path, None)
            spent += m.cents
            if m.cents > 0:
                bought += m.cents
            else:
                sold -= m.cents
        return spent, bought, sold

    def value(self, prices: Mapping[str, Decimal]) -> int:
        return self.cash + sum(market_cents(q * prices[s]) for s, q in self.held.values())


@dataclass(frozen=True, slots=True)
class _Window:
    credited: int            # deposits taken in
    withdrawn: int
    fills: tuple[Fill, ...]
    skipped: int
    bought: int
    sold: int
    rejected: tuple[str, ...]


def _window(acct: _Account, spec: Spec, events: list[WindowEvent], prices: Mapping[str, Decimal],
            closes: Mapping[str, Decimal], day: date) -> _Window:
    """One live window of the account: the steps of engine/shell/window.py, in its order,
    with the ledger's rows held in memory and the simulated broker's fills at the close."""
    state = AccountState(ACCOUNT, "backtest", acct.cash, spec.pie, spec.rules, acct.holdings(), tuple(events),
                         acct.last_rebalanced)
    p = plan_account(state, prices, day)
    if not p.worth_recording:
        return _Window(0, 0, (), 0, 0, 0, ())
    decided = {o.event_id for o in p.decided}
    rejected = tuple(o.reason or "" for o in p.decided if o.outcome == Outcome.REJECTED)
    line = CashLine(ACCOUNT, p.planned, p.reason, p.cash_before, p.deposits, p.dividends, p.withdrawals, p.rebalanced)
    intents = [Intent(i, ACCOUNT, t.path, t.symbol, t.cents, t.cents, t.sell_all) for i, t in enumerate(p.trades, 1)]
    by_symbol: dict[str, list[Intent]] = {}
    for r in intents:
        by_symbol.setdefault(r.symbol, []).append(r)
    held = acct.held_map()
    skipped = 0
    # Net: one order per symbol; a net below the minimum is not sent.
    n = net_symbols(by_symbol, held, prices, spec.min_order)
    skipped += len({r.symbol for r in intents if r.id in n.amounts})
    by_symbol = _with_amounts(by_symbol, n.amounts)
    orders = {o.symbol: o for o in n.orders}
    dropped: set[str] = set()
    fills: list[Fill] = []
    reports: dict[str, tuple[FillReport, ...]] = {}

    def submit(phase: Phase) -> None:
        nonlocal skipped
        for sym in sorted(orders):
            o = orders[sym]
            if o.phase != phase:
                continue
            close = closes.get(sym)
            if close is None:                # no close today: the broker rejects, the order is skipped
                skipped += 1
                reports[sym] = ()
                continue
            f = fill_at_close(o, close, acct.broker_shares(sym))
            reports[sym] = (f,)
            fills.append(Fill(sym, o.side, f.qty, f.cents))

    spent = bought = sold = 0

    def allocate(phase: Phase) -> None:
        nonlocal spent, bought, sold
        held = acct.held_map()
        for sym in sorted(by_symbol):
            o = orders.get(sym)
            ph = o.phase if o else (Phase.BUY if sym in dropped else Phase.SELL)
            if ph != phase:
                continue
            moves = allocate_symbol(sym, by_symbol[sym], o, reports.get(sym, ()), prices[sym], held, HOUSE)
            s, b, x = acct.apply(moves)
            spent, bought, sold = spent + s, bought + b, sold + x

    submit(Phase.SELL)
    allocate(Phase.SELL)
    # Scale: buys cut to the cash the sells really brought.
    buy_symbols = sorted(s for s, o in orders.items() if o.phase == Phase.BUY)
    sc = scale_buys([line], [r for s in buy_symbols for r in by_symbol[s]], {ACCOUNT: spent})
    if sc.notes:
        touched = {s: rows for s, rows in by_symbol.items()
                   if s in buy_symbols and any(r.id in sc.amounts for r in rows)}
        for s in touched:
            orders.pop(s, None)
            dropped.add(s)
        amounts = dict(sc.amounts)
        renet = net_symbols(touched, acct.held_map(), prices, spec.min_order, Phase.BUY, amounts)
        amounts.update(renet.amounts)
        skipped += len({r.symbol for rows in touched.values() for r in rows if r.id in renet.amounts})
        orders.update({o.symbol: o for o in renet.orders})
        by_symbol = _with_amounts(by_symbol, amounts)
    submit(Phase.BUY)
    allocate(Phase.BUY)
    # Settle: cash, withdrawals paid, the house's side.
    open_events = [e for e in events if e.id not in decided]
    st = settle([line], open_events, {ACCOUNT: spent}, house_id=HOUSE, house_cash=acct.house_cash,
                liquidating={}, held_after={}, prices=prices)
    mine = st.accounts[0]
    acct.cash = mine.cash
    acct.house_cash = st.house_cash
    if p.planned and p.rebalanced:
        acct.last_rebalanced = day
    return _Window(p.deposits if p.planned else 0, mine.withdrawn, tuple(fills), skipped, bought, sold, rejected)


def _with_amounts(by_symbol: Mapping[str, list[Intent]], amounts: Mapping[int, int]) -> dict[str, list[Intent]]:
    if not amounts:
        return dict(by_symbol)
    return {s: [Intent(r.id, r.account_id, r.path, r.symbol, r.planned, amounts.get(r.id, r.amount), r.sell_all)
                for r in rows] for s, rows in by_symbol.items()}


def simulate(spec: Spec, days: Sequence[PriceDay], actions: Sequence[CorporateAction] = ()) -> Iterator[Day]:
    """The account day by day from the first trading day on or after `spec.start` to the
    last on or before `spec.end`. Closes of earlier days count as last prices."""
    if spec.start > spec.end:
        raise BacktestError(f"--from {spec.start} is after --to {spec.end}")
    if spec.start_cents <= 0:
        raise BacktestError("the start cash must be positive")
    for kind, r in (("deposit", spec.deposit), ("withdraw", spec.withdraw)):
        if r is not None and r.period not in PERIODS:
            raise BacktestError(f"--{kind} period {r.period!r}: use {', '.join(PERIODS)}")
    by_day: dict[date, list[CorporateAction]] = {}
    for a in actions:
        by_day.setdefault(a.day, []).append(a)
    symbols = pie_symbols(spec.pie)
    last: dict[str, Decimal] = {}
    acct = _Account()
    first = True
    prev: date | None = None
    trigger = triggers_alone(spec.rules)
    for pd in days:
        if pd.day > spec.end:
            break
        if pd.day < spec.start:
            last.update(pd.closes)
            continue
        last.update(pd.closes)
        if first:
            missing = [s for s in symbols if s not in last]
            if missing:
                raise BacktestError(f"no price for {', '.join(missing)} on or before the first day, {pd.day}")
        events: list[WindowEvent] = []
        dividends = 0
        todays = sorted(by_day.get(pd.day, ()), key=lambda a: (a.kind != "split", a.symbol))
        for a in todays:
            if a.kind == "split":
                acct.split(a.symbol, a.value)
                if a.symbol not in pd.closes and a.symbol in last:
                    last[a.symbol] = last[a.symbol] / a.value     # the last close, in the new shares
        for a in todays:
            if a.kind == "dividend":
                c = acct.dividend(a.symbol, a.value)
                if c:
                    events.append(acct.event(Kind.DIVIDEND, c))
                    dividends += c
        if first:
            events.append(acct.event(Kind.DEPOSIT, spec.start_cents))
        else:
            if spec.deposit and calendar_due(PERIODS[spec.deposit.period], pd.day, prev):
                events.append(acct.event(Kind.DEPOSIT, spec.deposit.cents))
            if spec.withdraw and calendar_due(PERIODS[spec.withdraw.period], pd.day, prev):
                events.append(acct.event(Kind.WITHDRAWAL, spec.withdraw.cents))
        if events or trigger:
            w = _window(acct, spec, events, last, pd.closes, pd.day)
        else:
            w = _Window(0, 0, (), 0, 0, 0, ())
        deposited = 0 if first else w.credited
        yield Day(pd.day, acct.value(last), acct.cash, deposited - w.withdrawn, deposited, w.withdrawn, dividends,
                  w.fills, w.skipped, w.bought, w.sold, acct.rows(), w.rejected)
        first = False
        prev = pd.day


def run(spec: Spec, days: Sequence[PriceDay], actions: Sequence[CorporateAction] = (),
        on_day: Callable[[Day], None] | None = None) -> Result:
    """The whole backtest, summed up (the curve and the totals the metrics need); `on_day`
    sees each day as it ends (a progress bar)."""
    curve: list[Point] = []
    deposits = withdrawals = dividends = bought = sold = orders = skipped = 0
    holdings: tuple[tuple[str, str, Decimal], ...] = ()
    for d in simulate(spec, days, actions):
        curve.append(Point(d.day, d.value, d.cash, d.flow))
        deposits += d.deposited
        withdrawals += d.withdrawn
        dividends += d.dividends
        bought += d.bought
        sold += d.sold
        orders += len(d.fills)
        skipped += d.skipped
        holdings = d.holdings
        if on_day is not None:
            on_day(d)
    if not curve:
        raise BacktestError(f"no trading day between {spec.start} and {spec.end} in the prices")
    return Result(spec, tuple(curve), deposits, withdrawals, dividends, bought, sold, orders, skipped, holdings)
