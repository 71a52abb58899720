"""What a corporate action does to a broker account's ledger: the pure decision
(docs/corporate-actions.md).

Given one action and the book of one broker account (every holding row of the symbols it
touches, the house's included; the lots of those symbols; the ids applied already), return
the book after it and the moves that got it there. The broker's side follows one rule
(`broker_after`): its position becomes `floor9(qty * new_rate / old_rate)` and its cash
grows by `floor_cent(qty * cash_rate)`. Each slice's new shares are rounded down to 9
decimals and each account's cash down to the cent; the house takes what is left, so that
accounts + house equal the broker exactly and nobody goes negative (a sum of floors is
never more than the floor of the sum).

An action already in `applied` changes nothing: applying twice (a resumed window) is
applying once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from typing import Callable, Iterable, Mapping, Sequence

from .corporate_actions import ActionKind, CorporateAction
from .lots import Lot, Realized

QTY = Decimal("0.000000001")
ZERO = Decimal(0)
NANO = 10 ** 9

# The kinds that move holdings here; a cash dividend is a dividend event, and a rights
# distribution is not handled (a window holding its symbol stops).
APPLIED_KINDS = frozenset(ActionKind) - {ActionKind.CASH_DIVIDEND, ActionKind.RIGHTS_DISTRIBUTION}


class ActionError(ValueError):
    """An action that cannot be applied as given (a kind not handled, a bad rate)."""


@dataclass(frozen=True, slots=True)
class Held:
    """One holding row: a slice of an account (or the house's row of a symbol, path = symbol)."""

    account_id: int
    path: str
    symbol: str
    shares: Decimal


@dataclass(frozen=True, slots=True)
class Book:
    """What the ledger knows of one broker account, as far as the actions at hand touch it."""

    house_id: int
    holdings: tuple[Held, ...]
    cash: Mapping[int, int] = field(default_factory=dict)     # cents by account, the house's included
    lots: tuple[Lot, ...] = ()
    applied: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Applied:
    """The moves of one action: every holding row it touched as it is after (shares 0: the
    row goes), cash credited per account (cents, the house's included), cash per slice for
    the planner to invest in the slice's parent pie, the slices of new symbols that arrived
    beside a source slice (liquidated at the next window unless the policy names them), and
    the lots as they are after (shares 0: closed; id 0: a new lot)."""

    action: CorporateAction
    holdings: tuple[Held, ...]
    cash: tuple[tuple[int, int], ...]
    proceeds: tuple[tuple[int, str, int], ...]
    arrived: tuple[tuple[int, str], ...]
    lots: tuple[Lot, ...]
    accounts: tuple[int, ...]                   # every account touched, the house's excluded
    realized: tuple[Realized, ...] = ()         # closed lots' sales at the action's cash (id 0: new rows)
    prices: tuple[tuple[str, Decimal], ...] = ()  # the prices a basis allocation used (spin-off, merger cash)

    @property
    def empty(self) -> bool:
        return not self.holdings and not self.cash


def floor9(x: Decimal) -> Decimal:
    return x.quantize(QTY, rounding=ROUND_DOWN)


def arriving(a: CorporateAction, shares: Decimal) -> Decimal:
    """Shares that arrive for `shares` held (of `new_symbol`, or of `symbol` when None),
    rounded down to 9 decimals. Multiplied before dividing: 3 x 1 / 3 is 1 exactly."""
    return floor9(shares * a.new_rate / a.old_rate)


def check(a: CorporateAction) -> None:
    """Refuse what cannot be applied: a kind not handled, a zero or negative rate."""
    if a.kind not in APPLIED_KINDS:
        raise ActionError(f"{a.id}: {a.kind.value} is not applied to holdings")
    if a.old_rate <= 0:
        raise ActionError(f"{a.id}: old_rate must be positive, not {a.old_rate}")
    if a.new_rate < 0 or a.cash_rate < 0:
        raise ActionError(f"{a.id}: rates cannot be negative")
    if _moves_shares(a) and a.new_rate <= 0:
        raise ActionError(f"{a.id}: new_rate must be positive, not {a.new_rate}")
    if a.kind == ActionKind.NAME_CHANGE and not a.new_symbol:
        raise ActionError(f"{a.id}: a name change needs its new symbol")
    if a.lieu_price < 0:
        raise ActionError(f"{a.id}: lieu_price cannot be negative")
    if a.lieu_price and not _in_place(a):
        raise ActionError(f"{a.id}: cash in lieu is for splits, reverse splits and stock dividends")


def _moves_shares(a: CorporateAction) -> bool:
    return a.kind in (ActionKind.FORWARD_SPLIT, ActionKind.REVERSE_SPLIT, ActionKind.STOCK_DIVIDEND,
                      ActionKind.SPIN_OFF, ActionKind.STOCK_MERGER, ActionKind.STOCK_AND_CASH_MERGER,
                      ActionKind.UNIT_SPLIT)


def _in_place(a: CorporateAction) -> bool:
    """A split, reverse split or stock dividend: the same symbol, a new count."""
    return a.new_symbol is None and a.kind in (ActionKind.FORWARD_SPLIT, ActionKind.REVERSE_SPLIT,
                                               ActionKind.STOCK_DIVIDEND)


def lieu_fraction(a: CorporateAction, total: Decimal) -> tuple[Decimal, Decimal, int]:
    """Cash in lieu at the broker for a position of `total` shares: (W, keep, cents).
    The broker's new position is W = the whole shares of X = total x new_rate / old_rate;
    it pays `cents` = floor_cent((X - W) x lieu_price) for the rest. `keep` = W / X is the
    part of every holding that stays shares (1: no cash in lieu, or X whole)."""
    exact = total * a.new_rate / a.old_rate
    if not a.lieu_price or not _in_place(a) or exact <= 0:
        return floor9(exact), Decimal(1), 0
    whole = exact.to_integral_value(rounding=ROUND_DOWN)
    with localcontext() as ctx:          # exact enough, and down: a slice never gets more than its part
        ctx.prec, ctx.rounding = 60, ROUND_FLOOR
        keep = whole / exact
    return whole, keep, _cents_down((exact - whole) * a.lieu_price)


def _target(a: CorporateAction) -> str | None:
    """The symbol shares arrive in, or None when no shares arrive."""
    if a.kind == ActionKind.NAME_CHANGE:
        return a.new_symbol
    if not _moves_shares(a):
        return None
    return a.new_symbol or a.symbol


def _source_stays(a: CorporateAction) -> bool:
    """Does the holding of `symbol` survive (as it was, or split in place)?"""
    if a.new_symbol is None and _moves_shares(a):
        return True                    # a split or stock dividend: the same symbol, new count
    return a.source_keeps


def broker_after(a: CorporateAction, positions: Mapping[str, Decimal], cash_cents: int) -> tuple[dict[str, Decimal], int]:
    """The broker's positions and cash (cents) after the action, by the one rule above."""
    qty = positions.get(a.symbol, ZERO)
    out = dict(positions)
    if qty <= 0:
        return out, cash_cents
    target = _target(a)
    if a.kind == ActionKind.NAME_CHANGE:
        out.pop(a.symbol)
        out[target] = out.get(target, ZERO) + qty
    elif target is not None:
        arrive = arriving(a, qty)
        if target == a.symbol:
            whole, _, lieu = lieu_fraction(a, qty)
            out[a.symbol] = whole
            cash_cents += lieu
        else:
            if not _source_stays(a):
                out.pop(a.symbol)
            out[target] = out.get(target, ZERO) + arrive
    elif not _source_stays(a):
        out.pop(a.symbol)
    cash = cash_cents + _cents_down(qty * a.cash_rate)
    return {s: q for s, q in out.items() if q}, cash


def _cents_down(x: Decimal) -> int:
    return int((x * 100).to_integral_value(rounding=ROUND_DOWN))


def split_units(total: int, weights: Sequence[Decimal]) -> list[int]:
    """`total` whole units over `weights` (non-negative), pro rata, rounded down, the rest
    one by one to the largest remainders (ties: the earlier weight)."""
    whole = sum(weights, ZERO)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    exact = [Decimal(total) * w / whole for w in weights]
    out = [int(x) for x in exact]                      # down: weights are not negative
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[:total - sum(out)]:
        out[i] += 1
    return out


def parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def beside(path: str, symbol: str) -> str:
    """The path of a new symbol's shares beside the slice at `path`, in its parent pie."""
    p = parent(path)
    return f"{p}/{symbol}" if p else symbol


def _pay(mine: Sequence[Held], cents_of: Callable[[Decimal], int], broker_paid: int, house: int,
         cash_moves: list[tuple[int, int]], proceeds: list[tuple[int, str, int]]) -> None:
    """Pay each account its cents (`cents_of` its shares, rounded down), spread over its slices
    by shares for the planner; the house takes the residue of what the broker paid."""
    by_account: dict[int, list[Held]] = {}
    for h in mine:
        by_account.setdefault(h.account_id, []).append(h)
    paid = 0
    for aid in sorted(by_account):
        slices = by_account[aid]
        c = cents_of(sum((h.shares for h in slices), ZERO))
        paid += c
        if c:
            cash_moves.append((aid, c))
            for h, part in zip(slices, split_units(c, [h.shares for h in slices])):
                if part:
                    proceeds.append((aid, h.path, part))
    if broker_paid - paid:
        cash_moves.append((house, broker_paid - paid))

def apply_action(book: Book, a: CorporateAction,
                 prices: Mapping[str, Decimal] | None = None) -> tuple[Book, Applied]:
    """The book after `a`, and the moves. Already applied: the same book, no moves.
    `prices`: per symbol, on the action's day, for the basis allocations that need them
    (a spin-off's, a unit split's distribution, a stock-and-cash merger's): see
    `basis_share`. Without them the new shares start at no basis (and merger cash
    realizes nothing), as the sources give no allocation."""
    if a.id in book.applied:
        return book, Applied(a, (), (), (), (), (), ())
    check(a)
    house = book.house_id
    rows = {(h.account_id, h.path): h for h in book.holdings}
    source = sorted((h for h in book.holdings if h.symbol == a.symbol and h.shares > 0),
                    key=lambda h: (h.account_id, h.path))
    if any(h.shares < 0 for h in book.holdings):
        raise ActionError(f"{a.id}: a holding of {a.symbol} is negative")
    mine = [h for h in source if h.account_id != house]
    total = sum((h.shares for h in source), ZERO)
    touched: dict[tuple[int, str], Held] = {}

    def put(h: Held) -> None:
        touched[(h.account_id, h.path)] = h
        rows[(h.account_id, h.path)] = h

    def add(aid: int, path: str, symbol: str, shares: Decimal) -> str:
        """Add shares to the row at path (a row there of another symbol: a path beside it)."""
        at = path
        while (r := rows.get((aid, at))) is not None and r.symbol != symbol and r.shares:
            at = f"{at}~"
        old = rows.get((aid, at))
        put(Held(aid, at, symbol, (old.shares if old and old.symbol == symbol else ZERO) + shares))
        return at

    arrived: list[tuple[int, str]] = []
    target = _target(a)
    stays = _source_stays(a)
    new_by_account: dict[int, Decimal] = {}
    if a.kind == ActionKind.NAME_CHANGE:
        for h in source:
            if h.account_id == house:
                put(Held(house, h.path, h.symbol, ZERO))
                add(house, target, target, h.shares)
            else:
                put(Held(h.account_id, h.path, target, h.shares))
                new_by_account[h.account_id] = new_by_account.get(h.account_id, ZERO) + h.shares
    elif target is not None:
        arrive_total, keep, lieu_cents = lieu_fraction(a, total) if target == a.symbol else (arriving(a, total), 1, 0)
        given = ZERO
        for h in mine:
            n = arriving(a, h.shares) if keep == 1 else _kept(a, h.shares, keep)
            given += n
            new_by_account[h.account_id] = new_by_account.get(h.account_id, ZERO) + n
            if target == a.symbol:
                put(Held(h.account_id, h.path, h.symbol, n))
            else:
                if not stays:
                    put(Held(h.account_id, h.path, h.symbol, ZERO))
                if n:
                    arrived.append((h.account_id, add(h.account_id, beside(h.path, target), target, n)))
        residue = arrive_total - given
        if target == a.symbol:
            put(Held(house, a.symbol, a.symbol, residue))
        else:
            if not stays and (house, a.symbol) in rows:
                put(Held(house, a.symbol, a.symbol, ZERO))
            if residue:
                add(house, target, target, residue)
    elif not stays:
        for h in source:
            put(Held(h.account_id, h.path, h.symbol, ZERO))

    # Cash at the rate: each account's rounded down to the cent, split over its slices for
    # the planner; the house takes the residue cents.
    cash_moves: list[tuple[int, int]] = []
    proceeds: list[tuple[int, str, int]] = []
    if a.cash_rate > 0 and total > 0:
        _pay(mine, lambda shares: _cents_down(shares * a.cash_rate),
             _cents_down(total * a.cash_rate), house, cash_moves, proceeds)
    lieu_basis: Decimal | None = None
    if target == a.symbol and keep != 1 and total > 0:
        # Cash in lieu: every account's cashed-out part (its shares x ratio x (1 - keep)) at
        # the lieu price, rounded down to the cent, over its slices by shares for the planner;
        # the house takes the residue cents of what the broker paid.
        _pay(mine, lambda shares: _cents_down(shares * a.new_rate / a.old_rate * (1 - keep) * a.lieu_price),
             lieu_cents, house, cash_moves, proceeds)
        lieu_basis = 1 - keep
    cash = dict(book.cash)
    for aid, c in cash_moves:
        cash[aid] = cash.get(aid, 0) + c

    fraction = basis_share(a, prices or {}) if lieu_basis is None else lieu_basis
    changed, added, cash_basis = _move_lots(a, book.lots, new_by_account, target, stays, fraction)
    lots = [changed[i] for i in sorted(changed)] + added
    # The shares a realized row sells: the cash's part of the old shares (a merger), or the
    # cashed-out part of the new ones (cash in lieu).
    sold = fraction if lieu_basis is None or fraction is None else a.new_rate / a.old_rate * lieu_basis
    realized = _realized(a, book.lots, changed, dict(cash_moves), house, cash_basis, sold)
    all_lots = tuple(changed.get(i, l) for i, l in enumerate(book.lots)) + tuple(added)
    holdings = tuple(sorted((h for h in rows.values() if h.shares), key=lambda h: (h.account_id, h.path)))
    after = Book(house, holdings, cash, all_lots, book.applied | {a.id})
    accounts = tuple(sorted({aid for aid, _ in touched if aid != house} | {aid for aid, _ in cash_moves if aid != house}))
    moved = tuple(sorted(touched.values(), key=lambda h: (h.account_id, h.path)))
    used = tuple(sorted((s, p) for s, p in (prices or {}).items() if s in (a.symbol, a.new_symbol))) \
        if fraction is not None and lieu_basis is None else ()
    return after, Applied(a, moved, tuple(sorted(cash_moves)), tuple(proceeds), tuple(sorted(set(arrived))),
                          tuple(lots), accounts, realized, used)


def basis_share(a: CorporateAction, prices: Mapping[str, Decimal]) -> Decimal | None:
    """The part of the source lots' basis that goes to what the action distributes, by
    relative market value on its day (a simplification of the issuer's Form 8937
    allocation, which the sources do not give):

    - spin-off, a unit split's distribution (the source stays): the new shares' value
      over the whole, `r * P_new / (P_source + r * P_new)` with r = new_rate / old_rate;
    - stock-and-cash merger: the cash's part, `cash_rate / (cash_rate + r * P_new)` (the
      acquirer's price only: the acquiree has stopped trading);

    None when it does not apply or a price is missing or not positive."""
    if a.kind in (ActionKind.SPIN_OFF, ActionKind.UNIT_SPLIT) and a.source_keeps and a.new_symbol:
        p_old, p_new = prices.get(a.symbol), prices.get(a.new_symbol)
        if not p_old or not p_new or p_old <= 0 or p_new <= 0:
            return None
        new_value = a.new_rate / a.old_rate * p_new
        return new_value / (p_old + new_value)
    if a.kind == ActionKind.STOCK_AND_CASH_MERGER and a.cash_rate > 0 and a.new_symbol:
        p_new = prices.get(a.new_symbol)
        if not p_new or p_new <= 0:
            return None
        return a.cash_rate / (a.cash_rate + a.new_rate / a.old_rate * p_new)
    return None


def _kept(a: CorporateAction, shares: Decimal, keep: Decimal) -> Decimal:
    """A slice's shares after a split that pays cash in lieu: its new count times the part
    that stays shares, rounded down (the division already rounded down: never more)."""
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = 60, ROUND_FLOOR
        return floor9(shares * a.new_rate / a.old_rate * keep)


def _half_even_cents(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_HALF_EVEN))


