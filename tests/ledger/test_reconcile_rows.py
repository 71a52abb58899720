"""Reconciliation's rows on both databases: the ledger's side summed exactly per symbol
for the accounts and the house apart, pies's own orders told from others, acceptances
kept exactly and newest first; and migration 0011 on a ledger of 0008."""

from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy import create_engine, inspect, select

from adapters.ledger import migrate
from adapters.ledger.reconcile_repo import Reconciliations
from adapters.ledger.schema import Account, Event, Holding, Order, Window
from adapters.ledger.store import Ledger
from engine.shell import policies

POLICY = 'pie "Core" { VTI 60% BND 40% }\n'


def test_the_ledger_side_sums_accounts_and_house_apart_exactly(db_url, tmp_path):
    led = Ledger(db_url)
    led.ensure_house("main", D("10000.00"), {"VTI": D("0.000000007")})
    led.ensure_house("other", D("5.00"), {"VTI": D("99")})
    (tmp_path / "core.pie").write_text(POLICY)
    for name in ("a", "b"):
        policies.add_account(led, name, "Core", tmp_path / "core.pie")
    with led.tx() as s:
        ids = {a.name: a.id for a in s.scalars(select(Account))}
        s.add_all([Holding(account_id=ids["a"], path="Core/VTI", symbol="VTI", shares=D("1.123456789")),
                   Holding(account_id=ids["b"], path="Core/VTI", symbol="VTI", shares=D("2.000000001")),
                   Holding(account_id=ids["b"], path="Core/BND", symbol="BND", shares=D("0.5"))])
        s.get(Account, ids["a"]).cash = D("12.34")
        s.add(Event(account_id=ids["b"], key="hand-div", kind="dividend", amount=D("1.01"), status="pending"))
        w = Window(broker="main", trading_date=__import__("datetime").date(2026, 11, 24), name="open", step="planned")
        s.add(w)
        s.flush()
        s.add(Order(window_id=w.id, client_order_id="pies-1", symbol="VTI", side="buy", status="filled"))
    rows = Reconciliations(led)
    side = rows.side("main")
    assert side.accounts == {"VTI": D("3.123456790"), "BND": D("0.5")}
    assert side.house == {"VTI": D("0.000000007")}
    assert (side.accounts_cents, side.house_cents, side.pending_dividend_cents) == (1234, 1_000_000, 101)
    assert rows.order_windows(["pies-1", "someone-else"]) == {"pies-1": "planned"}
    ids_ = rows.accept("main", [("VTI", D("0.5")), ("$cash", D("-1.01"))], "checked", "ops")
    rows.accept("other", [("VTI", D("1"))], "elsewhere", "ops")
    got = rows.accepted("main")
    assert [(a.id, a.symbol, a.difference) for a in got] == [(ids_[1], "$cash", D("-1.01")), (ids_[0], "VTI", D("0.5"))]
    assert rows.log("main")[0]["by"] == "ops" and rows.log("main")[0]["reason"] == "checked"
    led.dispose()


def test_one_broker_account_is_summed_without_the_join_and_the_same(db_url, tmp_path):
    """With one broker account the ledger's side is every holding's sum less the house's
    (no join per holding): the same figures, a symbol only the house holds, and none
    that sums to zero."""
    led = Ledger(db_url)
    led.ensure_house("main", D("1.00"), {"VTI": D("0.5"), "TIP": D("3.000000001")})
    (tmp_path / "core.pie").write_text(POLICY)
    policies.add_account(led, "a", "Core", tmp_path / "core.pie")
    with led.tx() as s:
        aid = s.scalar(select(Account.id).where(Account.name == "a"))
        s.add_all([Holding(account_id=aid, path="Core/VTI", symbol="VTI", shares=D("1.123456789")),
                   Holding(account_id=aid, path="Core/BND", symbol="BND", shares=D("0"))])
    side = Reconciliations(led).side("main")
    assert side.accounts == {"VTI": D("1.123456789")}
    assert side.house == {"VTI": D("0.5"), "TIP": D("3.000000001")}
    assert side.owned() == {"VTI": D("1.623456789"), "TIP": D("3.000000001")}
    led.dispose()


def test_0011_adds_the_acceptances_to_a_ledger_of_0008(db_url):
    from alembic import command
    eng = create_engine(db_url)
    cfg = migrate._config(eng)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
    assert "reconciliation_accepts" not in inspect(eng).get_table_names()
    assert migrate.upgrade(eng) == ("0008", migrate.HEAD)
    assert "reconciliation_accepts" in inspect(eng).get_table_names()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
    assert "reconciliation_accepts" not in inspect(eng).get_table_names()
    eng.dispose()
