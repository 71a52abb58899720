"""POST /api/v1/windows/run answers at once: 202 with a run to follow while the window runs
in the server; 409 naming the holder while a window of the broker account runs elsewhere."""

from __future__ import annotations

import time

from adapters.ledger.locks import WindowLock

from api_helpers import auth


def follow(c, h, location: str) -> dict:
    for _ in range(600):
        doc = c.get(location, headers=h).json()
        if doc["status"] != "running":
            return doc
        time.sleep(0.1)
    raise AssertionError("the run never ended")


def test_a_window_run_is_accepted_and_followed_to_its_close(world, monkeypatch):
    monkeypatch.setenv("PIES_NOW", "2026-11-25T15:00:00+00:00")        # the day after the fixture's window
    world["cli"]("deposit", "bob", "500")
    c, h = world["client"], auth(world["tokens"]["operator"])
    r = c.post("/api/v1/windows/run", headers=h)
    assert r.status_code == 202, r.text
    doc = r.json()
    assert r.headers["Location"] == doc["links"]["run"] == f"/api/v1/windows/runs/{doc['run']}"
    assert doc["day"] == "2026-11-25" and doc["links"]["window"] == f"/api/v1/windows/{doc['window']}"
    run = follow(c, auth(world["tokens"]["viewer"]), r.headers["Location"])
    assert run["status"] == "closed" and run["error"] is None and run["finished_at"]
    window = c.get(run["links"]["window"], headers=h).json()
    assert window["step"] == "closed" and window["report"]["problems"] == []
    assert c.get("/api/v1/windows/runs/999", headers=h).status_code == 404
    audit = c.get("/api/v1/audit", headers=auth(world["tokens"]["admin"])).json()["audit"]
    assert audit[0]["action"] == "run window" and audit[0]["outcome"] == "ok"


def test_a_window_running_elsewhere_is_a_409_naming_its_holder_and_nothing_starts(world, monkeypatch):
    monkeypatch.setenv("PIES_NOW", "2026-11-25T15:00:00+00:00")
    c, h = world["client"], auth(world["tokens"]["operator"])
    lock = WindowLock(world["led"], "main", holder="pies window run pid=4242 host=ops1")
    lock.acquire()
    try:
        r = c.post("/api/v1/windows/run", headers=h)
    finally:
        lock.release()
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["title"] == "conflict"
    assert "a window of broker account 'main' is running already (pies window run pid=4242 host=ops1)" \
        in r.json()["detail"]
    windows = c.get("/api/v1/windows", headers=h).json()["windows"]
    assert [w["day"] for w in windows] == ["2026-11-24"]                 # nothing was opened
    audit = c.get("/api/v1/audit", headers=auth(world["tokens"]["admin"])).json()["audit"]
    assert audit[0]["action"] == "run window" and audit[0]["outcome"].startswith("refused: a window of broker")
