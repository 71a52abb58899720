"""What a policy change would do, before it does it (`pies policy plan`): pure.

For each changed pie, the target diff; for each account that follows the file, the held
slices the new version drops (liquidated at the next window: valued at the given prices)
and whether its targets change without trading; totals per symbol and over all accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Mapping, Sequence

from rules.model import Pie, Policy, Security

from .money import cents, fmt


def live_paths(pie: Pie) -> set[str]:
    """Security paths of a pie whose target, and every pie's above them, is above 0%."""
    out: set[str] = set()

    def walk(p: Pie, prefix: str) -> None:
        for sl in p.slices:
            if sl.target_bp == 0:
                continue
            path = prefix + sl.name
            if isinstance(sl, Security):
                out.add(path)
            else:
                walk(sl, path + "/")
    walk(pie, "")
    return out


@dataclass(frozen=True, slots=True)
class SliceChange:
    path: str
    change: str                  # added | removed | changed
    old_bp: int | None
    new_bp: int | None
    is_pie: bool

    def to_json(self) -> dict[str, Any]:
        return {"slice": self.path, "change": self.change, "pie": self.is_pie,
                "old": None if self.old_bp is None else f"{fmt(self.old_bp)}%",
                "new": None if self.new_bp is None else f"{fmt(self.new_bp)}%"}


def target_diff(old: Pie | None, new: Pie | None) -> tuple[SliceChange, ...]:
    """Slices added, removed or with another target, by path (each slice's own target in
    its parent, as the file writes it)."""
    before = {p: s for p, s in old.walk()} if old else {}
    after = {p: s for p, s in new.walk()} if new else {}
    out = []
    for path in sorted(set(before) | set(after)):
        b, a = before.get(path), after.get(path)
        if b is None:
            out.append(SliceChange(path, "added", None, a.target_bp, isinstance(a, Pie)))
        elif a is None:
            out.append(SliceChange(path, "removed", b.target_bp, None, isinstance(b, Pie)))
        elif b.target_bp != a.target_bp or isinstance(a, Pie) != isinstance(b, Pie):
            out.append(SliceChange(path, "changed", b.target_bp, a.target_bp, isinstance(a, Pie)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Follower:
    """An account that follows a version of the file being changed."""

    name: str
    pie: str
    rules: str
    version_id: int
    holdings: tuple[tuple[str, str, Decimal], ...]     # (path, symbol, shares), shares > 0
    queued: frozenset[str] = frozenset()               # paths with a liquidation already pending
    to_pie: str | None = None                          # the pie it moves to (None: the same name)


@dataclass(frozen=True, slots=True)
class Liquidation:
    path: str
    symbol: str
    shares: Decimal
    cents: int | None            # at the given prices; None when there is no price

    def to_json(self) -> dict[str, Any]:
        return {"slice": self.path, "symbol": self.symbol, "shares": str(self.shares),
                "amount": None if self.cents is None else fmt(self.cents)}


@dataclass(frozen=True, slots=True)
class AccountChange:
    account: str
    pie: str
    rules: str
    from_version: int
    liquidations: tuple[Liquidation, ...]

    @property
    def cents(self) -> int:
        return sum(x.cents or 0 for x in self.liquidations)

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "pie": self.pie, "rules": self.rules, "from_version": self.from_version,
                "liquidations": [x.to_json() for x in self.liquidations], "amount": fmt(self.cents)}


@dataclass(frozen=True, slots=True)
class PieChange:
    pie: str
    from_version: int | None     # None: the pie is new
    changes: tuple[SliceChange, ...]

    def to_json(self) -> dict[str, Any]:
        return {"pie": self.pie, "from_version": self.from_version, "changes": [c.to_json() for c in self.changes]}


@dataclass(frozen=True, slots=True)
class ChangePlan:
    file: str
    sha256: str
    changed: bool                                   # the text differs from what the accounts follow
    pies: tuple[PieChange, ...]
    accounts: tuple[AccountChange, ...]             # those that liquidate something, by name
    quiet_accounts: int                             # targets change, nothing trades
    totals: tuple[tuple[str, Decimal, int], ...]    # (symbol, shares, cents), by symbol
    unpriced: tuple[str, ...] = ()                  # symbols without a price (amounts unknown)
    retargeted: tuple[str, ...] = ()                # every account whose targets change, by name

    def liquidated(self) -> dict[str, tuple[Liquidation, ...]]:
        """account -> the slices this change liquidates (what an apply queues, exactly)."""
        return {a.account: a.liquidations for a in self.accounts}

    @property
    def trades(self) -> bool:
        return bool(self.accounts)

    @property
    def cents(self) -> int:
        return sum(c for _, _, c in self.totals)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "changed": self.changed, "trades": self.trades,
                "pies": [p.to_json() for p in self.pies], "accounts": [a.to_json() for a in self.accounts],
                "quiet_accounts": self.quiet_accounts,
                "totals": {"by_symbol": [{"symbol": s, "shares": str(q), "amount": fmt(c)} for s, q, c in self.totals],
                           "amount": fmt(self.cents), "accounts": len(self.accounts)},
                "unpriced": list(self.unpriced)}