def _move_lots(a: CorporateAction, lots: Sequence[Lot], new_by_account: Mapping[int, Decimal],
               target: str | None, stays: bool, fraction: Decimal | None = None
               ) -> tuple[dict[int, Lot], list[Lot], dict[int, int]]:
    """Lots after the action: those that changed (by their place in `lots`) and new ones
    (id 0). The total basis of an account's lots never changes: a split divides the
    per-share basis by the ratio; a rename or a stock merger carries the basis to the new
    symbol; a spin-off's or unit split's new shares take `fraction` of the basis of the
    source lots they arrive for (per account: the sum's share rounded half-even to the
    cent, spread over those lots by largest remainder, so no lot gives more than it has),
    the source keeping the rest (no fraction: the new shares start at no basis); a cash
    merger, a redemption or a removal closes the lots (shares 0, basis kept on the closed
    lot for the books to realize). A stock-and-cash merger with `fraction` (the cash's
    part) takes that part of each account's basis off the lots it carries, the same way,
    for the cash to realize: returned as lot place -> cents. Holding periods are kept."""
    changed: dict[int, Lot] = {}
    added: list[Lot] = []
    cash_basis: dict[int, int] = {}
    by_account: dict[int, list[int]] = {}
    for i in sorted(range(len(lots)), key=lambda i: (lots[i].account_id, lots[i].acquired, lots[i].id, i)):
        l = lots[i]
        if l.symbol == a.symbol and l.shares > 0:
            by_account.setdefault(l.account_id, []).append(i)
    for aid in sorted(by_account):
        mine = by_account[aid]
        units = int(new_by_account.get(aid, ZERO) * NANO)
        parts = split_units(units, [lots[i].shares for i in mine])
        if a.kind == ActionKind.NAME_CHANGE or (target is not None and (target == a.symbol or not stays)):
            carried = [i for i, p in zip(mine, parts) if p]
            if fraction is not None and carried and (a.kind == ActionKind.STOCK_AND_CASH_MERGER or a.lieu_price):
                whole = sum(lots[i].basis for i in carried)
                cash_basis = {**cash_basis, **dict(zip(carried, split_units(
                    _half_even_cents(whole * fraction), [Decimal(lots[i].basis) for i in carried])))}
            for i, p in zip(mine, parts):
                l = lots[i]
                shares = Decimal(p).scaleb(-9)
                # Shares already a wash sale's replacement scale with the lot, never past it.
                replaced = l.replaced if a.kind == ActionKind.NAME_CHANGE else min(shares, arriving(a, l.replaced))
                basis = l.basis - cash_basis.get(i, 0)
                changed[i] = replace(l, symbol=target, shares=shares, replaced=replaced, basis=basis,
                                     wash_adjustment=min(l.wash_adjustment, basis))
        elif target is not None:         # a spin-off, a unit split's distribution: new lots beside
            getting = [(i, p) for i, p in zip(mine, parts) if p]
            moved = [0] * len(getting)
            if fraction is not None and getting:
                whole = sum(lots[i].basis for i, _ in getting)
                moved = split_units(_half_even_cents(whole * fraction), [Decimal(lots[i].basis) for i, _ in getting])
            for (i, p), b in zip(getting, moved):
                l = lots[i]
                if b:
                    changed[i] = replace(l, basis=l.basis - b, wash_adjustment=min(l.wash_adjustment, l.basis - b))
                added.append(Lot(0, aid, target, l.bought, l.acquired, Decimal(p).scaleb(-9), b))
        else:                           # cash merger, redemption, worthless removal: closed
            for i in mine:
                changed[i] = replace(lots[i], shares=ZERO)
    return changed, added, cash_basis


