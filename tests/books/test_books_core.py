"""The books' core (engine/core/lots.py, engine/core/books.py): named cases of the issue,
then whole random histories checked after every window against a naive reading of the
rules."""

from __future__ import annotations

import decimal
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.books import Trade, net_trades
from engine.core.lots import Lot, LotMethod, consume, is_long_term

from books.books_sim import Books

D = date


def one_row(b: Books):
    assert len(b.last.new_realized) == 1
    return b.last.new_realized[0]


# --- named cases -------------------------------------------------------------------------

def test_wash_sale_inside_one_account():
    b = Books()
    b.buy(D(2026, 1, 5), 1, "XYZ", "10", 100_000)          # lot 1: $100/share
    b.buy(D(2026, 1, 20), 1, "XYZ", "10", 80_000)          # lot 2: $80/share, 5 days before the sale
    b.sell(D(2026, 1, 25), 1, "XYZ", "10", 85_000)         # tax-min: lot 1 first (the loss)
    row = one_row(b)
    assert (row.lot_id, row.proceeds, row.basis) == (1, 85_000, 100_000)
    assert row.wash_sale_disallowed == 15_000 and row.gain == 0 and row.washed == 10
    lot2 = b.lots[2]
    assert (lot2.basis, lot2.wash_adjustment, lot2.acquired, lot2.bought) == (95_000, 15_000, D(2026, 1, 5),
                                                                                D(2026, 1, 20))


def test_wash_sale_across_two_accounts_of_one_owner():
    b = Books(owners={1: "ann", 2: "ann", 3: "bob"})
    b.buy(D(2026, 1, 5), 1, "XYZ", "10", 100_000)
    b.window(D(2026, 1, 20), [Trade(2, "XYZ", Decimal(10), 80_000), Trade(3, "XYZ", Decimal(10), 80_000)])
    b.sell(D(2026, 1, 25), 1, "XYZ", "10", 85_000)
    assert one_row(b).wash_sale_disallowed == 15_000
    ann2, bob = b.open_lots(2)[0], b.open_lots(3)[0]
    assert (ann2.basis, ann2.acquired) == (95_000, D(2026, 1, 5))
    assert (bob.basis, bob.acquired, bob.wash_adjustment) == (80_000, D(2026, 1, 20), 0)   # another owner


def test_the_same_trades_under_separate_owners_wash_nothing():
    b = Books()                                               # each account its own owner
    b.buy(D(2026, 1, 5), 1, "XYZ", "10", 100_000)
    b.buy(D(2026, 1, 20), 2, "XYZ", "10", 80_000)
    b.sell(D(2026, 1, 25), 1, "XYZ", "10", 85_000)
    assert one_row(b).wash_sale_disallowed == 0 and one_row(b).gain == -15_000


def test_a_replacement_bought_after_the_sale_adjusts_the_earlier_row():
    b = Books()
    b.buy(D(2026, 1, 5), 1, "XYZ", "10", 100_000)
    b.sell(D(2026, 2, 2), 1, "XYZ", "10", 85_000)
    assert one_row(b).wash_sale_disallowed == 0              # nothing bought around it yet
    b.buy(D(2026, 3, 4), 1, "XYZ", "10", 90_000)             # the 30th day after the sale
    (row,) = b.last.changed_realized
    assert (row.id, row.wash_sale_disallowed, row.washed, row.gain) == (1, 15_000, 10, 0)
    assert b.realized[1].wash_sale_disallowed == 15_000
    new = b.open_lots(1)[0]
    assert (new.basis, new.wash_adjustment, new.acquired, new.bought) == (105_000, 15_000, D(2026, 1, 5),
                                                                          D(2026, 3, 4))


def test_a_buy_on_the_31st_day_after_the_sale_washes_nothing():
    b = Books()
    b.buy(D(2026, 1, 5), 1, "XYZ", "10", 100_000)
    b.sell(D(2026, 2, 2), 1, "XYZ", "10", 85_000)
    b.buy(D(2026, 3, 5), 1, "XYZ", "10", 90_000)
    assert b.last.changed_realized == () and b.open_lots(1)[0].basis == 90_000


