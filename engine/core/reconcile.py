"""Reconciliation that explains: the ledger against the broker, line by line, each break
with its likely cause (docs/reconciliation.md).

Per symbol the ledger's side is the accounts' shares and the house's; the broker's is its
position. The cash line is the same with cents. A line whose sides differ is a *break*,
and the break is explained by the first of these that accounts for its difference (up to
the tolerance, and never less than MATCH shares, so that each account's rounding to 9
decimals still matches):

1. a corporate action on the symbol that one side applied and the other has not (the
   share ratio is the action's rate; shares moved to or arrived from another symbol);
2. an order the broker filled that pies did not make (`outside`), or one of pies's own
   that its window has not allocated yet (`unallocated`);
3. for cash: dividends the broker paid that the ledger has not collected yet, dividends
   recorded by hand and not settled yet, orders outside pies, merger or lieu cash;
4. an operator's acceptance of exactly this break (same line, same difference);
5. otherwise unexplained. An unexplained break bigger than the tolerance makes trading
   wait for an operator (`Reconciliation.waits`).

Pure: frozen values in, frozen values out; no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from itertools import combinations
from typing import Any, Iterable, Mapping, Sequence

from engine.core.broker_view import BrokerAdjustment, seen
from engine.core.corporate_actions import ActionKind, CorporateAction
from engine.core.corporate_moves import lieu_fraction
from engine.core.money import cents as to_cents, fmt
from engine.core.orders import CENT, QTY, CashActivity, OrderState

ZERO = Decimal(0)
CASH = "$cash"                       # the cash line's name where a symbol stands
MATCH = Decimal("0.000001")          # the least slack when matching a cause: accounts' rounding
STAYS = frozenset({ActionKind.FORWARD_SPLIT, ActionKind.REVERSE_SPLIT, ActionKind.STOCK_DIVIDEND})


class Cause(StrEnum):
    ACTION = "corporate_action"        # an action one side applied and the other has not
    OUTSIDE_ORDER = "outside_order"    # an order pies did not make
    UNALLOCATED = "unallocated"        # pies's own order, its window not closed yet
    DIVIDEND = "dividend"              # cash the broker paid that the ledger has not collected yet
    ACCEPTED = "accepted"              # an operator accepted exactly this break
    UNEXPLAINED = "unexplained"


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How big an unexplained break may be before trading waits (|difference| > tolerance waits)."""

    shares: Decimal = Decimal("0.000001")
    cents: int = 100


@dataclass(frozen=True, slots=True)
class LedgerSide:
    """What the ledger says a broker account holds: shares per symbol of the accounts and
    of the house, their cash in cents, and cash recorded by hand and not settled yet.
    `adjustment`: what a broker that does not apply corporate actions should hold beyond
    what it reports (engine/core/broker_view.py), added to the broker's side."""

    accounts: Mapping[str, Decimal]
    house: Mapping[str, Decimal]
    accounts_cents: int
    house_cents: int
    pending_dividend_cents: int = 0
    adjustment: BrokerAdjustment = BrokerAdjustment()

    def owned(self) -> dict[str, Decimal]:
        """Shares per symbol of the accounts and the house together (what the broker holds
        for them)."""
        out = dict(self.accounts)
        for sym, q in self.house.items():
            out[sym] = out.get(sym, ZERO) + q
        return out


@dataclass(frozen=True, slots=True)
class Accepted:
    """An operator's acceptance of one break: its line and its difference, exactly."""

    id: int
    symbol: str
    difference: Decimal                # shares, or dollars on the cash line
    reason: str


@dataclass(frozen=True, slots=True)
class Line:
    """One symbol (or the cash line, CASH, in dollars): the accounts' part, the house's, the
    broker's (as compared: what it reports plus `adjusted`, the standing adjustment of
    actions applied by pies only). `cause` is None where the sides agree."""

    symbol: str
    ledger: Decimal
    house: Decimal
    broker: Decimal
    cause: Cause | None = None
    detail: str = ""
    waits: bool = False                # an unexplained break above the tolerance
    adjusted: Decimal = ZERO           # of `broker`: actions the broker does not apply (broker_view.py)

    @property
    def difference(self) -> Decimal:
        """What the broker holds beyond the ledger (negative: less)."""
        return self.broker - self.ledger - self.house

    def to_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "ledger": str(self.ledger), "house": str(self.house),
                "broker": str(self.broker), "difference": str(self.difference),
                "cause": None if self.cause is None else self.cause.value, "detail": self.detail,
                "waits": self.waits, "adjusted": str(self.adjusted)}