def _realized(a: CorporateAction, lots: Sequence[Lot], changed: Mapping[int, Lot], cash: Mapping[int, int],
              house: int, cash_basis: Mapping[int, int] | None = None,
              fraction: Decimal | None = None) -> tuple[Realized, ...]:
    """A cash merger, redemption or worthless removal sells the lots it closes on its day:
    each account's cash (rounded down already) split over its closed lots by shares; a
    removal realizes the whole basis as a loss. A stock-and-cash merger with its basis
    allocated (`cash_basis`) sells the cash's part of every lot: one row per lot, the
    account's cash split over its lots by shares, the lot's allocated basis, its shares
    times `fraction` (rounded down), the lot's holding period; a lot too small to get a
    new share closes and sells whole."""
    if cash_basis:
        return _cash_part(a, lots, changed, cash, house, cash_basis, fraction or ZERO)
    closed = [i for i in sorted(changed) if changed[i].shares == 0 and lots[i].shares > 0]
    by_account: dict[int, list[int]] = {}
    for i in closed:
        by_account.setdefault(lots[i].account_id, []).append(i)
    out: list[Realized] = []
    for aid in sorted(by_account):
        mine = sorted(by_account[aid], key=lambda i: (lots[i].acquired, lots[i].id, i))
        parts = split_units(cash.get(aid, 0) if aid != house else 0, [lots[i].shares for i in mine])
        out.extend(Realized(0, aid, lots[i].id, lots[i].symbol, lots[i].acquired, a.effective, lots[i].shares,
                            c, lots[i].basis) for i, c in zip(mine, parts))
    return tuple(out)


