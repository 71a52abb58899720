"""The web console through HTTP: sign-in with a token, the session cookie's flags, CSRF on
every form, the pages, and refusals for the wrong role."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def sign_in(client, token: str) -> str:
    r = client.post("/console/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    page = client.get("/console/")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_pages_need_a_session_and_a_valid_token(world):
    c = world["client"]
    assert c.get("/console/", follow_redirects=False).headers["location"] == "/console/login"
    bad = c.post("/console/login", data={"token": "pies_nope"})
    assert bad.status_code == 401 and "not valid" in bad.text
    assert c.post("/console/login", data={"token": world["revoked"]}).status_code == 401


def test_dashboard_accounts_account_chart_and_window_report(world):
    c = world["client"]
    sign_in(c, world["tokens"]["viewer"])
    dash = c.get("/console/").text
    assert 'id="accounts-count">2<' in dash and 'id="total-value">$1,000.00<' in dash and "0 problems" in dash
    assert 'href="/console/accounts/alice"' in c.get("/console/accounts?search=al").text
    page = c.get("/console/accounts/alice").text
    assert page.count('class="segment target"') == 3 and page.count('class="segment actual"') == 3
    assert page.count('class="segment pie-band"') == 1                  # the nested pie "Bonds"
    assert "Record an event" not in page                                 # a viewer records nothing
    report = c.get("/console/windows/1").text
    assert "The ledger agrees with the broker." in report and "VTI" in report
    assert '<meta name="viewport"' in report and "/console/static/pies.css" in report
    assert "https://" not in report                                       # nothing from a CDN
    alice = '<a href="/console/accounts/alice">alice</a>'                 # each account links to its page
    assert alice in report and "page 1 · 100 accounts a page" in report and ">next<" not in report
    assert "#1 deposit $1,000.00" in report                              # the events that drove it
    later = c.get("/console/windows/1?page=2").text                      # accounts are shown a page at a time
    assert alice not in later and 'href="?page=1">previous<' in later


def test_forms_need_their_csrf_token_and_the_right_role(world):
    c = world["client"]
    csrf = sign_in(c, world["tokens"]["operator"])
    no_csrf = c.post("/console/accounts/alice/events", data={"kind": "deposit", "amount": "25"})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    wrong = c.post("/console/accounts/alice/events", data={"kind": "deposit", "amount": "25", "csrf": "x" + csrf})
    assert wrong.status_code == 403
    assert world["led"].events(status="pending") == []
    ok = c.post("/console/accounts/alice/events", data={"kind": "deposit", "amount": "25", "csrf": csrf})
    assert "deposit #" in ok.text and "$25.00" in ok.text
    (e, _), = world["led"].events(status="pending")
    cancel = c.post(f"/console/events/{e.id}/cancel", data={"csrf": csrf, "account": "alice"})
    assert f"event #{e.id} canceled" in cancel.text and world["led"].events(status="pending") == []
    apply = c.post("/console/policies/apply", data={"csrf": csrf, "file": "x", "sha256": "y"})
    assert apply.status_code == 403 and "analyst" in apply.text              # an operator applies no policy
    audit = [x["action"] for x in world["client"].get(
        "/api/v1/audit", headers={"Authorization": f"Bearer {world['tokens']['admin']}"}).json()["audit"]]
    assert audit[:2] == ["cancel", "record deposit"]


def test_an_analyst_sees_the_plan_and_applies_it(world, tmp_path):
    c = world["client"]
    csrf = sign_in(c, world["tokens"]["analyst"])
    (tmp_path / "core.pie").write_text('pie "Core" { VTI 100% }\n')
    page = c.get("/console/policies").text
    assert "removed Bonds" in page and 'class="liquidations stack"' in page and "Total: <strong>$" in page
    sha = re.search(r'sha256=([0-9a-f]{64})', page).group(1)
    file = str(tmp_path / "core.pie")
    # A change that sells is not applied in one click: the apply leads to the plan first.
    first = c.post("/console/policies/apply", data={"csrf": csrf, "file": file, "sha256": sha}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/console/policies/confirm?")
    assert world["led"].events(status="pending") == []
    confirm = c.get(first.headers["location"]).text
    assert 'id="sells"' in confirm and "alice" in confirm and "Bonds" in confirm and 'id="confirm-apply"' in confirm
    assert re.search(r'name="sha256" value="([0-9a-f]{64})"', confirm).group(1) == sha
    done = c.post("/console/policies/apply", data={"csrf": csrf, "file": file, "sha256": sha, "confirm": "liquidate"})
    assert "Applied version" in done.text
    assert {e.kind for e, _ in world["led"].events(status="pending")} == {"target_change", "liquidation"}


def test_pending_events_of_every_account_on_one_page_with_local_times_and_separators(world):
    c = world["client"]
    world["cli"]("deposit", "bob", "12345.6")
    world["cli"]("deposit", "alice", "7")
    sign_in(c, world["tokens"]["operator"])
    page = c.get("/console/events").text
    assert page.index("bob") < page.index('href="/console/accounts/alice"')      # oldest first, linked
    assert "$12,345.60" in page and "$7.00" in page and "· 2</span>" in page
    assert re.search(r'<time datetime="[^"]+" title="[^"]+ UTC">\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T</time>', page)
    api = c.get("/api/v1/events?size=1&page=2", headers={"Authorization": f"Bearer {world['tokens']['viewer']}"})
    assert api.json()["total"] == 2 and [e["account"] for e in api.json()["events"]] == ["alice"]


def test_replaced_orders_are_explained_not_shown_as_duplicates(world, monkeypatch):
    c = world["client"]
    sign_in(c, world["tokens"]["viewer"])
    real = c.app.state.service.window(1, 1, 100)
    orders = real["report"]["orders"]
    vti = next(o for o in orders if o["symbol"] == "VTI")
    dropped = {**vti, "status": "dropped", "notional": "650.00", "client_order_id": vti.get("client_order_id", "") + "-x"}
    monkeypatch.setattr(c.app.state.service, "window",
                        lambda *a: {**real, "report": {**real["report"], "orders": [dropped, *orders]}})
    page = c.get("/console/windows/1").text
    table = page.split('id="orders"')[1].split("</table>")[0]
    assert table.count("<td data-label=\"Symbol\">VTI</td>") == 1 and "dropped" not in table
    assert 'id="dropped"' in page and "VTI buy $650.00" in page and "replaced before sending" in page


def test_a_long_amount_typed_into_the_console_is_refused_briefly(world):
    c = world["client"]
    csrf = sign_in(c, world["tokens"]["operator"])
    r = c.post("/console/accounts/alice/events", data={"kind": "deposit", "amount": "9" * 50_000, "csrf": csrf},
               follow_redirects=False)
    assert r.status_code == 303 and len(r.headers["location"]) < 500
    assert "at most 40 characters" in c.get(r.headers["location"]).text
    assert world["led"].events(status="pending") == []
