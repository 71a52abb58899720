"""`pies lots`, `pies gains` (JSON and Form 8949 CSV), the books in `pies performance`, and
`avoid wash-sales` end to end, over a ledger the CLI made: VTI bought, sold at a loss when
the bonds fall further, bought again within 30 days (a wash sale for alice); carol's rules
avoid wash sales, so her deposit does not buy VTI back and its cash goes to the bonds."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from cli_helpers import cli_env
from engine.shell.cli import main

POLICY = '''pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }
rules "careful" { avoid wash-sales }
'''
DAYS = [("2026-11-23", {"VTI": "250", "BND": "72.5", "TIP": "110"},
         [("deposit", "alice", "1000"), ("deposit", "carol", "1000")]),
        ("2026-11-24", {"VTI": "240", "BND": "60", "TIP": "90"},
         [("withdraw", "alice", "30"), ("withdraw", "carol", "30")]),
        ("2026-11-25", {"VTI": "245", "BND": "61", "TIP": "91"},
         [("deposit", "alice", "2000"), ("deposit", "carol", "2000")])]


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("books")
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    base = cli_env(tmp_path, db_url, POLICY, "50000.00")

    def cli(*args: str, day: str = "2026-11-25", code: int = 0):
        r = CliRunner().invoke(main, list(args), env={**base, "PIES_NOW": f"{day}T15:00:00+00:00"})
        assert r.exit_code == code, r.output
        return r
    cli("account", "add", "alice", "--pie", "Core")
    cli("account", "add", "carol", "--pie", "Core", "--rules", "careful")
    for day, prices, events in DAYS:
        (tmp_path / "prices.csv").write_text("".join(f"{s},{p}\n" for s, p in prices.items()))
        for kind, who, amount in events:
            cli(kind, who, amount, day=day)
        cli("window", "run", "--date", day, day=day)
    return cli, db_url


def J(cli, *args):
    return json.loads(cli(*args, "--json").output)


def test_lots_are_the_holdings_with_their_basis(books):
    cli, _ = books
    doc = J(cli, "lots", "alice")
    assert set(doc) == {"account", "lots"} and doc["account"] == "alice"
    assert all(set(x) == {"id", "symbol", "acquired", "shares", "basis", "wash_adjustment"} for x in doc["lots"])
    assert all(len(x["shares"].split(".")[1]) == 9 and len(x["basis"].split(".")[1]) == 2 for x in doc["lots"])
    held: dict[str, Decimal] = {}
    for s in J(cli, "account", "show", "alice")["slices"]:
        if s["shares"]:
            sym = s["path"].rsplit("/", 1)[-1]
            held[sym] = held.get(sym, Decimal(0)) + Decimal(s["shares"])
    lots: dict[str, Decimal] = {}
    for x in doc["lots"]:
        lots[x["symbol"]] = lots.get(x["symbol"], Decimal(0)) + Decimal(x["shares"])
    assert lots == held
    washed = [x for x in doc["lots"] if x["wash_adjustment"] != "0.00"]
    assert [x["symbol"] for x in washed] == ["VTI"]          # the replacement bought on the 25th
    assert washed[0]["acquired"] == "2026-11-23"             # its holding period starts at the sold lot's


def test_gains_rows_totals_and_the_wash_sale(books):
    cli, _ = books
    doc = J(cli, "gains", "alice")
    assert set(doc["totals"]) == {"short", "long"} and doc["rows"]
    for r in doc["rows"]:
        assert set(r) == {"symbol", "acquired", "sold", "shares", "proceeds", "basis", "wash_sale_disallowed",
                          "gain", "term"}
        assert Decimal(r["gain"]) == Decimal(r["proceeds"]) - Decimal(r["basis"]) + Decimal(r["wash_sale_disallowed"])
        assert r["term"] == "short" and r["sold"] == "2026-11-24"
    vti = [r for r in doc["rows"] if r["symbol"] == "VTI"]
    assert vti and all(Decimal(r["proceeds"]) < Decimal(r["basis"]) for r in vti)
    assert sum(Decimal(r["wash_sale_disallowed"]) for r in vti) > 0
    assert Decimal(doc["totals"]["short"]) == sum(Decimal(r["gain"]) for r in doc["rows"])
    assert doc["totals"]["long"] == "0.00"
    assert J(cli, "gains", "alice", "--year", "2025")["rows"] == []
    assert J(cli, "gains", "--owner", "alice", "--year", "2026")["rows"] == [{"account": "alice", **r}
                                                                           for r in doc["rows"]]


def test_gains_as_form_8949_csv(books):
    cli, _ = books
    doc = J(cli, "gains", "alice")
    rows = list(csv.reader(io.StringIO(cli("gains", "alice", "--csv").output)))
    assert rows[0] == ["description", "date acquired", "date sold", "proceeds", "cost basis", "code", "adjustment",
                       "gain or loss", "term"]
    assert len(rows) == len(doc["rows"]) + 1
    for r, j in zip(rows[1:], doc["rows"]):
        assert r[0] == f"{j['shares']} sh {j['symbol']}" and r[2] == "11/24/2026"
        assert r[3:5] == [j["proceeds"], j["basis"]] and r[7:] == [j["gain"], "short"]
        assert (r[5], r[6]) == (("W", j["wash_sale_disallowed"]) if j["wash_sale_disallowed"] != "0.00" else ("", ""))
    assert any(r[5] == "W" for r in rows[1:])


def test_an_owners_gains_span_its_accounts(books):
    cli, db_url = books
    e = create_engine(db_url)
    with e.begin() as c:
        c.execute(text("update accounts set owner = 'fam' where name in ('alice', 'carol')"))
    try:
        doc = J(cli, "gains", "--owner", "fam")
        assert {r["account"] for r in doc["rows"]} == {"alice", "carol"}
        assert Decimal(doc["totals"]["short"]) == Decimal(J(cli, "gains", "alice")["totals"]["short"]) + \
            Decimal(J(cli, "gains", "carol")["totals"]["short"])
    finally:
        with e.begin() as c:
            c.execute(text("update accounts set owner = null"))
        e.dispose()


def test_the_mistakes_are_one_line(books):
    cli, _ = books
    assert "no account named 'zed'" in cli("lots", "zed", code=2).output
    assert "no account named 'zed'" in cli("gains", "zed", code=2).output
    assert "no account is owned by 'nobody'" in cli("gains", "--owner", "nobody", code=2).output
    assert "name an ACCOUNT or give --owner ID" in cli("gains", code=2).output
    assert "name an ACCOUNT or give --owner ID" in cli("gains", "alice", "--owner", "x", code=2).output
    assert "Traceback" not in cli("gains", "alice", "--year", "20x6", code=2).output


def test_performance_counts_the_realized_and_unrealized_gain(books):
    cli, _ = books
    p = J(cli, "performance", "alice")
    g = J(cli, "gains", "alice")
    assert p["realized"]["short"] == g["totals"]["short"] and p["realized"]["long"] == "0.00"
    basis = sum(Decimal(x["basis"]) for x in J(cli, "lots", "alice")["lots"])
    assert Decimal(p["unrealized"]["basis"]) == basis
    assert Decimal(p["unrealized"]["gain"]) == Decimal(p["end_value"]) - Decimal(p["cash"]) - basis
    before = J(cli, "performance", "alice", "--to", "2026-11-23")
    assert before["realized"]["short"] == "0.00"


def test_avoid_wash_sales_held_the_buy_back_and_sent_its_cash_elsewhere(books):
    cli, _ = books
    window = J(cli, "window", "show", "--date", "2026-11-25")["report"]
    lines = {a["account"]: a for a in window["accounts"]}
    bought = {a: {t["slice"] for t in lines[a]["trades"] if not t["amount"].startswith("-")} for a in lines}
    assert "VTI" in bought["alice"] and "VTI" not in bought["carol"]
    assert bought["carol"] == {"Bonds/BND", "Bonds/TIP"}
    assert "held_back" not in lines["alice"]
    assert lines["carol"]["held_back"].startswith("buy of $") and "VTI held back: sold at a loss on 2026-11-24" \
        in lines["carol"]["held_back"]
    # carol's history is alice's: the held-back buy is exactly what alice bought of VTI, and
    # all of carol's 2,000.00 went to the bonds instead (no cash left over).
    alice_vti = next(t["amount"] for t in lines["alice"]["trades"] if t["slice"] == "VTI")
    assert lines["carol"]["held_back"] == f"buy of ${alice_vti} VTI held back: sold at a loss on 2026-11-24 " \
                                          f"(avoid wash-sales)"
    assert sum(Decimal(t["amount"]) for t in lines["carol"]["trades"]) == Decimal("2000.00")
    assert lines["carol"]["cash"] == "0.00"
    assert all(r["wash_sale_disallowed"] == "0.00" for r in J(cli, "gains", "carol")["rows"])


def test_account_show_has_the_basis_and_unrealized_gain_per_symbol(books):
    cli, _ = books
    doc = J(cli, "account", "show", "alice")
    lots = J(cli, "lots", "alice")["lots"]
    values: dict[str, Decimal] = {}
    for s in doc["slices"]:
        if s["shares"]:
            sym = s["path"].rsplit("/", 1)[-1]
            values[sym] = values.get(sym, Decimal(0)) + Decimal(s["value"])
    assert [r["symbol"] for r in doc["basis"]] == ["BND", "TIP", "VTI"]
    for r in doc["basis"]:
        basis = sum(Decimal(x["basis"]) for x in lots if x["symbol"] == r["symbol"])
        assert (Decimal(r["value"]), Decimal(r["basis"])) == (values[r["symbol"]], basis)
        assert Decimal(r["unrealized"]) == values[r["symbol"]] - basis
        assert (r["long_term"], r["short_term"]) == ("0.00", r["unrealized"])       # bought days ago
        assert r["long_term_share"] in ("0.00%", None)
    assert Decimal(doc["unrealized"]["unrealized"]) == sum(Decimal(r["unrealized"]) for r in doc["basis"])
    text = cli("account", "show", "alice").output
    assert "cost basis" in text and doc["unrealized"]["unrealized"] in text


def test_policy_plan_previews_the_gain_of_its_liquidations(books, tmp_path_factory):
    cli, db_url = books
    from pathlib import Path
    from sqlalchemy import create_engine, text as sql
    e = create_engine(db_url)
    with e.connect() as c:
        [file] = c.execute(sql("select distinct file from policy_versions")).scalars().all()
    e.dispose()
    path = Path(file)
    before = path.read_text()
    path.write_text(before.replace("BND 70% TIP 30%", "BND 100%"))      # TIP liquidated
    try:
        r = cli("policy", "plan", str(path), "--json", code=1)
        [plan] = json.loads(r.output)["plans"]
        text = cli("policy", "plan", str(path), code=1).output
    finally:
        path.write_text(before)
    tax = plan["tax"]
    by_account = {a["account"]: a for a in tax["accounts"]}
    for who in ("alice", "carol"):
        [liq] = [x for a in plan["accounts"] if a["account"] == who for x in a["liquidations"]]
        basis = sum(Decimal(x["basis"]) for x in J(cli, "lots", who)["lots"] if x["symbol"] == "TIP")
        assert Decimal(by_account[who]["short"]) == Decimal(liq["amount"]) - basis     # every TIP lot goes
        assert by_account[who]["long"] == "0.00"
    assert Decimal(tax["short"]) == sum(Decimal(a["short"]) for a in tax["accounts"])
    assert "estimated realized gain of these sells" in text


def test_plan_previews_the_gain_the_window_then_realizes(books):
    cli, _ = books
    day = "2026-11-27"
    cli("withdraw", "alice", "700", day=day)
    doc = J(cli, "plan", "alice")
    [a] = doc["accounts"]
    assert any(t["side"] == "sell" for t in a["trades"]) and a["tax"] == doc["tax"]
    assert "estimated realized gain" in cli("plan", "alice", day=day).output
    cli("window", "run", "--date", day, day=day)
    rows = [r for r in J(cli, "gains", "alice")["rows"] if r["sold"] == day]
    # The preview does not estimate wash sales (these losses were all washed: alice bought
    # every symbol on the 25th): it is the gain before them, lot for lot.
    before_wash = sum(Decimal(r["proceeds"]) - Decimal(r["basis"]) for r in rows if r["term"] == "short")
    assert rows and Decimal(a["tax"]["short"]) == before_wash and a["tax"]["long"] == "0.00"
    assert before_wash < 0 and sum(Decimal(r["gain"]) for r in rows) == 0
