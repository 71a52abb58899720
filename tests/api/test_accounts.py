"""Opening accounts in bulk: POST /api/v1/accounts (operator) and `pies import accounts
FILE.csv`, both all or none with every mistake named, both idempotent by name."""

from __future__ import annotations

import pytest

from api_helpers import auth

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def names(world) -> set[str]:
    return {a.name for a in world["led"].accounts() if not a.name.startswith("house:")}


def test_the_api_opens_accounts_all_or_none_and_idempotently(world):
    c, h = world["client"], auth(world["tokens"]["operator"])
    body = {"accounts": [{"name": f"feed-{i:02d}", "pie": "Core"} for i in range(20)]}
    r = c.post("/api/v1/accounts", json=body, headers=h)
    assert r.status_code == 201 and r.json()["created"] == 20 and r.json()["existing"] == 0
    assert {f"feed-{i:02d}" for i in range(20)} <= names(world)
    again = c.post("/api/v1/accounts", json=body, headers=h)                   # the same request: nothing new
    assert again.status_code == 200 and again.json()["existing"] == 20
    assert all(not a["created"] for a in again.json()["accounts"])
    mixed = {"accounts": [{"name": "new-one", "pie": "Core"}, {"name": "feed-00", "pie": "Bonds"},
                          {"name": "new-two", "pie": "Nope"}, {"name": "new-one", "pie": "Core"}]}
    r = c.post("/api/v1/accounts", json=mixed, headers=h)
    p = r.json()
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert "accounts[1]: " in p["detail"] and "no pie named 'Bonds'" in p["detail"]    # nested, not top level
    assert "accounts[2]" in p["detail"] and "no pie named 'Nope'" in p["detail"]
    assert "accounts[3]: account 'new-one' appears twice" in p["detail"]
    assert "new-one" not in names(world)                                       # none of them
    r = c.post("/api/v1/accounts", json={"accounts": [{"name": "x", "pie": "Core", "policy": "/etc/passwd"}]},
               headers=h)
    assert r.status_code == 422 and "not one of the policy files" in r.json()["detail"]
    r = c.post("/api/v1/accounts", json={"accounts": [{"name": "x", "pie": "Core", "policy": "core\x00.pie"}]},
               headers=h)                                                      # schemathesis found it: was a 500
    assert r.status_code == 422 and "is not a file name" in r.json()["detail"]
    assert c.post("/api/v1/accounts", json={"accounts": []}, headers=h).status_code == 422
    audit = c.get("/api/v1/audit?limit=5", headers=auth(world["tokens"]["admin"])).json()["audit"]
    assert [a["action"] for a in audit[:2]] == ["add accounts", "add accounts"]
    assert audit[0]["outcome"].startswith("refused")
    assert c.post("/api/v1/accounts", json=body, headers=auth(world["tokens"]["viewer"])).status_code == 403


def test_the_cli_imports_accounts_all_or_none_with_mistakes_by_line(world, tmp_path):
    f = tmp_path / "accounts.csv"
    f.write_text("name,pie\nimp-a,Core\nimp-b,Core\n")
    r = world["cli"]("import", "accounts", str(f))
    assert "2 account(s) opened, 0 there already" in r.output
    assert world["cli"]("import", "accounts", str(f)).output.count("0 account(s) opened, 2 there already") == 1
    (tmp_path / "other.pie").write_text('pie "Core" { VTI 100% }\n')
    f.write_text(f"name,pie,policy\nimp-c,Core,\nimp-a,Core,{tmp_path / 'other.pie'}\nimp/d,Core,\nimp-e,Nope,\n")
    r = world["cli"]("import", "accounts", str(f), code=2)
    assert f"{f}:3: account 'imp-a' exists already" in r.output
    assert f"{f}:4: account name 'imp/d' may not contain" in r.output
    assert f"{f}:5: " in r.output and "no pie named 'Nope'" in r.output
    assert "imp-c" not in names(world)
    f.write_text("name,pie,colour\nx,Core,red\n")
    assert "unknown columns: colour" in world["cli"]("import", "accounts", str(f), code=2).output
    assert "cannot read" in world["cli"]("import", "accounts", str(tmp_path / "missing.csv"), code=2).output
