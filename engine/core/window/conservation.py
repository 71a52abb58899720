"""The ledger against the broker: per symbol, the accounts' shares plus the house's equal
the broker's position; the accounts' cash plus the house's equals the broker's cash; no
holding and no cash below zero. Returns the discrepancies with their figures; fixes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Mapping, Sequence

ZERO = Decimal(0)


def discrepancies(broker: str, owned: Mapping[str, Decimal], positions: Mapping[str, Decimal],
                  ledger_cash: Decimal, broker_cash: Decimal,
                  negative_holdings: Sequence[tuple[str, str, str, Decimal]] = (),
                  negative_cash: Sequence[tuple[str, Decimal]] = ()) -> list[str]:
    """`negative_holdings` are (account, path, symbol, shares); `negative_cash` (account, cash)."""
    problems = [f"{name} holds {shares} shares of {symbol} at {path!r}"
                for name, path, symbol, shares in sorted(negative_holdings)]
    problems += [f"{name} has negative cash ${cash}" for name, cash in sorted(negative_cash)]
    for sym in sorted(set(owned) | set(positions)):
        mine, theirs = owned.get(sym, ZERO), positions.get(sym, ZERO)
        if mine != theirs:
            problems.append(f"{broker} {sym}: ledger holds {mine} shares, broker reports {theirs} "
                            f"(difference {mine - theirs})")
    if ledger_cash != broker_cash:
        problems.append(f"{broker} cash: ledger holds ${ledger_cash}, broker reports ${broker_cash} "
                        f"(difference {ledger_cash - broker_cash})")
    return problems
