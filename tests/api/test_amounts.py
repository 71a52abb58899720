"""One grammar of amounts at every door: the same 25 inputs through the CLI (`pies deposit`),
the API (`POST /api/v1/events`), the console's form, a CSV import (`pies import events`) and
`pies preview --event deposit:X` get the same verdict from each: accepted as the same cents,
or refused with the same one-line reason (exit 2 / 422 problem details / the form's message),
never a 5xx or a traceback, and nothing written."""

from __future__ import annotations

import csv
import json
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest

from engine.core.money import MoneyError, parse_dollars
from api_helpers import auth

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# (typed, cents when accepted or None, what the refusal says)
TABLE = [
    ("10,50", None, "commas only separate thousands"),
    ("1e30", None, "is not a dollar amount"),
    ("$1,000.001", None, "fractions of a cent"),
    ("9" * 5000, None, "too long"),
    ("١٢٣", None, "not a number"),                      # Arabic-Indic digits: ASCII only
    ("NaN", None, "not a number"),
    ("-5", None, "must be positive"),
    ("0", None, "must be positive"),
    ("1,000.00", 100_000, None),
    ("$12.34", 1234, None),
    (" 12 ", 1200, None),
    ("12.", None, "is not a dollar amount"),
    (".5", None, "is not a dollar amount"),
    ("1_000", None, "is not a dollar amount"),          # Decimal() would take it
    ("Infinity", None, "not a number"),
    ("0x10", None, "is not a dollar amount"),
    ("1,0,0", None, "commas only separate thousands"),
    ("10.505", None, "fractions of a cent"),
    ("9" * 30, None, "surely a typo"),
    ("", None, "no amount given"),
    ("1,000,000,000.01", None, "surely a typo"),
    ("+5", None, "without a sign"),
    ("１２", None, "not a number"),                      # full-width digits
    ("12.3", 1230, None),
    ("$0.01", 1, None),
]


def test_the_table_has_25_inputs_of_both_verdicts():
    assert len(TABLE) == 25 and len({t for t, _, _ in TABLE}) == 25
    assert {c is None for _, c, _ in TABLE} == {True, False}


def pending(led) -> list[tuple[int, Decimal]]:
    return [(e.id, e.amount) for e, _ in led.events(status="pending")]


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@SQLITE
def test_every_door_gives_the_same_verdict(world, tmp_path):
    cli, client, led = world["cli"], world["client"], world["led"]
    api_headers = auth(world["tokens"]["operator"])
    client.post("/console/login", data={"token": world["tokens"]["operator"]})
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/").text).group(1)
    (tmp_path / "none.json").write_text("{}")

    def accepted(door: str, cents: int) -> None:
        ((eid, amount),) = pending(led)
        assert amount == Decimal(cents).scaleb(-2), (door, amount)
        led.cancel(eid)                   # the house's cash stays free for the next door

    for n, (typed, cents, says) in enumerate(TABLE):
        reason = None if cents is not None else _reason(typed, "deposit")
        assert cents is not None or says in reason, (typed, reason)

        # the CLI
        r = cli("deposit", "alice", typed, code=0 if cents is not None else 2)
        if cents is None:
            assert one_line(r.output) == f"error: {reason}"
        else:
            assert f"alice ${cents // 100:,}.{cents % 100:02d} (pending" in r.output
            accepted("cli", cents)
        assert pending(led) == []

        # the API
        r = client.post("/api/v1/events", json={"account": "alice", "kind": "deposit", "amount": typed},
                        headers=api_headers)
        if cents is None:
            assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
            assert r.json()["detail"] == reason and r.json()["errors"] == [{"field": "amount", "message": reason}]
        else:
            assert r.status_code == 201 and r.json()["amount"] == str(Decimal(cents).scaleb(-2)), r.text
            accepted("api", cents)
        assert pending(led) == []

        # the console's form
        r = client.post("/console/accounts/alice/events", data={"kind": "deposit", "amount": typed, "csrf": csrf},
                        follow_redirects=False)
        assert r.status_code == 303, r.text
        said = parse_qs(urlparse(r.headers["location"]).query)
        if cents is None:
            assert said["bad"] == ["1"] and said["message"] == [reason]
        else:
            assert said["bad"] == ["0"] and said["message"][0].startswith("deposit #")
            accepted("console", cents)
        assert pending(led) == []

        # a CSV import
        f = tmp_path / f"e{n}.csv"
        with f.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows([["account", "kind", "amount", "key"], ["alice", "deposit", typed, f"k{n}"]])
        r = cli("import", "events", str(f), code=0 if cents is not None else 2)
        if cents is None:
            assert one_line(r.output) == f"error: {f}:2: {reason}"
        else:
            assert "1 event(s) recorded" in r.output
            accepted("csv", cents)
        assert pending(led) == []

        # preview
        r = cli("preview", str(tmp_path / "core.pie"), "--pie", "Core", "--holdings", str(tmp_path / "none.json"),
                "--event", f"deposit:{typed}", "--min-order", "0", "--json", code=0 if cents is not None else 2)
        if cents is None:
            assert one_line(r.output) == f"error: {_reason(typed, '--event deposit')}"
        else:
            after = json.loads(r.output)["holdings_after"]
            assert sum(Decimal(v) for v in after.values()) == Decimal(cents).scaleb(-2)