def _cash_part(a: CorporateAction, lots: Sequence[Lot], changed: Mapping[int, Lot], cash: Mapping[int, int],
               house: int, cash_basis: Mapping[int, int], fraction: Decimal) -> tuple[Realized, ...]:
    by_account: dict[int, list[int]] = {}
    for i in sorted(changed):
        if lots[i].shares > 0 and lots[i].account_id != house:
            by_account.setdefault(lots[i].account_id, []).append(i)
    out: list[Realized] = []
    for aid in sorted(by_account):
        mine = sorted(by_account[aid], key=lambda i: (lots[i].acquired, lots[i].id, i))
        parts = split_units(cash.get(aid, 0), [lots[i].shares for i in mine])
        for i, c in zip(mine, parts):
            l, closes = lots[i], changed[i].shares == 0
            out.append(Realized(0, aid, l.id, l.symbol, l.acquired, a.effective,
                                l.shares if closes else floor9(l.shares * fraction), c,
                                l.basis if closes else cash_basis.get(i, 0)))
    return tuple(out)


def apply_all(book: Book, actions: Iterable[CorporateAction]) -> tuple[Book, list[Applied]]:
    """Every action in effective-date then id order, each once."""
    done: list[Applied] = []
    for a in sorted(actions, key=lambda a: (a.effective, a.id)):
        if a.id in book.applied:
            continue
        book, moved = apply_action(book, a)
        done.append(moved)
    return book, done


