"""POST /api/v1/backtests: analysts only, the CLI's JSON for each backtest, bad input as a
problem naming the line, sizes bounded; the run happens in a worker process."""

from __future__ import annotations

import pytest

from api_helpers import auth

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

POLICY = 'pie "Duo" { AAA 50% BBB 50% }\n'
PRICES = "date,AAA,BBB\n2024-01-02,100,50\n2024-01-03,110,50\n2024-02-01,120,40\n2024-03-01,100,50\n"


def body(**kw):
    return {"policy": POLICY, "pies": ["Duo"], "rules": ["m1", "monthly"], "prices": PRICES,
            "from": "2024-01-01", "to": "2024-12-31", **kw}


def test_an_analyst_backtests_and_others_are_refused(world):
    client, tokens = world["client"], world["tokens"]
    assert client.post("/api/v1/backtests", json=body()).status_code == 401
    for role in ("viewer", "operator"):
        r = client.post("/api/v1/backtests", json=body(), headers=auth(tokens[role]))
        assert r.status_code == 403 and "analyst" in r.json()["detail"]
    r = client.post("/api/v1/backtests", json=body(deposit="monthly:100"), headers=auth(tokens["analyst"]))
    assert r.status_code == 200, r.text
    m1, monthly = r.json()["backtests"]
    assert (m1["pie"], m1["rules"], monthly["rules"]) == ("Duo", "m1", "monthly")
    assert [p["date"] for p in m1["curve"]] == ["2024-01-02", "2024-01-03", "2024-02-01", "2024-03-01"]
    assert m1["deposits"] == "200.00" and monthly["metrics"]["orders"] > m1["metrics"]["orders"]
    # m1 never rebalances: 50 AAA + 100 BBB from day one, then two $100 deposits.
    assert m1["curve"][1]["value"] == "10500.00"


def test_bad_input_is_a_problem_naming_the_line(world):
    client, token = world["client"], world["tokens"]["analyst"]
    r = client.post("/api/v1/backtests", json=body(prices=PRICES.replace("110", "-110")), headers=auth(token))
    assert r.status_code == 422 and "prices:3: AAA price '-110' is negative" in r.json()["detail"]
    r = client.post("/api/v1/backtests", json=body(policy='pie "Duo" { AAA 50% }'), headers=auth(token))
    assert r.status_code == 422 and "policy:1" in r.json()["detail"]
    r = client.post("/api/v1/backtests", json=body(pies=["Duo"] * 6, rules=["m1", "drift-5"]), headers=auth(token))
    assert r.status_code == 422 and "the limit is 10" in r.json()["detail"]
    r = client.post("/api/v1/backtests", json=body(**{"from": "2024-05-01", "to": "2024-01-01"}), headers=auth(token))
    assert r.status_code == 422 and "is after --to" in r.json()["detail"]


CORE_PRICES = ("date,VTI,BND,TIP\n2026-01-05,250,72.5,110\n2026-01-06,255,72,111\n2026-02-02,240,73,110.5\n"
               "2026-03-02,262.5,72.25,112\n")


def test_the_console_runs_a_backtest_for_an_analyst_with_table_and_chart(world):
    from test_console import sign_in
    c = world["client"]
    form = {"file": "core.pie", "pies": "Core", "rule_sets": "m1, monthly", "start_date": "2026-01-01",
            "end_date": "2026-03-31", "deposit": "monthly:100"}
    files = {"prices": ("prices.csv", CORE_PRICES.encode(), "text/csv")}
    csrf = sign_in(c, world["tokens"]["operator"])
    assert 'href="/console/backtests"' in c.get("/console/").text
    assert "needs the analyst role" in c.get("/console/backtests").text
    refused = c.post("/console/backtests", data={**form, "csrf": csrf}, files=files)
    assert refused.status_code == 403 and "analyst" in refused.text
    csrf = sign_in(c, world["tokens"]["analyst"])
    assert c.post("/console/backtests", data=form, files=files).status_code == 403          # no CSRF token
    page = c.post("/console/backtests", data={**form, "csrf": csrf}, files=files)
    assert page.status_code == 200, page.text
    assert "Core [m1]" in page.text and "Core [monthly]" in page.text and "max drawdown" in page.text
    assert "2026-01-05 .. 2026-03-02" in page.text and 'src="data:image/svg+xml;base64,' in page.text
    bad = c.post("/console/backtests", data={**form, "csrf": csrf},
                 files={"prices": ("p.csv", CORE_PRICES.replace("72,111", "-72,111").encode(), "text/csv")})
    assert bad.status_code == 422 and "prices:3: BND price &#39;-72&#39; is negative" in bad.text
