"""The window report, typed; stored and printed as JSON with amounts as strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping, Sequence

from engine.core.money import dollars


@dataclass(frozen=True, slots=True)
class EventLine:
    id: int
    kind: str
    amount: Decimal | None
    path: str | None
    status: str
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "amount": None if self.amount is None else str(self.amount),
                "path": self.path, "status": self.status, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class TradeLine:
    slice: str
    shares: Decimal
    amount: Decimal

    def to_json(self) -> dict[str, Any]:
        return {"slice": self.slice, "shares": str(self.shares), "amount": str(self.amount)}


@dataclass(frozen=True, slots=True)
class AccountReport:
    account: str
    status: str                                  # done | rejected
    reason: str | None = None
    cash: Decimal | None = None
    withdrawn: Decimal | None = None
    events: tuple[EventLine, ...] = ()
    trades: tuple[TradeLine, ...] = ()
    deferred_or_scaled: tuple[tuple[str, Decimal], ...] = ()
    house_advance: Decimal | None = None
    held_back: str | None = None                 # buys `avoid wash-sales` held back, and why

    def to_json(self) -> dict[str, Any]:
        if self.status == "rejected":
            return {"account": self.account, "status": "rejected", "reason": self.reason}
        out: dict[str, Any] = {"account": self.account, "status": self.status, "cash": str(self.cash),
                               "withdrawn": str(self.withdrawn), "events": [e.to_json() for e in self.events],
                               "trades": [t.to_json() for t in self.trades]}
        if self.deferred_or_scaled:
            out["deferred_or_scaled"] = [{"slice": p, "amount": str(a)} for p, a in self.deferred_or_scaled]
        if self.house_advance:
            out["house_advance"] = str(self.house_advance)
        if self.held_back:
            out["held_back"] = self.held_back
        return out


@dataclass(frozen=True, slots=True)
class AccountLine:
    """An account's end of a window as the ledger keeps it (cents)."""
    account_id: int
    name: str
    planned: bool
    reason: str | None
    cash: int | None
    withdrawn: int | None
    advance: int | None


def account_reports(lines: Sequence[AccountLine], events: Mapping[int, Sequence[EventLine]],
                    trades: Mapping[int, Sequence[TradeLine]],
                    deferred: Mapping[int, Sequence[tuple[str, Decimal]]]) -> tuple[AccountReport, ...]:
    """One report entry per account that took part, in account order."""
    out = []
    for x in sorted(lines, key=lambda x: x.account_id):
        if not x.planned:
            out.append(AccountReport(x.name, "rejected", x.reason))
            continue
        out.append(AccountReport(
            x.name, "done", cash=dollars(x.cash or 0), withdrawn=dollars(x.withdrawn or 0),
            events=tuple(events.get(x.account_id, ())), trades=tuple(trades.get(x.account_id, ())),
            deferred_or_scaled=tuple(deferred.get(x.account_id, ())),
            house_advance=dollars(x.advance) if x.advance else None, held_back=x.reason))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class OrderLine:
    symbol: str
    side: str
    client_order_id: str
    notional: Decimal | None
    qty: Decimal | None
    status: str
    filled_qty: Decimal | None
    price: Decimal | None
    note: str | None
    fills: int = 0                               # fill reports stored for it

    def to_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "side": self.side, "client_order_id": self.client_order_id,
                "notional": None if self.notional is None else str(self.notional),
                "qty": None if self.qty is None else str(self.qty), "status": self.status,
                "filled_qty": None if self.filled_qty is None else f"{self.filled_qty.normalize():f}",
                "price": None if self.price is None else f"{self.price.normalize():f}",
                "note": self.note, "fills": self.fills}


@dataclass(frozen=True, slots=True)
class WindowReport:
    window: int
    broker: str
    day: str
    name: str
    account_count: int                          # accounts that took part (their lines: account_reports)
    orders: tuple[OrderLine, ...]
    problems: tuple[str, ...]
    scaled: tuple[dict[str, str], ...] = ()
    uncollected_dividends: Decimal | None = None
    retried: tuple[dict[str, Any], ...] = field(default=())   # liquidations pending again

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"window": self.window, "broker": self.broker, "day": self.day, "name": self.name,
                               "account_count": self.account_count,
                               "orders": [o.to_json() for o in self.orders], "problems": list(self.problems)}
        if self.scaled:
            out["scaled"] = list(self.scaled)
        if self.uncollected_dividends:
            out["uncollected_dividends"] = str(self.uncollected_dividends)
        if self.retried:
            out["retried"] = list(self.retried)
        return out


def window_report(window: int, broker: str, day: str, name: str, account_count: int,
                  retried_events: Sequence[tuple[int, int, str, str | None, str | None]], orders: Sequence[OrderLine],
                  problems: Sequence[str], uncollected: Decimal) -> WindowReport:
    """The summary of a closed window. Its accounts' lines stay in the ledger's tables
    (account_reports builds them when asked): a window of a million accounts does not
    become one document. `retried_events` are (event, account id, account name, path,
    reason) of the events settlement left pending, listed by account then event."""
    again = tuple({"event": e, "account": name_, "path": path, "reason": reason}
                  for e, _, name_, path, reason in sorted(retried_events, key=lambda r: (r[1], r[0])))
    return WindowReport(window, broker, day, name, account_count, tuple(orders), tuple(problems),
                        uncollected_dividends=uncollected or None, retried=again)