def describe(a: CorporateAction) -> str:
    """One line for an account's history and the window report."""
    k = a.kind
    if k == ActionKind.NAME_CHANGE:
        return f"{a.symbol} was renamed {a.new_symbol} on {a.effective}"
    if k in (ActionKind.FORWARD_SPLIT, ActionKind.REVERSE_SPLIT):
        return f"{a.symbol} split {_num(a.new_rate)}-for-{_num(a.old_rate)} on {a.effective}"
    if k == ActionKind.STOCK_DIVIDEND:
        return f"{a.symbol} paid a stock dividend of {_num(a.new_rate - a.old_rate)} per share on {a.effective}"
    if k == ActionKind.CASH_MERGER:
        return f"{a.symbol} was acquired for ${_num(a.cash_rate)} a share on {a.effective}"
    if k in (ActionKind.STOCK_MERGER, ActionKind.STOCK_AND_CASH_MERGER):
        cash = f" and ${_num(a.cash_rate)}" if a.cash_rate else ""
        return f"{a.symbol} merged into {a.new_symbol}: {_num(a.new_rate)} for {_num(a.old_rate)}{cash} on {a.effective}"
    if k == ActionKind.SPIN_OFF:
        return f"{a.symbol} spun off {a.new_symbol}: {_num(a.new_rate)} for {_num(a.old_rate)} on {a.effective}"
    if k == ActionKind.UNIT_SPLIT:
        return f"{a.symbol} units split into {a.new_symbol}: {_num(a.new_rate)} for {_num(a.old_rate)} on {a.effective}"
    if k == ActionKind.REDEMPTION:
        return f"{a.symbol} was redeemed at ${_num(a.cash_rate)} a share on {a.effective}"
    if k == ActionKind.WORTHLESS_REMOVAL:
        return f"{a.symbol} was removed as worthless on {a.effective}"
    return f"{a.symbol}: {k.value} on {a.effective}"