def test_a_partial_replacement():
    b = Books(owners={1: "ann", 2: "ann"})
    b.buy(D(2026, 1, 5), 1, "XYZ", "10", 100_000)
    b.buy(D(2026, 1, 20), 2, "XYZ", "4", 32_000)              # replaces 4 of the 10 shares sold
    b.sell(D(2026, 1, 25), 1, "XYZ", "10", 85_000)
    row = one_row(b)
    assert (row.wash_sale_disallowed, row.washed, row.gain) == (6_000, 4, -9_000)
    lot = b.open_lots(2)[0]
    assert (lot.shares, lot.basis, lot.acquired) == (4, 38_000, D(2026, 1, 5))
    # The rest of the loss is washed by a later buy (within 30 days): 6 shares of 15 bought,
    # the buy's lot split: 6 replacement shares carry the loss and the old acquisition.
    b.buy(D(2026, 2, 10), 2, "XYZ", "15", 120_000)
    (row,) = b.last.changed_realized
    assert (row.wash_sale_disallowed, row.washed, row.gain) == (15_000, 10, 0)
    parts = sorted((x.shares, x.basis, x.acquired) for x in b.open_lots(2) if x.bought == D(2026, 2, 10))
    assert parts == [(6, 48_000 + 9_000, D(2026, 1, 5)), (9, 72_000, D(2026, 2, 10))]


def test_a_replacement_is_used_once():
    b = Books()
    b.buy(D(2026, 1, 5), 1, "XYZ", "10", 100_000)
    b.buy(D(2026, 1, 6), 1, "ABC", "1", 1_000)
    b.sell(D(2026, 1, 25), 1, "XYZ", "10", 85_000)            # no replacement: the loss stands
    b.buy(D(2026, 1, 26), 1, "XYZ", "10", 85_000)             # replaces it
    b.sell(D(2026, 1, 28), 1, "XYZ", "10", 80_000)            # loss on the replacement (basis 100,000)
    row = one_row(b)
    assert row.basis == 100_000 and row.wash_sale_disallowed == 0   # nothing left to replace it


def test_the_long_term_boundary_day():
    assert not is_long_term(D(2025, 3, 10), D(2026, 3, 10))
    assert is_long_term(D(2025, 3, 10), D(2026, 3, 11))
    assert not is_long_term(D(2024, 2, 29), D(2025, 2, 28)) and is_long_term(D(2024, 2, 29), D(2025, 3, 1))
    for sold, term in ((D(2026, 3, 10), "short"), (D(2026, 3, 11), "long")):
        b = Books()
        b.buy(D(2025, 3, 10), 1, "XYZ", "1", 10_000)
        b.sell(sold, 1, "XYZ", "1", 12_000)
        assert one_row(b).term == term


def test_a_sale_crossing_several_lots_of_mixed_terms():
    b = Books()
    for day, basis in ((D(2024, 1, 2), 50_000), (D(2025, 12, 1), 70_000), (D(2025, 6, 2), 60_000),
                       (D(2024, 6, 3), 65_000), (D(2026, 1, 5), 55_000)):
        b.buy(day, 1, "XYZ", "10", basis)                     # lots 1..5, 10 shares each
    b.sell(D(2026, 2, 2), 1, "XYZ", "45", 270_000)            # $60 a share
    rows = b.last.new_realized
    # tax-min: short loss (2), long loss (4), short at no gain (3), long gain (1), short gain (5)
    assert [(r.lot_id, r.shares, r.term) for r in rows] == [(2, 10, "short"), (4, 10, "long"), (3, 10, "short"),
                                                            (1, 10, "long"), (5, 5, "short")]
    assert [r.proceeds for r in rows] == [60_000, 60_000, 60_000, 60_000, 30_000]
    assert [r.basis for r in rows] == [70_000, 65_000, 60_000, 50_000, 27_500]
    assert all(r.wash_sale_disallowed == 0 for r in rows)     # lot 5, bought within 30 days, is sold here
    assert b.lots[5].shares == 5 and b.lots[5].basis == 27_500


