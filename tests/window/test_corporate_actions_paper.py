"""A broker that does not apply corporate actions itself (Alpaca paper, Alpaca-API #181),
through the real window: the simulated broker configured `applies_corporate_actions =
False` keeps its positions through a 2-for-1 split and a 1-for-10 reverse split while the
quoted prices split. The ledger applies them alone and keeps the standing adjustment; the
ledger agrees with the adjusted broker view at every window, nothing is held, and a
deposit after the split buys what it would have bought without it."""

from __future__ import annotations

import json
from datetime import datetime, time
from decimal import Decimal

import pytest

from adapters.broker.simulated import SimulatedBroker, SimulatedConfig
from adapters.ledger.reconcile_repo import broker_adjustment
from adapters.ledger.window_repo import check_invariants
from engine.core.broker_view import seen
from engine.shell import policies
from engine.shell.window import WindowOptions, WindowRunner

from .test_corporate_actions import ACTIONS, DAYS, NAMES, NY, QUOTES, World, expected_deposit, lots_match_holdings, \
    shares

SPLITS = {"corporate_actions": {k: ACTIONS["corporate_actions"][k] for k in ("forward_splits", "reverse_splits")},
          "next_page_token": None}


class PaperWorld(World):
    def __init__(self, root, db_url):
        super().__init__(root, db_url)
        self.actions.write_text(json.dumps(SPLITS))

    def broker(self) -> SimulatedBroker:
        day = self.now.date()
        prices = self.root / f"prices-{day}.csv"
        prices.write_text("".join(f"{s},{p}\n" for s, p in QUOTES[day].items()))
        return SimulatedBroker(SimulatedConfig(state_file=self.root / "broker.json", prices_file=prices,
                                               starting_cash=Decimal("1000000.00"),
                                               corporate_actions_file=self.actions, applies_corporate_actions=False),
                               now=lambda: self.now, sleep=lambda s: None)

    def run(self, day) -> dict:
        self.now = datetime.combine(day, time(9, 35), NY)
        b = self.broker()
        report = WindowRunner(self.led, b, "main", WindowOptions(min_order_cents=100, settle_timeout=1)).run(day)
        assert report["problems"] == [], report["problems"]
        assert report.get("held") is None
        assert report["reconciliation"]["before"]["agrees"], report["reconciliation"]
        assert report["reconciliation"]["after"]["agrees"], report["reconciliation"]
        with self.led.read() as s:
            adj = broker_adjustment(s, "main")
        positions, cents = seen({s: p.qty for s, p in b.positions().items()}, int(b.balance().cash * 100), adj)
        assert check_invariants(self.led, "main", positions, Decimal(cents).scaleb(-2)) == []
        assert lots_match_holdings(self.led) == []
        return report

    def reported(self) -> dict[str, Decimal]:
        return {s: Decimal(q) for s, q in json.loads((self.root / "broker.json").read_text())["positions"].items()}


@pytest.fixture
def paper(db_url, tmp_path):
    w = PaperWorld(tmp_path, db_url)
    for i, n in enumerate(NAMES):
        policies.add_account(w.led, n, "Growth", w.policy)
        w.led.deposit(n, f"{2000 + 311 * i}.{i:02d}", key=f"first-{n}")
    w.run(DAYS[0])
    yield w
    w.led.dispose()


def test_a_split_at_a_broker_that_does_not_apply_it_keeps_the_ledger_and_the_adjusted_broker_agreeing(paper):
    led = paper.led
    before = {n: shares(led, n) for n in NAMES}
    broker_before = paper.reported()
    without_split = expected_deposit(led, "ca0", 50_000, paper.prices(DAYS[0]), DAYS[1])
    led.deposit("ca0", "500.00", key="after-split")

    r = paper.run(DAYS[1])
    assert [x["id"] for x in r["corporate_actions"]] == ["fs-vti", "rs-bnd"]
    # The ledger applied both; the broker applied neither, and the adjustment is what it lacks.
    adjustment = {x["id"]: x["broker_adjustment"] for x in r["corporate_actions"]}
    assert adjustment["fs-vti"] == {"shares": {"VTI": str(broker_before["VTI"])}, "cents": 0}
    bnd_after = (broker_before["BND"] / 10).quantize(Decimal("0.000000001"), rounding="ROUND_DOWN")
    assert Decimal(adjustment["rs-bnd"]["shares"]["BND"]) == bnd_after - broker_before["BND"]
    for n in NAMES:
        if n != "ca0":
            assert shares(led, n)["VTI"][1] == before[n]["VTI"][1] * 2
    # The broker's positions are as they were but for ca0's buys (at the split prices).
    now = paper.reported()
    for sym in ("VTI", "BND"):
        filled = sum((Decimal(o["filled_qty"]) for o in r["orders"] if o["symbol"] == sym), Decimal(0))
        assert filled and now[sym] == broker_before[sym] + filled
    ca0 = next(a for a in r["accounts"] if a["account"] == "ca0")
    bought = {t["slice"]: int(Decimal(t["amount"]) * 100) for t in ca0["trades"]}
    assert bought == {p: c for p, c in without_split.items() if c}

    # Later windows: a withdrawal sells at the split prices, a deposit buys; still no hold,
    # and the actions are not applied again.
    led.withdraw("ca1", "1500.00", paper.prices(DAYS[2]), key="later-withdrawal")
    led.deposit("ca2", "700.00", key="later-deposit")
    r = paper.run(DAYS[2])
    assert r["corporate_actions"] == []
    assert ("VTI", "sell") in {(o["symbol"], o["side"]) for o in r["orders"]}   # netted against ca2's buys
    r = paper.run(DAYS[3])
    assert r["corporate_actions"] == [] and r["reconciliation"]["before"]["agrees"]

    # `pies reconcile`'s comparison (the service's, through engine/shell/reconcile.compare)
    # agrees too, and shows the standing adjustment on the VTI and BND lines.
    from adapters.ledger.reconcile_repo import Reconciliations
    from engine.shell.reconcile import compare
    rows = Reconciliations(led)
    rec = compare(paper.broker(), rows.side("main"), since=datetime.combine(DAYS[3], time(0), NY), start=DAYS[3],
                  end=DAYS[3], order_windows=rows.order_windows, uncollected=rows.uncollected)
    assert not rec.breaks
    lines = {x.symbol: x for x in rec.lines}
    assert lines["VTI"].adjusted == broker_before["VTI"] and lines["BND"].adjusted == bnd_after - broker_before["BND"]
    assert lines["VTI"].broker == paper.reported()["VTI"] + broker_before["VTI"]
