"""Corporate actions read from Alpaca (GET /v1/corporate-actions), replayed from cassettes
built from alpaca-py's own test body (cassettes/build.py): every kind, exact rates, all
pages, the effective day, and what pies does not handle."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from adapters.broker import alpaca_actions
from adapters.broker.alpaca import AlpacaBroker
from adapters.broker.port import ActionKind, CorporateAction, StopTrading
from conftest_helpers import CASSETTES, SENT, alpaca, replay

D = Decimal
K = ActionKind


def cassette(name: str):
    SENT.clear()
    return replay.use_cassette(f"{name}.yaml", allow_playback_repeats=False)


SYMBOLS = ["ATNXQ", "BSAQ", "EXACT", "FCF", "GLOP", "IFN", "JUPW", "LSI", "MLVF", "MNTS", "MSBC", "ORPHY",
           "SRE", "TPBAU"]


def test_every_kind_is_read_with_its_effective_day_and_exact_rates_over_all_pages():
    with cassette("corporate_actions_every_kind") as c, capture_logs() as logs:
        got = alpaca().corporate_actions(SYMBOLS, date(2023, 1, 1), date(2024, 12, 31))
        assert c.all_played and c.play_count == 2            # two pages
    u = "a7932b15-f816-4f83-921e-998b524487"
    assert got == [
        # A unit split's two legs, as the actions file reader gives them: the alternate first.
        CorporateAction(f"{u}b2/alternate", K.UNIT_SPLIT, "TPBAU", date(2023, 3, 1), "LVROW", D(1),
                        D("0.3333"), source_keeps=True),
        CorporateAction(f"{u}b2/new", K.UNIT_SPLIT, "TPBAU", date(2023, 3, 1), "LVRO", D(1), D(1)),
        CorporateAction(f"{u}b3", K.STOCK_DIVIDEND, "MSBC", date(2023, 5, 19), None, D(1), D("1.05")),
        CorporateAction(f"{u}b9", K.REDEMPTION, "ORPHY", date(2023, 6, 13), None, D(1), D(0), D("0.141134")),
        CorporateAction(f"{u}b6", K.CASH_MERGER, "GLOP", date(2023, 7, 17), None, D(1), D(0), D("5.37")),
        CorporateAction(f"{u}b8", K.STOCK_AND_CASH_MERGER, "MLVF", date(2023, 7, 18), "FRBA", D(1), D("0.7733"),
                        D("7.8")),
        CorporateAction(f"{u}b7", K.STOCK_MERGER, "LSI", date(2023, 7, 20), "EXR", D(1), D("0.895")),
        CorporateAction(f"{u}b5", K.SPIN_OFF, "JUPW", date(2023, 8, 15), "SRM", D("19.35"), D(1), source_keeps=True),
        CorporateAction(f"{u}c0", K.NAME_CHANGE, "BSAQ", date(2023, 8, 15), "VFS", D(1), D(1)),
        CorporateAction(f"{u}b1", K.FORWARD_SPLIT, "SRE", date(2023, 8, 22), None, D(1), D(2)),
        CorporateAction(f"{u}d0", K.FORWARD_SPLIT, "EXACT", date(2023, 8, 23), None, D(1),
                        D("1.0000000000000000001")),
        CorporateAction(f"{u}b0", K.REVERSE_SPLIT, "MNTS", date(2023, 8, 24), None, D(50), D(1)),
        CorporateAction(f"{u}c1", K.WORTHLESS_REMOVAL, "ATNXQ", date(2023, 10, 11), None, D(1), D(0)),
        CorporateAction(f"{u}c2", K.RIGHTS_DISTRIBUTION, "IFN", date(2024, 4, 17), "IFN.RTWI", D(1), D(1),
                        source_keeps=True),
    ]
    assert not any(a.kind == K.CASH_DIVIDEND for a in got)          # FCF's cash comes as a DIV activity
    alerts = [x for x in logs if x["event"] == "corporate action not handled"]
    assert {(x["log_level"], x["alert"], x["id"]) for x in alerts} == {("error", True, f"{u}c2")}
    # The query: the held symbols, 10 days beyond each end (Alpaca filters on process_date).
    url = SENT[0][1]
    assert "start=2022-12-22" in url and "end=2025-01-10" in url and "symbols=ATNXQ%2CBSAQ" in url


def test_rates_never_pass_through_a_float():
    """alpaca-py's own models would turn the 20-digit rate into 1.0; the adapter keeps it."""
    from alpaca.data.models.corporate_actions import CorporateActionsSet
    body = (CASSETTES / "corporate_actions_every_kind.yaml").read_text()
    assert "1.0000000000000000001" in body
    raw = {"forward_splits": [{"id": "a7932b15-f816-4f83-921e-998b524487d0", "symbol": "EXACT", "cusip": "C", "new_rate": 1.0000000000000000001,
                               "old_rate": 1, "process_date": "2023-08-23", "ex_date": "2023-08-23"}]}
    assert CorporateActionsSet(raw)["forward_splits"][0].new_rate == 1.0          # the float, rounded
    with cassette("corporate_actions_every_kind"):
        got = alpaca().corporate_actions(SYMBOLS, date(2023, 1, 1), date(2024, 12, 31))
    assert [a.new_rate for a in got if a.symbol == "EXACT"] == [Decimal("1.0000000000000000001")]