def test_a_partly_consumed_lot_gives_up_its_basis_half_even():
    lot = Lot(7, 1, "XYZ", D(2026, 1, 2), D(2026, 1, 2), Decimal(3), 1_001)
    c = consume([lot], Decimal(1), 500, D(2026, 2, 2), LotMethod.FIFO)
    assert c.realized[0].basis == 334 and c.lots[0].basis == 667     # 333.67 -> 334
    lot = Lot(7, 1, "XYZ", D(2026, 1, 2), D(2026, 1, 2), Decimal(4), 1_002)
    assert consume([lot], Decimal(1), 500, D(2026, 2, 2)).realized[0].basis == 250   # 250.5 -> 250 (even)


def test_proceeds_split_by_shares_the_last_lot_taking_the_remainder():
    lots = [Lot(i, 1, "XYZ", D(2026, 1, i), D(2026, 1, i), Decimal(1), 1_000) for i in (1, 2, 3)]
    c = consume(lots, Decimal(3), 1_000, D(2026, 2, 2), LotMethod.FIFO)
    assert [r.proceeds for r in c.realized] == [333, 333, 334]


def test_net_trades_per_account_and_symbol():
    moves = [(1, "VTI", Decimal("2"), 500), (1, "VTI", Decimal("-0.5"), -120), (2, "VTI", Decimal("1"), 250),
             (2, "VTI", Decimal("-1"), -250), (1, "BND", Decimal("-1"), -70)]
    assert net_trades(moves) == [Trade(1, "BND", Decimal(-1), -70), Trade(1, "VTI", Decimal("1.5"), 380)]


# --- whole histories ---------------------------------------------------------------------

def naive_long(acquired: date, sold: date) -> bool:
    """More than a year, by the calendar: (y+1, m, d) strictly before the sale."""
    return (sold.year, sold.month, sold.day) > (acquired.year + 1, acquired.month, acquired.day)


def naive_order(lots: list[Lot], method: LotMethod, proceeds: int, sold_shares: Decimal, day: date) -> list[int]:
    """Selection by pairwise comparison, the issue's words read literally."""
    with decimal.localcontext() as ctx:
        ctx.prec = 80

        def gain(x: Lot) -> Decimal:      # gain per share × (sold shares × lot shares), same sign and order
            return proceeds * x.shares - x.basis * sold_shares

        def group(x: Lot) -> int:
            g, long = gain(x), naive_long(x.acquired, day)
            if g < 0:
                return 2 if long else 1
            if g == 0:
                return 4 if long else 3
            return 5 if long else 6

        def before(a: Lot, b: Lot) -> bool:
            if method == LotMethod.TAX_MIN:
                if group(a) != group(b):
                    return group(a) < group(b)
                ga, gb = gain(a) / a.shares, gain(b) / b.shares
                if ga != gb:
                    return ga < gb         # largest loss first; smallest gain first
            elif method == LotMethod.FIFO:
                if a.acquired != b.acquired:
                    return a.acquired < b.acquired
            elif method == LotMethod.LIFO:
                if a.acquired != b.acquired:
                    return a.acquired > b.acquired
            elif method == LotMethod.HIFO:
                if a.basis * b.shares != b.basis * a.shares:
                    return a.basis * b.shares > b.basis * a.shares
            if a.acquired != b.acquired:
                return a.acquired < b.acquired
            return a.id < b.id

        left, out = list(lots), []
        while left:
            best = left[0]
            for x in left[1:]:
                if before(x, best):
                    best = x
            out.append(best.id)
            left.remove(best)
        return out