@dataclass(frozen=True, slots=True)
class Reconciliation:
    lines: tuple[Line, ...]            # every symbol either side has, in symbol order, then cash

    @property
    def breaks(self) -> tuple[Line, ...]:
        return tuple(x for x in self.lines if x.cause is not None)

    @property
    def waits(self) -> tuple[Line, ...]:
        return tuple(x for x in self.lines if x.waits)

    def to_json(self) -> dict[str, Any]:
        return {"agrees": not self.breaks, "waits": bool(self.waits),
                "lines": [x.to_json() for x in self.lines]}


def _signed_qty(o: OrderState) -> Decimal:
    return o.filled_qty if o.side == "buy" else -o.filled_qty


def _signed_cash(o: OrderState) -> Decimal:
    """What the order did to the broker's cash, in dollars."""
    return -o.filled_notional if o.side == "buy" else o.filled_notional


GONE = frozenset({ActionKind.CASH_MERGER, ActionKind.REDEMPTION, ActionKind.WORTHLESS_REMOVAL})


def _rate(a: CorporateAction) -> Decimal:
    return a.new_rate / a.old_rate


def _after(a: CorporateAction, shares: Decimal) -> Decimal:
    """Shares of `a.symbol` (kinds in STAYS) once the action is applied, rounded down to 9 decimals."""
    if a.lieu_price:                   # cash in lieu: the broker keeps whole shares
        return lieu_fraction(a, shares)[0]
    # A stock dividend's new_rate is 1 + its rate already (both readers): one rule for all.
    return (shares * _rate(a)).quantize(QTY, rounding="ROUND_DOWN")


def _describe(a: CorporateAction) -> str:
    what = f"{a.kind.value} {a.symbol}"
    if a.new_symbol:
        what += f" -> {a.new_symbol}"
    if a.kind in STAYS or a.new_symbol:
        what += f" {a.new_rate}:{a.old_rate}"
    return f"{what} on {a.effective.isoformat()} (action {a.id})"


def _share_candidates(symbol: str, total: Decimal, broker: Decimal, held: Mapping[str, Decimal],
                      actions: Sequence[CorporateAction]) -> list[tuple[Decimal, Cause, str]]:
    """(difference it would explain, cause, detail) for each action touching `symbol`.
    `total` is the ledger's shares (accounts + house), `held` the ledger's totals by symbol."""
    out: list[tuple[Decimal, Cause, str]] = []
    for a in actions:
        if a.old_rate <= 0:
            continue
        if a.symbol == symbol and a.kind in STAYS:
            out.append((_after(a, total) - total, Cause.ACTION,
                        f"the broker applied {_describe(a)}; the ledger has not"))
            if broker:
                # The other way round: the ledger applied it and the broker has not (yet).
                out.append((broker - _after(a, broker), Cause.ACTION,
                            f"the ledger applied {_describe(a)}; the broker has not"))
        elif a.symbol == symbol and not a.new_symbol and not a.source_keeps and a.kind in GONE:
            # A cash merger, a redemption, a removal: the holding goes (its cash is the cash line's).
            out.append((-total, Cause.ACTION, f"the broker removed {symbol} by {_describe(a)}; the ledger has not"))
            out.append((broker, Cause.ACTION, f"the ledger removed {symbol} by {_describe(a)}; the broker has not"))
        elif a.symbol == symbol and a.new_symbol and not a.source_keeps:
            out.append((-total, Cause.ACTION, f"the broker moved {symbol} by {_describe(a)}; the ledger has not"))
            out.append((broker, Cause.ACTION, f"the ledger moved {symbol} by {_describe(a)}; the broker has not"))
        elif a.new_symbol == symbol:
            source = held.get(a.symbol, ZERO)
            arrived = (source * _rate(a)).quantize(QTY, rounding="ROUND_DOWN")
            out.append((arrived, Cause.ACTION, f"{symbol} arrived by {_describe(a)}; the ledger has not applied it"))
            out.append((-total, Cause.ACTION, f"the ledger applied {_describe(a)}; the broker has not"))
    return out


