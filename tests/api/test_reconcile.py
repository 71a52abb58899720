"""`pies reconcile` through every door: the CLI, the API (roles and refusals) and the
console show the same comparison; an operator's acceptance, with a reason, is audited and
lets the next window go on."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

from api_helpers import auth
from test_console import sign_in


def tamper(world, symbol: str, more: str) -> D:
    """Move the simulated broker's position behind pies's back; the broker's new quantity."""
    path = Path(world["env"]["PIES_DATA_DIR"]) / "simulated-broker.json"
    state = json.loads(path.read_text())
    state["positions"][symbol] = str(D(state["positions"][symbol]) + D(more))
    path.write_text(json.dumps(state))
    return D(state["positions"][symbol])


def line(doc: dict, symbol: str) -> dict:
    return next(x for x in doc["brokers"][0]["lines"] if x["symbol"] == symbol)


def test_the_api_shows_the_comparison_to_viewers_and_refuses_strangers(world):
    c, t = world["client"], world["tokens"]
    assert c.get("/api/v1/reconcile").status_code == 401
    assert c.get("/api/v1/reconcile", headers=auth(world["revoked"])).status_code == 401
    doc = c.get("/api/v1/reconcile", headers=auth(t["viewer"])).json()
    b = doc["brokers"][0]
    assert b["broker"] == "main" and b["agrees"] is True and doc["waits"] is False
    vti = line(doc, "VTI")
    assert vti["cause"] is None and D(vti["ledger"]) + D(vti["house"]) == D(vti["broker"]) > 0
    assert line(doc, "$cash")["difference"] in ("0", "0.00")
    unknown = c.get("/api/v1/reconcile?broker=nope", headers=auth(t["viewer"]))
    assert unknown.status_code == 422 and "nope" in unknown.json()["detail"]


def test_an_unexplained_break_waits_and_an_operator_accepts_it_with_a_reason(world):
    c, t = world["client"], world["tokens"]
    broker_qty = tamper(world, "VTI", "0.5")
    doc = c.get("/api/v1/reconcile", headers=auth(t["viewer"])).json()
    vti = line(doc, "VTI")
    assert doc["waits"] is True and vti["waits"] is True and vti["cause"] == "unexplained"
    assert D(vti["difference"]) == D("0.5") and D(vti["broker"]) == broker_qty
    # Refusals: no token, a viewer, no reason, a blank reason; nothing accepted by any of them.
    assert c.post("/api/v1/reconcile/accept", json={"reason": "x"}).status_code == 401
    forbidden = c.post("/api/v1/reconcile/accept", json={"reason": "x"}, headers=auth(t["viewer"]))
    assert forbidden.status_code == 403 and "operator" in forbidden.json()["detail"]
    assert c.post("/api/v1/reconcile/accept", json={}, headers=auth(t["operator"])).status_code == 422
    blank = c.post("/api/v1/reconcile/accept", json={"reason": "   "}, headers=auth(t["operator"]))
    assert blank.status_code == 422 and "reason" in blank.json()["detail"]
    assert c.get("/api/v1/reconcile", headers=auth(t["viewer"])).json()["waits"] is True
    ok = c.post("/api/v1/reconcile/accept", json={"reason": "transfer in, checked on the statement"},
                headers=auth(t["operator"]))
    assert ok.status_code == 201, ok.text
    assert [(a["symbol"], D(a["difference"])) for a in ok.json()["accepted"]] == [("VTI", D("0.5"))]
    assert ok.json()["by"] == "operator-token"
    after = c.get("/api/v1/reconcile", headers=auth(t["viewer"])).json()
    assert after["waits"] is False and line(after, "VTI")["cause"] == "accepted"
    assert after["brokers"][0]["accepted"][0]["reason"] == "transfer in, checked on the statement"
    again = c.post("/api/v1/reconcile/accept", json={"reason": "again"}, headers=auth(t["operator"]))
    assert again.status_code == 422 and "no unexplained break" in again.json()["detail"]
    audit = c.get("/api/v1/audit", headers=auth(t["admin"])).json()["audit"]
    mine = [(a["token"], a["outcome"][:8]) for a in audit if a["action"] == "accept reconciliation"]
    assert mine == [("operator-token", "refused:"), ("operator-token", "ok"), ("operator-token", "refused:")]