def _reason(typed: str, what: str) -> str:
    try:
        parse_dollars(typed, what=what)
    except MoneyError as e:
        return str(e)
    raise AssertionError(f"{typed!r} parsed")


@SQLITE
@pytest.mark.parametrize("args", [("--event", "deposit:1e30"), ("--event", "withdraw:1e30"),
                                  ("--event", "dividend:1e30"), ("--cash", "1e30"), ("--min-order", "1e30"),
                                  ("--event", "deposit:" + "9" * 5000), ("--cash", "9" * 5000),
                                  ("--cash", "-5"), ("--event", "withdraw:[/red]")])
def test_preview_refuses_amounts_in_one_line(world, tmp_path, args):
    (tmp_path / "h.json").write_text('{"VTI": "100"}')
    r = world["cli"]("preview", str(tmp_path / "core.pie"), "--pie", "Core", "--holdings", str(tmp_path / "h.json"),
                     *args, code=2)
    line = one_line(r.output)
    assert line.startswith(f"error: {args[0]}") and len(line) < 200


@SQLITE
@pytest.mark.parametrize("holdings, says", [
    ('{"VTI": 1e30}', "'1e30' is not a dollar amount"), ('{"VTI": "' + "9" * 5000 + '"}', "too long"),
    ('{"VTI": ' + "9" * 5000 + '}', "too long"), ('{"VTI": NaN}', "not a number"), ('{"VTI": "10,50"}', "commas"),
    ('{"VTI": "1000000000.01"}', "surely a typo"), ('{"VTI": -3}', "cannot be negative"),
])
def test_preview_reads_holdings_in_the_same_grammar(world, tmp_path, holdings, says):
    (tmp_path / "h.json").write_text(holdings)
    r = world["cli"]("preview", str(tmp_path / "core.pie"), "--pie", "Core", "--holdings", str(tmp_path / "h.json"),
                     "--event", "deposit:5", code=2)
    line = one_line(r.output)
    assert line.startswith(f"error: {tmp_path / 'h.json'}: holding 'VTI'") and says in line and len(line) < 300


@SQLITE
def test_preview_holdings_are_market_values_rounded_half_to_even(world, tmp_path):
    (tmp_path / "h.json").write_text('{"VTI": "600.005", "Bonds/BND": 280.015, "Bonds/TIP": "$120"}')
    r = world["cli"]("preview", str(tmp_path / "core.pie"), "--pie", "Core", "--holdings", str(tmp_path / "h.json"),
                     "--json")
    assert json.loads(r.output)["holdings_after"] == {"VTI": "600.00", "Bonds/BND": "280.02", "Bonds/TIP": "120.00"}


@SQLITE
def test_a_five_megabyte_amount_is_a_short_422_not_a_500(world):
    # Past the body limit (64 KiB) the request is refused before it is read (413); under it,
    # the amount parser refuses the long amount (422). Neither is a 500, neither echoes it.
    r = world["client"].post("/api/v1/events", json={"account": "alice", "kind": "deposit", "amount": "9" * 5_000_000},
                             headers=auth(world["tokens"]["operator"]))
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
    assert len(r.text) < 1000
    r = world["client"].post("/api/v1/events", json={"account": "alice", "kind": "deposit", "amount": "9" * 60_000},
                             headers=auth(world["tokens"]["operator"]))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert "too long" in r.json()["detail"] and len(r.text) < 1000
    assert pending(world["led"]) == []
