"""Netting the accounts' slice trades of one symbol into one broker order, and splitting what
the broker did back across them, exactly. Pure: no I/O.

Rules (docs/window.md):
- Buys and sells of one symbol cross internally; only the net goes to the broker: a net
  buy as a notional order, a net sell by quantity (the shares the sellers deliver less the
  shares the crossing buyers take, at the planning price). Selling by quantity means the
  broker can never sell more shares than the sellers deliver, whatever the price does, so
  whole-holding sells deliver the whole holding and the house never goes negative.
- A net below the broker minimum is not sent: the larger side shrinks by it (reported as
  deferred) and the rest crosses at the window's planning price.
- Every buyer pays exactly the dollars it asked for (or its share of a partial fill); every
  seller receives dollars in proportion to the shares it delivered. Shares go out rounded
  down to 9 decimals, deliveries are rounded up (never past a holding), and the house
  account takes what is left, so the house residue is never negative. Cash is conserved
  to the cent: the house's cash change is reported, and zero except where the house bought
  a leftover.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Hashable, Sequence

from .allocate import apportion
from .money import cents

NANO = Decimal("0.000000001")


def floor9(x: Decimal) -> Decimal:
    return x.quantize(NANO, rounding=ROUND_DOWN)


def ceil9(x: Decimal) -> Decimal:
    return x.quantize(NANO, rounding=ROUND_CEILING)


@dataclass(frozen=True, slots=True)
class Want:
    """One slice's wish for this symbol: signed cents (+ buy, - sell)."""

    key: Hashable
    cents: int
    sell_all: bool = False
    held: Decimal = Decimal(0)          # shares the slice holds now (for sells)


@dataclass(frozen=True, slots=True)
class Net:
    symbol: str
    side: str | None                    # "buy" | "sell" | None (fully crossed, nothing sent)
    notional: int | None                # cents
    qty: Decimal | None                 # shares, when every trade is a whole-holding sell
    wants: tuple[Want, ...]             # after deferral
    deferred: tuple[tuple[Hashable, int], ...]   # (key, cents no longer traded)
    price: Decimal | None = None        # the planning price: crossings in a net sell use it


def delivery(w: Want, price: Decimal) -> Decimal:
    """Shares a seller delivers when its sell goes through in full: its whole holding, or
    what its dollars buy at the price (rounded up, never past the holding)."""
    if w.sell_all:
        return w.held
    return min(w.held, ceil9(Decimal(-w.cents) / 100 / price))


def net(symbol: str, wants: Sequence[Want], min_order: int, price: Decimal | None = None) -> Net:
    buys = [w for w in wants if w.cents > 0]
    sells = [w for w in wants if w.cents < 0]
    b = sum(w.cents for w in buys)
    s = -sum(w.cents for w in sells)
    n = b - s
    deferred: list[tuple[Hashable, int]] = []
    kept = list(wants)
    if n and abs(n) < min_order:
        side = buys if n > 0 else sells
        amounts = [abs(w.cents) for w in side]
        cuts = apportion(abs(n), [abs(n) * a for a in amounts], sum(amounts), range(len(amounts)))
        cut_by = {id(w): c for w, c in zip(side, cuts)}
        kept = []
        for w in wants:
            c = cut_by.get(id(w), 0)
            if c:
                deferred.append((w.key, c if w.cents > 0 else -c))
                left = abs(w.cents) - c
                if left:
                    kept.append(Want(w.key, left if w.cents > 0 else -left, False, w.held))
            else:
                kept.append(w)
        n = 0
    if n == 0:
        return Net(symbol, None, None, None, tuple(kept), tuple(deferred), price)
    if n > 0:
        return Net(symbol, "buy", n, None, tuple(kept), tuple(deferred), price)
    if not any(w.cents > 0 for w in kept) and all(w.sell_all for w in kept):
        return Net(symbol, "sell", None, sum((w.held for w in kept), Decimal(0)), tuple(kept), tuple(deferred), price)
    if price is None:
        raise ValueError(f"{symbol}: a net sell with crossings or partial sells needs the planning price")
    out = sum((delivery(w, price) for w in kept if w.cents < 0), Decimal(0))
    taken = sum((floor9(Decimal(w.cents) / 100 / price) for w in kept if w.cents > 0), Decimal(0))
    if out <= taken:    # sub-cent rounding: nothing left to send; the cross settles it all
        return Net(symbol, None, None, None, tuple(kept), tuple(deferred), price)
    return Net(symbol, "sell", None, out - taken, tuple(kept), tuple(deferred), price)