ACCOUNTS = (1, 2, 3, 4)
SYMBOLS = ("AAA", "BBB")


@st.composite
def histories(draw):
    owners = draw(st.sampled_from([{}, {1: "o", 2: "o", 3: "o", 4: "o"}, {1: "o", 2: "o", 3: "p", 4: "p"}]))
    methods = {a: draw(st.sampled_from(list(LotMethod))) for a in ACCOUNTS}
    windows = []
    prices = {s: draw(st.integers(1_000, 50_000)) for s in SYMBOLS}     # cents a share
    for _ in range(draw(st.integers(1, 25))):
        gap = draw(st.sampled_from([1, 2, 7, 29, 30, 31, 45, 200, 365, 366]))
        for s in SYMBOLS:
            prices[s] = max(100, prices[s] + draw(st.integers(-3_000, 3_000)))
        acts = [(a, s, draw(st.sampled_from(["none", "buy", "sell", "sell", "all"])),
                 draw(st.integers(1, 5_000_000)), draw(st.integers(1, 100)))
                for a in ACCOUNTS for s in SYMBOLS]
        windows.append((gap, dict(prices), acts))
    return owners, methods, windows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_whole_histories_keep_the_books(history):
    owners, methods, windows = history
    b = Books(owners={a: owners.get(a, f"self{a}") for a in ACCOUNTS}, methods=methods)
    held = {(a, s): Decimal(0) for a in ACCOUNTS for s in SYMBOLS}
    day = D(2025, 1, 2)
    for gap, prices, acts in windows:
        day += timedelta(days=gap)
        trades = []
        for a, s, kind, size, pct in acts:
            if kind == "buy":
                shares = Decimal(size).scaleb(-6)                            # up to 5 shares, 6 places
                trades.append(Trade(a, s, shares, int(shares * prices[s] / 1) or 1))
            elif kind in ("sell", "all") and held[(a, s)] > 0:
                shares = held[(a, s)] if kind == "all" else \
                    (held[(a, s)] * pct / 100).quantize(Decimal("1e-9"), rounding=decimal.ROUND_DOWN)
                if shares > 0:
                    trades.append(Trade(a, s, -shares, -int(shares * prices[s])))
        before = {k: sorted(b.open_lots(*k), key=lambda x: x.id) for k in held}
        booking = b.window(day, trades)
        for t in trades:
            held[(t.account_id, t.symbol)] += t.shares

        # open lots' shares = holdings, per account and symbol
        for (a, s), shares in held.items():
            assert sum((x.shares for x in b.open_lots(a, s)), Decimal(0)) == shares
        # basis of open lots + basis consumed = basis of buys + wash adjustments, to the cent
        rows = list(b.realized.values())
        assert sum(x.basis for x in b.open_lots()) + sum(r.basis for r in rows) == \
            b.bought_cents + sum(r.wash_sale_disallowed for r in rows)
        for r in rows:
            assert r.gain == r.proceeds - r.basis + r.wash_sale_disallowed
            assert r.term == ("long" if naive_long(r.acquired, r.sold) else "short")
            assert 0 <= r.wash_sale_disallowed <= max(0, r.basis - r.proceeds) and 0 <= r.washed <= r.shares
        # each sale consumed its lots in the method's order, whole lots but the last
        for t in (t for t in trades if t.shares < 0):
            mine = [r for r in booking.new_realized if (r.account_id, r.symbol) == (t.account_id, t.symbol)]
            order = naive_order(before[(t.account_id, t.symbol)], methods[t.account_id], -t.cents, -t.shares, day)
            assert [r.lot_id for r in mine] == order[:len(mine)]
            lots = {x.id: x for x in before[(t.account_id, t.symbol)]}
            assert all(r.shares == lots[r.lot_id].shares for r in mine[:-1])
            assert sum(r.shares for r in mine) == -t.shares
            assert sum(r.proceeds for r in mine) == -t.cents
