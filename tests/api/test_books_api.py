"""The books through the API and the console: performance, lots, gains; a token is
needed, the role checked, an unknown account is 404, a bad date 422 naming the field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from api_helpers import auth
from test_console import sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_performance_over_the_api(world):
    c, t = world["client"], world["tokens"]
    r = c.get("/api/v1/accounts/alice/performance", headers=auth(t["viewer"]))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["windows"], doc["from"], doc["deposits"], doc["start_value"]) == (1, "2026-11-24", "1000.00", "0.00")
    end = Decimal(doc["end_value"])
    assert doc["twr"] == pytest.approx(float(end / 1000 - 1), abs=1e-8)
    assert doc == c.get("/api/v1/accounts/alice/performance?from=2026-11-01&to=2026-11-30",
                        headers=auth(t["viewer"])).json()
    empty = c.get("/api/v1/accounts/alice/performance?from=2026-11-25", headers=auth(t["viewer"])).json()
    assert (empty["windows"], empty["twr"], empty["start_value"]) == (0, None, doc["end_value"])


def test_performance_refusals(world):
    c, t = world["client"], world["tokens"]
    assert c.get("/api/v1/accounts/alice/performance").status_code == 401
    assert c.get("/api/v1/accounts/alice/performance", headers=auth(world["revoked"])).status_code == 401
    missing = c.get("/api/v1/accounts/zed/performance", headers=auth(t["viewer"]))
    assert missing.status_code == 404 and "no account named 'zed'" in missing.json()["detail"]
    bad = c.get("/api/v1/accounts/alice/performance?from=2026-13-01", headers=auth(t["viewer"]))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "from"
    reversed_ = c.get("/api/v1/accounts/alice/performance?from=2026-11-25&to=2026-11-24", headers=auth(t["viewer"]))
    assert reversed_.status_code == 422 and "after --to" in reversed_.json()["detail"]


def test_performance_page(world):
    c = world["client"]
    assert c.get("/console/accounts/alice/performance", follow_redirects=False).status_code == 303
    sign_in(c, world["tokens"]["viewer"])
    assert 'href="/console/accounts/alice/performance"' in c.get("/console/accounts/alice").text
    page = c.get("/console/accounts/alice/performance")
    assert page.status_code == 200 and 'id="twr"' in page.text and "$1,000.00" in page.text
    assert c.get("/console/accounts/zed/performance").status_code == 404
    bad = c.get("/console/accounts/alice/performance?from=nope")
    assert bad.status_code == 422 and "from &#39;nope&#39; is not a date" in bad.text


def test_lots_over_the_api_match_the_cli(world):
    c, t = world["client"], world["tokens"]
    r = c.get("/api/v1/accounts/alice/lots", headers=auth(t["viewer"]))
    assert r.status_code == 200
    doc = r.json()
    import json
    assert doc == json.loads(world["cli"]("lots", "alice", "--json").output)
    assert {x["symbol"] for x in doc["lots"]} == {"VTI", "BND", "TIP"}
    assert sum(Decimal(x["basis"]) for x in doc["lots"]) == Decimal("1000.00")    # all of the deposit bought
    assert all(x["acquired"] == "2026-11-24" and x["wash_adjustment"] == "0.00" for x in doc["lots"])


def test_gains_over_the_api_json_and_csv(world):
    c, t = world["client"], world["tokens"]
    doc = c.get("/api/v1/accounts/alice/gains?year=2026", headers=auth(t["viewer"])).json()
    assert doc == {"account": "alice", "year": 2026, "rows": [], "totals": {"short": "0.00", "long": "0.00"}}
    r = c.get("/api/v1/accounts/alice/gains?format=csv", headers=auth(t["viewer"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="gains-alice.csv"' in r.headers["content-disposition"]
    assert r.text == "description,date acquired,date sold,proceeds,cost basis,code,adjustment,gain or loss,term\n"
    owner = c.get("/api/v1/owners/alice/gains", headers=auth(t["viewer"]))
    assert owner.status_code == 200 and owner.json()["owner"] == "alice"


def test_lots_and_gains_refusals(world):
    c, t = world["client"], world["tokens"]
    for url in ("/api/v1/accounts/alice/lots", "/api/v1/accounts/alice/gains", "/api/v1/owners/alice/gains"):
        assert c.get(url).status_code == 401                 # (a few failures: the limiter counts them)
    assert c.get("/api/v1/accounts/alice/gains", headers=auth(world["revoked"])).status_code == 401
    assert c.get("/api/v1/accounts/zed/lots", headers=auth(t["viewer"])).status_code == 404
    assert c.get("/api/v1/accounts/zed/gains", headers=auth(t["viewer"])).status_code == 404
    nobody = c.get("/api/v1/owners/nobody/gains", headers=auth(t["viewer"]))
    assert nobody.status_code == 404 and "no account is owned by 'nobody'" in nobody.json()["detail"]
    bad = c.get("/api/v1/accounts/alice/gains?year=20x6", headers=auth(t["viewer"]))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "year"
    assert c.get("/api/v1/accounts/alice/gains?format=pdf", headers=auth(t["viewer"])).status_code == 422


def test_lots_and_gains_pages_and_the_csv_download(world):
    c, t = world["client"], world["tokens"]
    for url in ("/console/accounts/alice/lots", "/console/accounts/alice/gains", "/console/owners/alice/gains"):
        assert c.get(url, follow_redirects=False).status_code == 303
    sign_in(c, t["viewer"])
    page = c.get("/console/accounts/alice/lots").text
    assert 'id="lots"' in page and page.count("2026-11-24") == 3
    gains = c.get("/console/accounts/alice/gains?year=2026").text
    assert 'id="short">$0.00<' in gains and 'href="/console/accounts/alice/gains?format=csv&amp;year=2026"' in gains
    download = c.get("/console/accounts/alice/gains?format=csv&year=2026")
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="gains-alice-2026.csv"' in download.headers["content-disposition"]
    assert download.text == c.get("/api/v1/accounts/alice/gains?format=csv&year=2026",
                                  headers=auth(t["viewer"])).text
    assert c.get("/console/owners/alice/gains").status_code == 200
    assert c.get("/console/owners/nobody/gains").status_code == 404
    assert c.get("/console/accounts/alice/gains?year=x").status_code == 422


def test_the_account_page_and_api_show_the_basis(world):
    c, t = world["client"], world["tokens"]
    doc = c.get("/api/v1/accounts/alice", headers=auth(t["viewer"])).json()
    assert [r["symbol"] for r in doc["basis"]] == ["BND", "TIP", "VTI"]
    assert doc["unrealized"]["basis"] == "1000.00"
    assert Decimal(doc["unrealized"]["unrealized"]) == Decimal(doc["value"]) - Decimal("1000.00")
    sign_in(c, t["viewer"])
    page = c.get("/console/accounts/alice").text
    assert 'id="basis"' in page and f'id="unrealized">{doc["unrealized"]["unrealized"]}<' in page


def test_plans_over_the_api_carry_their_tax_preview(world, tmp_path):
    c, t = world["client"], world["tokens"]
    (tmp_path / "core.pie").write_text('pie "Core" { VTI 100% }\n')          # BND and TIP liquidated
    plan = c.post("/api/v1/policies/plan", json={"file": "core.pie"}, headers=auth(t["analyst"])).json()
    [alice] = [a for a in plan["accounts"] if a["account"] == "alice"]
    lots = c.get("/api/v1/accounts/alice/lots", headers=auth(t["viewer"])).json()["lots"]
    basis = sum(Decimal(x["basis"]) for x in lots if x["symbol"] in ("BND", "TIP"))
    [tax] = plan["tax"]["accounts"]
    assert tax["account"] == "alice" and Decimal(tax["short"]) == Decimal(alice["amount"]) - basis
    assert (plan["tax"]["short"], plan["tax"]["long"]) == (tax["short"], "0.00")
    nothing = c.get("/api/v1/plan?account=alice", headers=auth(t["viewer"])).json()
    assert nothing["tax"] == {"short": "0.00", "long": "0.00", "total": "0.00"}
    assert nothing["accounts"][0]["held_back"] == []
