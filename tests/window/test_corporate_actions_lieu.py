"""Cash in lieu through the real window on the simulated broker: BND 1-for-10 with the
fraction of a share the broker does not issue paid at $725.00. The broker keeps whole
shares and the cash; every account's BND shrinks pro rata by the cashed-out part, its cash
grows by its part rounded down to the cent, the house takes the residue, and the ledger
agrees with the broker in shares and cash (World.run checks conservation)."""

from __future__ import annotations

import json
from decimal import Decimal

from adapters.ledger.books_repo import BooksRepository
from engine.shell import policies

from .test_corporate_actions import ACTIONS, DAYS, NAMES, World, shares


def test_a_reverse_split_paying_cash_in_lieu_through_the_window(db_url, tmp_path):
    w = World(tmp_path, db_url)
    rs = {**ACTIONS["corporate_actions"]["reverse_splits"][0], "cash_in_lieu": "725.00"}
    w.actions.write_text(json.dumps({"corporate_actions": {"reverse_splits": [rs]}}))
    for i, n in enumerate(NAMES):
        policies.add_account(w.led, n, "Growth", w.policy)
        w.led.deposit(n, f"{2000 + 311 * i}.{i:02d}", key=f"first-{n}")
    w.run(DAYS[0])
    before = {n: shares(w.led, n)["BND"][1] for n in NAMES}
    r = w.run(DAYS[1])
    assert [x["id"] for x in r["corporate_actions"]] == ["rs-bnd"]
    assert r["corporate_actions"][0]["lieu_price"] == "725.00"
    state = json.loads((tmp_path / "broker.json").read_text())
    assert Decimal(state["positions"]["BND"]) == int(Decimal(state["positions"]["BND"]))      # whole shares
    ids = {a.name: a.id for a in w.led.accounts() if a.name in NAMES}
    books = BooksRepository(w.led)
    paid_total = Decimal(0)
    for n in NAMES:
        after = shares(w.led, n)["BND"][1]
        exact = before[n] / 10
        assert after < exact                                  # gave up its part of the fraction
        rows = [x for x in books.realized([ids[n]]) if x.symbol == "BND" and x.sold == DAYS[1]]
        paid = sum(x.proceeds for x in rows)
        # Its cashed-out shares at $725, rounded down to the cent.
        assert abs(paid - (exact - after) * 72500) <= 1, n
        paid_total += paid
    assert paid_total > 0
