"""The books through real windows: after every window of random histories (deposits,
withdrawals, rebalances, liquidations, crosses, prices both ways, one and several accounts
of one owner) the open lots equal the holdings and the basis adds up; a wash sale across
two accounts of one owner, decided in the window."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from adapters.ledger.books_repo import BooksRepository
from adapters.ledger.schema import Account, LotRow

from books.window_world import LESS, POLICY, World, book_problems

SYMBOLS = ("VTI", "VXUS", "BND", "TIP", "AAPL", "MSFT", "NVDA")

action = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 5), st.integers(1, 5000)),
    st.tuples(st.just("withdraw"), st.integers(0, 5), st.integers(1, 3000)),
    st.tuples(st.just("rebalance"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("policy"), st.just(0), st.integers(0, 1)),
)
window = st.tuples(st.sampled_from([1, 3, 15, 29, 31, 200, 370]),
                   st.dictionaries(st.sampled_from(SYMBOLS), st.integers(-25, 25), max_size=4),
                   st.lists(action, max_size=6))


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(owners=st.sampled_from(["self", "one", "two"]), windows=st.lists(window, min_size=2, max_size=6))
def test_every_window_keeps_the_books(tmp_path_factory, owners, windows):
    w = World(tmp_path_factory.mktemp("h"), f"sqlite:///{tmp_path_factory.mktemp('db') / 'l.db'}")
    try:
        for i, name in enumerate(w.names):
            if owners != "self":
                w.led.set_owner(name, "ann" if owners == "one" or i < 3 else "bob")
            w.deposit(name, f"{1000 + 97 * i}")
        w.window()
        assert book_problems(w.led) == []
        for gap, moves, acts in windows:
            w.move_prices(moves)
            for kind, k, amount in acts:
                name = w.names[k]
                if kind == "deposit":
                    w.deposit(name, str(amount))
                elif kind == "withdraw":
                    w.withdraw(name, str(amount))
                elif kind == "rebalance":
                    w.rebalance(name)
                else:
                    w.change_policy(LESS if amount else POLICY)
            w.window(gap)
            assert book_problems(w.led) == []
    finally:
        w.close()


def test_a_wash_sale_across_two_accounts_of_one_owner_in_a_window(tmp_path):
    w = World(tmp_path / "w", f"sqlite:///{tmp_path / 'l.db'}", accounts=4)
    w.led.set_owner("a0", "ann")            # a0 and a2 both follow Tech (VTI among it)
    w.led.set_owner("a2", "ann")
    w.deposit("a0", "4000")
    w.window()
    w.move_prices({"VTI": -20, "AAPL": -20, "MSFT": -20, "NVDA": -20})
    w.withdraw("a0", "3000")                 # sells at a loss
    w.deposit("a2", "3000")                  # buys the same symbols the same day: crossed, replacements
    w.window(10)
    assert book_problems(w.led) == []
    repo = BooksRepository(w.led)
    with w.led.read() as s:
        ids = {a.name: a.id for a in s.scalars(select(Account))}
    rows = repo.realized([ids["a0"]])
    assert rows and all(r.gain == r.proceeds - r.basis + r.wash_sale_disallowed for r in rows)
    assert all(r.wash_sale_disallowed == r.basis - r.proceeds > 0 for r in rows)    # wholly replaced
    replaced = [x for x in repo.lots([ids["a2"]]) if x.wash_adjustment]
    assert sum(x.wash_adjustment for x in replaced) == sum(r.wash_sale_disallowed for r in rows)
    assert {x.acquired for x in replaced} == {r.acquired for r in rows}
    w.close()


def test_the_rule_sets_lot_method_reaches_the_window(tmp_path):
    """Two lots of each symbol, both at a gain when sold: `lots fifo` sells the older, m1's
    tax-min the one with the smaller gain (the newer, bought higher)."""
    from engine.shell import policies
    w = World(tmp_path / "w", f"sqlite:///{tmp_path / 'l.db'}", accounts=0)
    w.change_policy(POLICY + 'rules "f" {\n    lots fifo\n}\n')
    policies.add_account(w.led, "fifo", "Tech", w.policy, rules="f")
    policies.add_account(w.led, "taxmin", "Tech", w.policy)
    for name in ("fifo", "taxmin"):
        w.deposit(name, "2000")
    w.window()
    first = w.day
    w.move_prices({s: 10 for s in SYMBOLS})
    for name in ("fifo", "taxmin"):
        w.deposit(name, "2000")
    w.window()
    second = w.day
    w.move_prices({s: 10 for s in SYMBOLS})
    for name in ("fifo", "taxmin"):
        w.withdraw(name, "40")
    w.window()
    assert book_problems(w.led) == []
    repo = BooksRepository(w.led)
    with w.led.read() as s:
        ids = {a.name: a.id for a in s.scalars(select(Account))}
        bought = {x.id: x.bought for x in s.scalars(select(LotRow))}
    fifo, taxmin = repo.realized([ids["fifo"]]), repo.realized([ids["taxmin"]])
    assert fifo and taxmin
    assert {bought[r.lot_id] for r in fifo} == {first}
    assert {bought[r.lot_id] for r in taxmin} == {second}
    w.close()


def test_the_checks_find_a_reference_no_foreign_key_guards(db_url, tmp_path):
    """The books' tables have no foreign keys (migration 0013): book_problems, which every
    window test runs, checks their references instead, and finds a broken one."""
    from sqlalchemy import update

    from adapters.ledger.schema import RealizedRow
    w = World(tmp_path / "w", db_url, accounts=2)
    for name in w.names:
        w.deposit(name, "3000")
    w.window()
    w.withdraw("a0", "500")
    w.window(5)
    assert book_problems(w.led) == []
    with w.led.tx() as s:
        row = s.scalars(select(RealizedRow).order_by(RealizedRow.id)).first()
        lot = s.get(LotRow, row.lot_id)
        other = s.scalars(select(LotRow).where(LotRow.account_id != lot.account_id)).first()
        s.execute(update(RealizedRow).where(RealizedRow.id == row.id).values(lot_id=other.id))
        s.execute(update(LotRow).where(LotRow.id == lot.id).values(window_id=10_000))
    assert book_problems(w.led) == [f"lot {lot.id}: no window 10000",
                                    f"realized {row.id}: no lot {other.id} of account {row.account_id} in {row.symbol}"]
    w.close()
