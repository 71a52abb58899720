"""Errors by what the caller must do: each class says it once, and the CLI's exit code, the
API's problem details and the console's message all come from there."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.broker.port import BrokerError, RetryLater, StopTrading
from adapters.ledger.store import LedgerError
from config.settings import SettingsError, load
from engine.core import errors
from engine.core.money import MoneyError
from engine.shell.api import Limiter, create_app
from engine.shell.console import UserError

from api_helpers import auth

TABLE = [   # class, CLI exit, HTTP status, problem title
    (errors.Refused, 2, 422, "refused"),
    (errors.NotFound, 2, 404, "not found"),
    (errors.Conflict, 2, 409, "conflict"),
    (errors.BrokerUnavailable, 3, 503, "broker unavailable"),
    (errors.StopTrading, 4, 503, "trading stopped"),
]


@pytest.mark.parametrize("cls, code, status, title", TABLE)
def test_each_class_has_one_exit_code_status_and_title(cls, code, status, title):
    e = cls("the thing at fault")
    assert (e.exit_code, e.status, e.title) == (code, status, title)
    made = UserError.of(e)
    assert made.exit_code == code and "the thing at fault" in made.message
    assert "the thing at fault" in e.console()


def test_old_names_and_other_layers_errors_fall_in_their_class():
    assert LedgerError is errors.Refused                       # other branches still raise and catch it
    for user in (MoneyError, SettingsError):
        assert issubclass(user, errors.Refused)
    assert issubclass(BrokerError, errors.BrokerUnavailable) and issubclass(RetryLater, errors.BrokerUnavailable)
    assert issubclass(StopTrading, errors.StopTrading) and issubclass(StopTrading, BrokerError)
    assert not issubclass(BrokerError, errors.Refused)         # `except LedgerError` never swallows a broker failure
    assert issubclass(errors.NotFound, LedgerError) and issubclass(errors.Conflict, LedgerError)


def test_the_api_answers_by_class(world):
    c, h = world["client"], auth(world["tokens"]["admin"])
    missing = c.get("/api/v1/accounts/nobody", headers=h)
    assert missing.status_code == 404 and missing.json()["title"] == "not found"
    assert "no account named 'nobody'" in missing.json()["detail"]
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert c.post("/api/v1/events/999/cancel", headers=h).status_code == 404
    bad = c.post("/api/v1/events", headers=h, json={"account": "alice", "kind": "deposit", "amount": "ten"})
    assert bad.status_code == 422 and bad.json()["title"] in ("invalid request", "refused")


@pytest.mark.parametrize("failure, status, title", [(RetryLater("rate limited"), 503, "broker unavailable"),
                                                     (StopTrading("keys refused"), 503, "trading stopped")])
def test_a_broker_failure_is_503_with_its_title(world, failure, status, title):
    def prices(symbols):
        raise failure
    app = create_app(load(env=world["env"]), ledger=world["led"], live_prices=prices, limiter=Limiter())
    r = TestClient(app).get("/api/v1/plan?account=alice", headers=auth(world["tokens"]["viewer"]))
    assert r.status_code == status and r.json()["title"] == title and str(failure) in r.json()["detail"]
    assert "errors" not in r.json()                            # no input field is at fault


def test_the_cli_exits_by_class(world):
    assert "no account named 'nobody'" in world["cli"]("account", "show", "nobody", code=2).output
    assert "no event 999" in world["cli"]("cancel", "999", code=2).output