def _explain(difference: Decimal, slack: Decimal,
             parts: Sequence[tuple[Decimal, Cause, str]]) -> tuple[Cause, str] | None:
    """The first single part, then the first pair, then all parts together, whose sum
    matches `difference` within `slack` (parts of zero are left out)."""
    live = [p for p in parts if p[0]]
    for k in (1, 2):
        for group in combinations(live, k):
            if abs(difference - sum((p[0] for p in group), ZERO)) <= slack:
                return group[0][1], "; ".join(p[2] for p in group)
    if len(live) > 2 and abs(difference - sum((p[0] for p in live), ZERO)) <= slack:
        return live[0][1], "; ".join(p[2] for p in live)
    return None


def _accepted(symbol: str, difference: Decimal, accepted: Sequence[Accepted]) -> Accepted | None:
    """The latest acceptance of exactly this break."""
    found = [a for a in accepted if a.symbol == symbol and a.difference == difference]
    return max(found, key=lambda a: a.id) if found else None


def reconcile(ledger: LedgerSide, positions: Mapping[str, Decimal], broker_cents: int, *,
              outside: Sequence[OrderState] = (), unallocated: Sequence[OrderState] = (),
              dividends: Sequence[CashActivity] = (), actions: Sequence[CorporateAction] = (),
              accepted: Sequence[Accepted] = (), tolerance: Tolerance = Tolerance()) -> Reconciliation:
    """Compare the ledger with the broker and explain each break.

    `outside`: filled orders the broker has that pies did not make; `unallocated`: pies's
    own orders whose window has not allocated them yet; `dividends`: the broker's dividend
    activities the ledger has not collected; `actions`: corporate actions on the symbols
    concerned (either side may have applied them); `accepted`: operators' acceptances.
    `positions` and `broker_cents` are what the broker reports; the ledger's standing
    adjustment (`ledger.adjustment`) is added to them before comparing."""
    adj = ledger.adjustment
    positions, broker_cents = seen(positions, broker_cents, adj)
    held = {sym: ledger.accounts.get(sym, ZERO) + ledger.house.get(sym, ZERO)
            for sym in set(ledger.accounts) | set(ledger.house)}
    slack = max(tolerance.shares, MATCH)
    lines: list[Line] = []
    for sym in sorted(set(held) | {s for s, q in positions.items() if q}):
        mine, house = ledger.accounts.get(sym, ZERO), ledger.house.get(sym, ZERO)
        broker = positions.get(sym, ZERO)
        line = Line(sym, mine, house, broker, adjusted=adj.shares.get(sym, ZERO))
        d = line.difference
        if d:
            parts = _share_candidates(sym, mine + house, broker, held, actions)
            parts += [(sum((_signed_qty(o) for o in outside if o.symbol == sym), ZERO), Cause.OUTSIDE_ORDER,
                       _orders_detail("filled outside pies", [o for o in outside if o.symbol == sym])),
                      (sum((_signed_qty(o) for o in unallocated if o.symbol == sym), ZERO), Cause.UNALLOCATED,
                       _orders_detail("pies's own, its window not closed yet",
                                      [o for o in unallocated if o.symbol == sym]))]
            line = _decide(line, d, slack, abs(d) > tolerance.shares, parts, accepted)
        lines.append(line)
    cash = Line(CASH, Decimal(ledger.accounts_cents).scaleb(-2), Decimal(ledger.house_cents).scaleb(-2),
                Decimal(broker_cents).scaleb(-2), adjusted=Decimal(adj.cents).scaleb(-2))
    d = cash.difference
    if d:
        paid = sorted(dividends, key=lambda a: (a.day, a.id))
        lieu = [(a, (held.get(a.symbol, ZERO) * a.cash_rate).quantize(CENT, rounding="ROUND_DOWN"))
                for a in actions if a.cash_rate]
        parts = [(sum((a.amount for a in paid), ZERO), Cause.DIVIDEND,
                  f"dividends the broker paid, not collected yet: "
                  f"{', '.join(f'{a.symbol or a.id} ${a.amount}' for a in paid[:5])}"
                  f"{f' and {len(paid) - 5} more' if len(paid) > 5 else ''}"),
                 (Decimal(ledger.pending_dividend_cents).scaleb(-2), Cause.DIVIDEND,
                  f"dividends recorded by hand, not settled yet: ${fmt(ledger.pending_dividend_cents)}"),
                 (sum((_signed_cash(o) for o in outside), ZERO), Cause.OUTSIDE_ORDER,
                  _orders_detail("filled outside pies", list(outside))),
                 (sum((_signed_cash(o) for o in unallocated), ZERO), Cause.UNALLOCATED,
                  _orders_detail("pies's own, its window not closed yet", list(unallocated)))]
        parts += [(amount, Cause.ACTION, f"cash of {_describe(a)}") for a, amount in lieu]
        parts += [(Decimal(lieu_fraction(a, held.get(a.symbol, ZERO))[2]).scaleb(-2), Cause.ACTION,
                   f"cash in lieu of {_describe(a)}") for a in actions if a.lieu_price]
        cash = _decide(cash, d, max(Decimal(tolerance.cents).scaleb(-2), CENT) if tolerance.cents else ZERO,
                       abs(to_cents(d, "ROUND_UP")) > tolerance.cents, parts, accepted)
    lines.append(cash)
    return Reconciliation(tuple(lines))