def retargets(old: Policy, new: Policy, pie: str, to_pie: str | None = None) -> bool:
    """Whether an account on `pie` of `old` gets other targets under `new` (on `to_pie`
    of it, when it moves to another pie): only such an account can liquidate anything."""
    new_pie = new.pies.get(to_pie or pie)
    return new_pie is not None and old.pies.get(pie) != new_pie


def plan_change(file: str, sha256: str, new: Policy, followed: Mapping[int, Policy], followers: Sequence[Follower],
                prices: Mapping[str, Decimal], *, baseline: tuple[int, Policy] | None = None,
                changed: bool = True) -> ChangePlan:
    """The one decision of what a policy change liquidates: `policy apply` (and an
    account's move to another pie) writes exactly these liquidations. `followed` holds the
    versions the followers follow now (by id); `baseline` is the version to diff against
    when no account follows the file."""
    pies: list[PieChange] = []
    versions = sorted(followed.items()) or ([baseline] if baseline else [])
    for vid, old in versions:
        for name in sorted(set(old.pies) | set(new.pies)):
            diff = target_diff(old.pies.get(name), new.pies.get(name))
            if diff:
                pies.append(PieChange(name, vid if name in old.pies else None, diff))
    accounts: list[AccountChange] = []
    quiet = 0
    retargeted: list[str] = []
    changes: dict[tuple[int, str, str], bool] = {}
    totals: dict[str, tuple[Decimal, int]] = {}
    unpriced: set[str] = set()
    for f in sorted(followers, key=lambda f: f.name):
        target = f.to_pie or f.pie
        key = (f.version_id, f.pie, target)
        if key not in changes:                # pies compare deeply: once per version and pie
            changes[key] = retargets(followed[f.version_id], new, f.pie, f.to_pie)
        if not changes[key]:
            continue
        new_pie = new.pies[target]
        retargeted.append(f.name)
        live = live_paths(new_pie)
        out = []
        for path, symbol, shares in sorted(f.holdings):
            if shares <= 0 or path in live or path in f.queued:
                continue
            price = prices.get(symbol)
            worth = None if price is None else cents(shares * price, ROUND_HALF_EVEN)
            if price is None:
                unpriced.add(symbol)
            out.append(Liquidation(path, symbol, shares, worth))
            q, c = totals.get(symbol, (Decimal(0), 0))
            totals[symbol] = (q + shares, c + (worth or 0))
        if out:
            accounts.append(AccountChange(f.name, target, f.rules, f.version_id, tuple(out)))
        else:
            quiet += 1
    return ChangePlan(file, sha256, changed, tuple(pies), tuple(accounts), quiet,
                      tuple((s, q, c) for s, (q, c) in sorted(totals.items())), tuple(sorted(unpriced)),
                      tuple(retargeted))