@dataclass(frozen=True, slots=True)
class Share:
    key: Hashable
    shares: Decimal                     # + received, - delivered
    cents: int                          # + paid, - received


@dataclass(frozen=True, slots=True)
class Split:
    symbol: str
    shares: tuple[Share, ...]
    house_shares: Decimal               # residue, >= 0
    house_cents: int                    # + the house received cash, - it paid (bought a leftover)
    price: Decimal


def split(n: Net, *, filled_qty: Decimal, filled_cents: int, price: Decimal) -> Split:
    """Split the order's fill (qty, dollars, average price) and the internal crosses.

    With no order (fully crossed) pass the planning price and zeros.
    """
    buys = [w for w in n.wants if w.cents > 0]
    sells = [w for w in n.wants if w.cents < 0]
    out: list[Share] = []
    if n.side == "sell":
        # Buyers cross in full at the planning price (the order's quantity counted on it);
        # sellers share the broker's proceeds plus the buyers' dollars, in proportion to
        # the shares they deliver.
        p0 = n.price if n.price is not None else price
        given = Decimal(0)
        paid = 0
        for w in buys:
            g = floor9(Decimal(w.cents) / 100 / p0)
            given += g
            paid += w.cents
            out.append(Share(w.key, g, w.cents))
        leaving = filled_qty + given
        delivered = _deliveries(sells, leaving, p0)
        pool = filled_cents + paid
        got = _pro_rata(pool, [int(d / NANO) for d in delivered])
        for w, d, r in zip(sells, delivered, got):
            out.append(Share(w.key, -d, -r))
        house_shares = sum(delivered, Decimal(0)) - leaving
        return Split(n.symbol, tuple(out), house_shares, 0, price)
    # Net buy (or fully crossed): sellers cross in full; buyers share the dollars covered
    # (the broker's fill plus the sellers' shares) and the shares that came with them.
    received = 0
    delivered_total = Decimal(0)
    for w in sells:
        want = ceil9(Decimal(-w.cents) / 100 / price)
        d = w.held if w.sell_all else min(w.held, want)
        # A seller gets the dollars it asked for, unless it holds less than that is worth
        # at the fill price (or sells everything): then what it delivers is worth.
        r = -w.cents if not w.sell_all and d == want else cents(d * price, ROUND_DOWN)
        delivered_total += d
        received += r
        out.append(Share(w.key, -d, -r))
    covered = filled_cents + received
    asked = sum(w.cents for w in buys)
    spend = min(asked, covered)
    pays = _pro_rata(spend, [w.cents for w in buys])
    pool = filled_qty + delivered_total
    given = Decimal(0)
    for w, p in zip(buys, pays):
        g = floor9(pool * p / covered) if covered else Decimal(0)
        given += g
        out.append(Share(w.key, g, p))
    return Split(n.symbol, tuple(out), pool - given, spend - covered, price)


def _deliveries(sells: Sequence[Want], leaving: Decimal, price: Decimal) -> list[Decimal]:
    """Shares each seller delivers so that together they cover `leaving`: all it meant to
    deliver when the order filled in full, else in proportion, rounded up to 9 decimals and
    never more than it meant (so the sum covers `leaving` and the house keeps the rest)."""
    if not sells:
        return []
    meant = [delivery(w, price) for w in sells]
    total = sum(meant, Decimal(0))
    if total <= 0 or leaving >= total:
        return meant
    return [min(m, ceil9(m * leaving / total)) for m in meant]


def _pro_rata(amount: int, weights: Sequence[int]) -> list[int]:
    """Split integer `amount` by integer weights, exactly (largest remainder, file order)."""
    total = sum(weights)
    if not weights:
        return []
    if total <= 0:
        return [0] * len(weights)
    return apportion(amount, [amount * w for w in weights], total, range(len(weights)))
