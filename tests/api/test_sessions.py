"""Console sessions live only as long as their token: revoking it or changing its role ends
them at the next request, they end when idle ([api] session_idle_minutes), and signing out
ends them on the server (the old cookie is worth nothing)."""

from __future__ import annotations

import re

import pytest

from adapters.ledger.access import Access
from config.settings import SettingsError, load

from api_helpers import auth

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def sign_in(client, token: str) -> tuple[str, str]:
    r = client.post("/console/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    sid = r.cookies["pies_session"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/").text).group(1)
    return sid, csrf


def signed_out(client) -> bool:
    r = client.get("/console/", follow_redirects=False)
    return r.status_code == 303 and r.headers["location"] == "/console/login"


def test_revoking_a_token_ends_its_console_session_at_once(world):
    c = world["client"]
    _, csrf = sign_in(c, world["tokens"]["operator"])
    assert not signed_out(c)
    r = world["client"].delete("/api/v1/tokens/operator-token", headers=auth(world["tokens"]["admin"]))
    assert r.status_code == 200
    deposit = c.post("/console/accounts/alice/events", data={"kind": "deposit", "amount": "25", "csrf": csrf},
                     follow_redirects=False)
    assert deposit.status_code == 303 and deposit.headers["location"] == "/console/login"
    assert world["led"].events(status="pending") == []              # nothing recorded after revocation
    assert signed_out(c)
    assert len(c.app.state.sessions) == 0                          # the session itself is gone


def test_lowering_a_tokens_role_ends_its_sessions(world):
    c = world["client"]
    _, csrf = sign_in(c, world["tokens"]["operator"])
    world["cli"]("token", "role", "operator-token", "--role", "viewer")
    r = c.post("/console/accounts/alice/events", data={"kind": "deposit", "amount": "25", "csrf": csrf},
               follow_redirects=False)
    assert r.headers["location"] == "/console/login" and world["led"].events(status="pending") == []
    sign_in(c, world["tokens"]["operator"])                         # signing in again gives the new role
    assert "Record an event" not in c.get("/console/accounts/alice").text
    assert world["client"].post("/api/v1/events", json={"account": "alice", "kind": "deposit", "amount": "5"},
                                headers=auth(world["tokens"]["operator"])).status_code == 403


def test_sessions_end_when_idle(world):
    c = world["client"]
    now = [1000.0]
    store = c.app.state.sessions
    store.clock = lambda: now[0]
    assert store.idle == 30 * 60                                     # the default, [api] session_idle_minutes
    sign_in(c, world["tokens"]["viewer"])
    for _ in range(3):                                               # used every 29 minutes: stays
        now[0] += 29 * 60
        assert not signed_out(c)
    now[0] += 30 * 60 + 1                                            # 30 minutes and a second unused: ended
    assert signed_out(c)
    assert signed_out(c)


def test_the_idle_time_is_a_setting(db_url, tmp_path):
    (tmp_path / "s.toml").write_text("[api]\nsession_idle_minutes = 5\n")
    assert load(tmp_path / "s.toml", env={}).api_session_idle_seconds == 300
    (tmp_path / "bad.toml").write_text("[api]\nsession_idle_minutes = 0\n")
    with pytest.raises(SettingsError, match="session_idle_minutes"):
        load(tmp_path / "bad.toml", env={})


def test_signing_out_ends_the_session_on_the_server(world):
    c = world["client"]
    sid, csrf = sign_in(c, world["tokens"]["operator"])
    r = c.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    c.cookies.set("pies_session", sid, path="/console")              # the old cookie, kept by an attacker
    assert signed_out(c)
    replay = c.post("/console/accounts/alice/events", data={"kind": "deposit", "amount": "25", "csrf": csrf},
                    follow_redirects=False)
    assert replay.headers["location"] == "/console/login" and world["led"].events(status="pending") == []


def test_a_session_keeps_the_tokens_hash_never_the_token(world):
    c = world["client"]
    token = world["tokens"]["viewer"]
    sign_in(c, token)
    (session,) = c.app.state.sessions._s.values()
    assert token not in repr(session) and session.token != token
    assert Access(world["led"]).current(session.token).name == "viewer-token"


def test_one_token_holds_a_bounded_number_of_sessions(world):
    from engine.shell.web import PER_TOKEN
    c = world["client"]
    for _ in range(PER_TOKEN + 15):
        c.post("/console/login", data={"token": world["tokens"]["viewer"]}, follow_redirects=False)
    assert len(c.app.state.sessions) == PER_TOKEN
    assert not signed_out(c)                                           # the newest one works