def _num(d: Decimal) -> str:
    s = format(d.normalize(), "f")
    return s


def gone_symbol(a: CorporateAction) -> bool:
    """Is `a.symbol` gone after the action (renamed, merged, redeemed, removed)?"""
    return a.kind in APPLIED_KINDS and not _source_stays(a)


def _whole_ratio(big: Decimal, small: Decimal) -> int | None:
    """`big / small` when it is a whole number of 2 or more (to a millionth), else None."""
    if small <= 0 or big <= small:
        return None
    r = big / small
    n = int(r.to_integral_value())
    return n if n >= 2 and abs(r - n) <= r * Decimal("0.000001") else None


def suspects(owned: Mapping[str, Decimal], positions: Mapping[str, Decimal],
             listed: Sequence[CorporateAction], applied: Sequence[CorporateAction]) -> list[str]:
    """Before anything trades: the symbols where the ledger and the broker disagree in a
    way a corporate action explains, each with the action suspected. `listed`: what the
    source reported for the days since the last window; `applied`: what the ledger applied
    (ever). A disagreement nothing here explains is left to reconciliation."""
    out: list[str] = []
    applied_ids = {a.id for a in applied}
    touching: dict[str, list[CorporateAction]] = {}
    for a in sorted({a.id: a for a in (*listed, *applied)}.values(), key=lambda a: (a.effective, a.id)):
        if a.kind == ActionKind.CASH_DIVIDEND:
            continue
        for sym in {a.symbol, a.new_symbol} - {None}:
            touching.setdefault(sym, []).append(a)
    only_broker = sorted(s for s in positions if positions[s] > 0 and owned.get(s, ZERO) == 0)
    for sym in sorted(set(owned) | set(positions)):
        mine, theirs = owned.get(sym, ZERO), positions.get(sym, ZERO)
        if mine == theirs:
            continue
        figures = f"the ledger holds {mine} shares, the broker reports {theirs}"
        related = [a for a in touching.get(sym, ()) if a.id in applied_ids or a in listed]
        if related:
            a = related[-1]
            state = "the ledger applied it" if a.id in applied_ids else "the ledger has not applied it"
            out.append(f"{sym}: {figures}; suspected: {a.kind.value} {a.id} ({describe(a)}), {state}")
        elif (n := _whole_ratio(theirs, mine)) is not None:
            out.append(f"{sym}: {figures}; suspected: a {n}-for-1 split the ledger has not heard of")
        elif (n := _whole_ratio(mine, theirs)) is not None:
            out.append(f"{sym}: {figures}; suspected: a 1-for-{n} reverse split the ledger has not heard of")
        elif mine > 0 and theirs == 0 and only_broker:
            out.append(f"{sym}: {figures}; suspected: a rename or merger into {', '.join(only_broker)} "
                       f"the ledger has not heard of")
    return out