def test_the_effective_day_decides_not_the_process_day():
    # Asked for 08-16..08-22: SRE's split (ex 08-22) is in; MNTS (ex 08-24) and BSAQ's
    # rename (processed 08-15) are out, although Alpaca's wider answer holds them.
    with cassette("corporate_actions_effective_days") as c:
        got = alpaca().corporate_actions(["SRE", "MNTS", "BSAQ"], date(2023, 8, 16), date(2023, 8, 22))
        assert c.all_played
    assert [(a.symbol, a.kind, a.effective) for a in got] == [("SRE", K.FORWARD_SPLIT, date(2023, 8, 22))]


def test_a_kind_pies_does_not_know_stops_trading_naming_it():
    with cassette("corporate_actions_unknown_kind"), capture_logs() as logs:
        with pytest.raises(StopTrading, match="warrant_exercises 0b1e0000-0000-4000-8000-00000000dead \\(SRE\\)"):
            alpaca().corporate_actions(["SRE"], date(2023, 8, 16), date(2023, 8, 22))
    assert any(x["event"] == "corporate action of an unknown kind" and x["log_level"] == "error" and x["alert"]
               and x["id"] == "0b1e0000-0000-4000-8000-00000000dead" for x in logs)


def test_many_symbols_are_asked_in_chunks(monkeypatch):
    monkeypatch.setattr(AlpacaBroker, "ACTION_CHUNK", 1)
    with cassette("corporate_actions_chunks") as c:
        got = alpaca().corporate_actions(["SRE", "MNTS"], date(2023, 8, 16), date(2023, 8, 24))
        assert c.all_played and c.play_count == 2
    assert [(a.symbol, a.kind) for a in got] == [("SRE", K.FORWARD_SPLIT), ("MNTS", K.REVERSE_SPLIT)]


# --- the body reader alone ---------------------------------------------------------------

def _one(key: str, **entry) -> list[CorporateAction]:
    return alpaca_actions.parse({key: [{"id": "A1", **entry}]}).actions


def test_the_reader_refuses_a_float_rate_a_negative_rate_and_a_missing_field_naming_them():
    split = {"symbol": "X", "old_rate": 1, "ex_date": "2026-03-02", "process_date": "2026-03-02"}
    with pytest.raises(alpaca_actions.BodyError, match="forward_split A1: new_rate was parsed as a float"):
        _one("forward_splits", new_rate=2.5, **split)
    with pytest.raises(alpaca_actions.BodyError, match="forward_split A1: new_rate must be a finite number >= 0"):
        _one("forward_splits", new_rate=Decimal("-2"), **split)
    with pytest.raises(alpaca_actions.BodyError, match="forward_split A1: a split's rates must be positive"):
        _one("forward_splits", new_rate=Decimal("0"), **split)
    with pytest.raises(alpaca_actions.BodyError, match="name_change A1: new_symbol is missing"):
        _one("name_changes", old_symbol="OLD", process_date="2026-03-02")
    with pytest.raises(alpaca_actions.BodyError, match="spin_off A1: ex_date is not a date"):
        _one("spin_offs", source_symbol="S", source_rate=1, new_symbol="N", new_rate=1, ex_date="soon")


def test_the_reader_takes_a_body_parsed_with_decimal_floats():
    text = '{"stock_dividends": [{"id": "S1", "symbol": "MSBC", "rate": 0.1, "ex_date": "2026-05-19", ' \
           '"process_date": "2026-05-20"}]}'
    (a,) = alpaca_actions.parse(json.loads(text, parse_float=Decimal)).actions
    assert (a.kind, a.old_rate, a.new_rate, a.effective) == (K.STOCK_DIVIDEND, 1, Decimal("1.1"), date(2026, 5, 19))


def test_a_unit_split_reads_the_same_from_alpaca_and_from_an_actions_file():
    """The same body, through the Alpaca adapter (the cassette) and the simulated broker's
    file reader: the same two values, ids, rates and order; a body without an alternate
    leg gives the one `/new` value either way."""
    from adapters.broker.action_file import parse_actions
    import yaml
    with cassette("corporate_actions_every_kind"):
        from_alpaca = [a for a in alpaca().corporate_actions(SYMBOLS, date(2023, 1, 1), date(2024, 12, 31))
                       if a.kind == K.UNIT_SPLIT]
    pages = [json.loads(i["response"]["body"]["string"], parse_float=Decimal)
             for i in yaml.safe_load((CASSETTES / "corporate_actions_every_kind.yaml").read_text())["interactions"]]
    entries = [e for p in pages for e in p["corporate_actions"].get("unit_splits", [])]
    body = {"corporate_actions": {"unit_splits": entries}}
    from_file = parse_actions(json.dumps(body, default=str), "units.json")
    assert len(from_alpaca) == 2 and from_file == from_alpaca
    single = {**entries[0], "alternate_rate": 0, "alternate_symbol": None}
    assert (parse_actions(json.dumps({"corporate_actions": {"unit_splits": [single]}}, default=str), "u.json")
            == alpaca_actions.parse({"unit_splits": [single]}).actions)