def _decide(line: Line, d: Decimal, slack: Decimal, above: bool,
            parts: Sequence[tuple[Decimal, Cause, str]], accepted: Sequence[Accepted]) -> Line:
    found = _explain(d, slack, parts)
    if found is not None:
        return _with(line, found[0], found[1], False)
    acc = _accepted(line.symbol, d, accepted)
    if acc is not None:
        return _with(line, Cause.ACCEPTED, f"accepted by an operator (#{acc.id}): {acc.reason}", False)
    what = "shares" if line.symbol != CASH else "dollars"
    split = suspected_split(line.symbol, line.ledger + line.house, line.broker) if line.symbol != CASH else None
    return _with(line, Cause.UNEXPLAINED,
                 (f"{split}; " if split else "") + f"no action, order or dividend accounts for {d} {what}" +
                 ("; trading waits for an operator" if above else "; within the tolerance"), above)


# The ratios a split nobody reported is looked for at: n-for-1 and 1-for-n for n up to 100,
# and the usual fractional ones (3-for-2, 5-for-4, 4-for-3 and their reverses).
SIMPLE_RATIOS = tuple(sorted({(n, 1) for n in range(2, 101)} | {(1, n) for n in range(2, 101)}
                             | {(3, 2), (5, 4), (4, 3), (2, 3), (4, 5), (3, 4)}, key=lambda r: (r[0] + r[1], r)))


def suspected_split(symbol: str, ledger: Decimal, broker: Decimal) -> str | None:
    """When the broker's shares are the ledger's (accounts + house) times a simple ratio,
    within each holding's rounding to 9 decimals (a millionth of a share, or a millionth of
    the position), the split or reverse split that would explain it, as one phrase:
    `VTI: broker holds 2.000x the ledger's shares: a 2-for-1 split pies has not heard of?`."""
    if ledger <= 0 or broker <= 0 or ledger == broker:
        return None
    for new, old in SIMPLE_RATIOS:
        expected = ledger * new / old
        if abs(broker - expected) <= max(MATCH, expected * MATCH):
            kind = "split" if new > old else "reverse split"
            return (f"{symbol}: broker holds {broker / ledger:.3f}\u00d7 the ledger's shares: "
                    f"a {new}-for-{old} {kind} pies has not heard of?")
    return None


def _with(line: Line, cause: Cause, detail: str, waits: bool) -> Line:
    return Line(line.symbol, line.ledger, line.house, line.broker, cause, detail, waits, line.adjusted)


def _orders_detail(what: str, orders: Iterable[OrderState]) -> str:
    found = sorted(orders, key=lambda o: (o.symbol, o.client_order_id))
    shown = ", ".join(f"{o.side} {o.filled_qty} {o.symbol} ({o.client_order_id})" for o in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    return f"orders {what}: {shown}{more}"


def acceptable(rec: Reconciliation) -> list[tuple[str, Decimal]]:
    """What an operator's acceptance covers: the unexplained breaks, (line, difference)."""
    return [(x.symbol, x.difference) for x in rec.breaks if x.cause == Cause.UNEXPLAINED]