def test_the_cli_shows_the_comparison_holds_the_window_and_accepts(world):
    cli = world["cli"]
    r = cli("reconcile")
    assert "VTI" in r.output and "agrees" in r.output
    tamper(world, "BND", "-1")
    r = cli("reconcile", code=4)
    assert "unexplained" in r.output and "BND" in r.output and "pies reconcile accept" in r.output
    doc = json.loads(cli("reconcile", "--json", code=4).output)
    assert D(line(doc, "BND")["difference"]) == -1 and line(doc, "BND")["waits"] is True
    # The next day's window waits (exit 4, one line), before anything is collected or sent.
    world["env"]["PIES_NOW"] = "2026-11-25T15:00:00+00:00"
    cli("deposit", "bob", "100")
    held = cli("window", "run", code=4)
    assert "waits for an operator" in held.output and "BND" in held.output and "Traceback" not in held.output
    shown = cli("window", "show").output
    assert "at step 'opened'" in shown and "held before planning" in shown and "BND" in shown
    refused = cli("reconcile", "accept", "--reason", " ", code=2)
    assert "reason" in refused.output
    r = cli("reconcile", "accept", "--reason", "sold by hand at the broker, proceeds kept there")
    assert "accepted #" in r.output and "BND" in r.output
    assert "accepted" in cli("reconcile").output
    # Now it goes on; it closes, and its close reports the difference again (exit 3) with its cause.
    cli("window", "run", code=3)
    shown = json.loads(cli("window", "show", "--json").output)
    assert shown["step"] == "closed"
    before = {x["symbol"]: x for x in shown["report"]["reconciliation"]["before"]["breaks"]}
    assert before["BND"]["cause"] == "accepted"
    after = {x["symbol"]: x for x in shown["report"]["reconciliation"]["after"]["breaks"]}
    assert after["BND"]["cause"] == "accepted"


def test_the_console_page_shows_the_breaks_and_lets_an_operator_accept(world):
    c, t = world["client"], world["tokens"]
    assert c.get("/console/reconcile", follow_redirects=False).headers["location"] == "/console/login"
    tamper(world, "TIP", "2")
    csrf = sign_in(c, t["viewer"])
    page = c.get("/console/reconcile")
    assert page.status_code == 200 and "TIP" in page.text and "Trading waits" in page.text
    assert "Accept these breaks" not in page.text                       # a viewer sees no form
    refused = c.post("/console/reconcile/accept", data={"csrf": csrf, "reason": "x", "broker": "main"})
    assert refused.status_code == 403
    c.cookies.clear()
    csrf = sign_in(c, t["operator"])
    page = c.get("/console/reconcile")
    assert "Accept these breaks" in page.text
    assert c.post("/console/reconcile/accept", data={"reason": "x", "broker": "main"}).status_code == 403
    done = c.post("/console/reconcile/accept", data={"csrf": csrf, "reason": "gift of shares", "broker": "main"})
    assert done.status_code == 200 and "accepted: TIP 2" in done.text and "gift of shares" in done.text
    assert "Trading waits" not in done.text


def test_pies_reconcile_names_a_split_nobody_reported(world):
    cli = world["cli"]
    path = Path(world["env"]["PIES_DATA_DIR"]) / "simulated-broker.json"
    state = json.loads(path.read_text())
    tamper(world, "VTI", state["positions"]["VTI"])                # the broker's VTI doubled
    r = cli("reconcile", code=4)
    assert "2-for-1" in r.output and "heard of?" in r.output          # in the table's wrapped cell
    doc = json.loads(cli("reconcile", "--json", code=4).output)
    assert line(doc, "VTI")["detail"].startswith("VTI: broker holds 2.000\u00d7 the ledger's shares: a 2-for-1 split")
