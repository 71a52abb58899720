"""An account's owner (wash sales span an owner's accounts): `pies account add --owner`,
`pies account set-owner`, the API's PUT /api/v1/accounts/{name}/owner, all through the
service layer; refused while a window of the broker account is open."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from adapters.ledger.access import Access
from adapters.ledger.books_repo import BooksRepository
from adapters.ledger.schema import Window
from adapters.ledger.store import Ledger
from config.settings import load
from engine.shell.api import Limiter, create_app
from cli_helpers import cli_runner

POLICY = 'pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\n'


@pytest.fixture
def pies(db_url, tmp_path):
    return cli_runner(tmp_path, db_url, POLICY, "50000.00")


def owners(db_url) -> dict[str, list[str]]:
    led = Ledger(db_url)
    try:
        repo = BooksRepository(led)
        names = {a.id: a.name for a in led.accounts()}
        return {o: [names[i] for i in repo.owner_accounts(o)] for o in ("ann", "alice", "bob", "carol")}
    finally:
        led.dispose()


def test_owner_by_default_the_account_then_set(pies, db_url):
    pies("account", "add", "alice", "--pie", "Core")
    assert "owned by 'ann'" in pies("account", "add", "bob", "--pie", "Core", "--owner", "ann").output
    pies("account", "add", "carol", "--pie", "Core")
    assert owners(db_url) == {"ann": ["bob"], "alice": ["alice"], "bob": [], "carol": ["carol"]}
    doc = json.loads(pies("account", "set-owner", "alice", "ann", "--json").output)
    assert doc == {"account": "alice", "owner": "ann"}
    assert owners(db_url)["ann"] == ["alice", "bob"]
    pies("account", "set-owner", "alice", "alice")                 # its own owner again
    assert owners(db_url) == {"ann": ["bob"], "alice": ["alice"], "bob": [], "carol": ["carol"]}
    assert json.loads(pies("account", "show", "bob", "--json").output)["owner"] == "ann"


@pytest.mark.parametrize("args, says", [
    (("account", "set-owner", "nobody", "ann"), "no account named 'nobody'"),
    (("account", "set-owner", "alice", "a/b"), 'may not contain "/"'),
    (("account", "add", "zed", "--pie", "Core", "--owner", ""), "owner"),
])
def test_a_bad_owner_is_one_line_and_changes_nothing(pies, db_url, args, says):
    pies("account", "add", "alice", "--pie", "Core")
    r = pies(*args, code=2)
    assert says in r.output and "Traceback" not in r.output
    assert owners(db_url)["alice"] == ["alice"] and "zed" not in pies("accounts").output


def test_set_owner_is_refused_while_a_window_is_open(pies, db_url):
    pies("account", "add", "alice", "--pie", "Core")
    led = Ledger(db_url)
    with led.tx() as s:
        s.add(Window(broker="main", trading_date=__import__("datetime").date(2026, 11, 24), name="open", step="planned"))
    led.dispose()
    r = pies("account", "set-owner", "alice", "ann", code=2)
    assert "is open" in r.output
    assert owners(db_url)["alice"] == ["alice"]


def test_the_api_sets_an_owner_for_an_operator_only(pies, db_url):
    pies("account", "add", "alice", "--pie", "Core")
    led = Ledger(db_url)
    access = Access(led)
    viewer, operator = access.create("v", "viewer"), access.create("o", "operator")
    client = TestClient(create_app(load(env=pies.env), ledger=led, live_prices=lambda s: {}, limiter=Limiter()))
    r = client.put("/api/v1/accounts/alice/owner", json={"owner": "ann"}, headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 403
    assert client.put("/api/v1/accounts/alice/owner", json={"owner": "ann"}).status_code == 401
    r = client.put("/api/v1/accounts/alice/owner", json={"owner": "ann"}, headers={"Authorization": f"Bearer {operator}"})
    assert r.status_code == 200 and r.json() == {"account": "alice", "owner": "ann"}
    r = client.put("/api/v1/accounts/nobody/owner", json={"owner": "ann"},
                   headers={"Authorization": f"Bearer {operator}"})
    assert r.status_code == 404
    led.dispose()
    assert owners(db_url)["ann"] == ["alice"]
