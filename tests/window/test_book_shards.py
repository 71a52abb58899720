"""The books' shards cut as the window's net moves stream in are the shards the whole list
gave: the same accounts, owners and moves under the same numbers, so a run resumed inside
the books step (on either path) skips exactly the shards it recorded."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from engine.shell.window import WindowRunner


def whole_list_cut(moves, shared, size, url="u", name="main", wid=7, day=date(2026, 11, 24)):
    """The cut as the books step made it from the whole list of moves (before streaming)."""
    by_account: dict[int, list[tuple]] = {}
    for row in moves:
        by_account.setdefault(row[0], []).append(row)
    wanted = {who for aid, who in shared.items() if aid in by_account}
    shared = {aid: who for aid, who in shared.items() if who in wanted}
    members: dict[str, list[int]] = {}
    for aid in sorted(shared):
        members.setdefault(shared[aid], []).append(aid)
    units = sorted([[aid] for aid in by_account if aid not in shared] + list(members.values()))
    jobs = []
    for k, i in enumerate(range(0, len(units), size)):
        accounts = [aid for unit in units[i:i + size] for aid in unit]
        jobs.append((url, name, wid, day, k, accounts, {aid: shared[aid] for aid in accounts if aid in shared},
                     [t for aid in accounts for t in by_account.get(aid, ())]))
    return jobs


def streamed_cut(moves, shared, size):
    runner = SimpleNamespace(opt=SimpleNamespace(shard_size=size), repo=SimpleNamespace(ledger=SimpleNamespace(url="u")),
                             name="main")
    owned: dict[int, list[tuple]] = {}
    for row in moves:
        if row[0] in shared:
            owned.setdefault(row[0], []).append(row)
    window = SimpleNamespace(id=7, trading_date=date(2026, 11, 24))
    return list(WindowRunner._book_jobs(runner, window, iter(moves), shared, owned))


@st.composite
def layouts(draw):
    accounts = list(range(2, draw(st.integers(3, 40))))
    owner_of = draw(st.lists(st.sampled_from(["", "ann", "bob", "cy", "dee"]), min_size=len(accounts),
                             max_size=len(accounts)))
    named = [who for who in set(owner_of) if who and owner_of.count(who) > 1]
    shared = {aid: who for aid, who in zip(accounts, owner_of) if who in named}
    symbols = draw(st.lists(st.lists(st.sampled_from(["AAA", "BBB", "CCC"]), unique=True, max_size=3),
                            min_size=len(accounts), max_size=len(accounts)))
    moves = [(aid, sym, "1.5", "150") for aid, syms in zip(accounts, symbols) for sym in sorted(syms)]
    return moves, shared, draw(st.integers(1, 8))


@settings(max_examples=300, deadline=None)
@given(layouts())
def test_the_streamed_cut_is_the_whole_lists_cut(layout):
    moves, shared, size = layout
    assert streamed_cut(moves, shared, size) == whole_list_cut(moves, shared, size)


def test_an_owner_whose_first_account_does_not_trade_comes_at_its_first_account():
    """Owner "ann" holds accounts 3 and 9; only 9 trades. Her unit is placed at 3, before
    the accounts alone 4 and 5, and carries account 9's moves."""
    moves = [(4, "AAA", "1", "100"), (5, "AAA", "-1", "-100"), (9, "BBB", "2", "300")]
    shared = {3: "ann", 9: "ann", 6: "bob", 7: "bob"}          # bob trades nothing: no unit
    jobs = streamed_cut(moves, shared, 2)
    assert [(j[4], j[5], j[6], j[7]) for j in jobs] == [
        (0, [3, 9, 4], {3: "ann", 9: "ann"}, [(9, "BBB", "2", "300"), (4, "AAA", "1", "100")]),
        (1, [5], {}, [(5, "AAA", "-1", "-100")]),
    ]
    assert jobs == whole_list_cut(moves, shared, 2)
