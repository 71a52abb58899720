"""The simulated broker's corporate actions: read from a file in Alpaca's body shape,
applied to its positions, cash and walked prices on their days by its own clock, listed by
`corporate_actions`; a malformed file is refused with one line before anything trades."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from adapters.broker.action_file import ActionsFileError, parse_actions, read_actions
from adapters.broker.simulated import SimulatedBroker, SimulatedConfig
from engine.core.corporate_actions import ActionKind, CorporateAction
from engine.core.errors import Refused

NY = ZoneInfo("America/New_York")


def body(**kinds) -> str:
    return json.dumps({"corporate_actions": kinds, "next_page_token": None})


SPLIT = {"id": "fs-1", "symbol": "VTI", "cusip": "922908769", "new_rate": 2, "old_rate": 1,
         "process_date": "2026-03-05", "ex_date": "2026-03-05", "record_date": None, "payable_date": None}


def test_every_kind_reads_with_alpacas_field_names_and_exact_rates():
    text = body(
        forward_splits=[SPLIT],
        reverse_splits=[{"id": "rs", "symbol": "BND", "old_cusip": "a", "new_cusip": "b", "new_rate": 1,
                         "old_rate": 10, "process_date": "2026-03-06", "ex_date": "2026-03-06"}],
        stock_dividends=[{"id": "sd", "symbol": "AAA", "cusip": "c", "rate": 0.05, "process_date": "2026-03-02",
                          "ex_date": "2026-03-02"}],
        name_changes=[{"id": "nc", "old_symbol": "SQ", "old_cusip": "a", "new_symbol": "XYZ", "new_cusip": "b",
                       "process_date": "2026-03-05"}],
        cash_mergers=[{"id": "cm", "acquirer_symbol": None, "acquiree_symbol": "CCC", "acquiree_cusip": "c",
                       "rate": 53.1, "process_date": "2026-03-09", "effective_date": "2026-03-09"}],
        stock_mergers=[{"id": "sm", "acquirer_symbol": "BIG", "acquirer_cusip": "x", "acquirer_rate": 0.3333,
                        "acquiree_symbol": "SMOL", "acquiree_cusip": "y", "acquiree_rate": 1,
                        "process_date": "2026-03-09", "effective_date": "2026-03-09"}],
        stock_and_cash_mergers=[{"id": "scm", "acquirer_symbol": "BIG", "acquirer_cusip": "x", "acquirer_rate": 1.5,
                                 "acquiree_symbol": "MED", "acquiree_cusip": "y", "acquiree_rate": 1,
                                 "cash_rate": 0.1, "process_date": "2026-03-09", "effective_date": "2026-03-09"}],
        spin_offs=[{"id": "so", "source_symbol": "IBM", "source_cusip": "a", "source_rate": 5, "new_symbol": "KD",
                    "new_cusip": "b", "new_rate": 1, "process_date": "2026-03-04", "ex_date": "2026-03-04"}],
        unit_splits=[{"id": "us", "old_symbol": "UNIT.U", "old_cusip": "a", "old_rate": 1, "new_symbol": "UNIT",
                      "new_cusip": "b", "new_rate": 1, "alternate_symbol": "UNIT.WS", "alternate_cusip": "c",
                      "alternate_rate": 0.5, "process_date": "2026-03-03", "effective_date": "2026-03-03"}],
        redemptions=[{"id": "rd", "symbol": "NOTE", "cusip": "z", "rate": 100, "process_date": "2026-03-10"}],
        worthless_removals=[{"id": "wr", "symbol": "DUD", "cusip": "z", "process_date": "2026-03-10"}],
    )
    got = {a.id: a for a in parse_actions(text, "actions.json")}
    assert got["fs-1"] == CorporateAction("fs-1", ActionKind.FORWARD_SPLIT, "VTI", date(2026, 3, 5),
                                          old_rate=Decimal(1), new_rate=Decimal(2))
    assert (got["rs"].old_rate, got["rs"].new_rate) == (Decimal(10), Decimal(1))
    assert got["sd"].new_rate == Decimal("1.05")                 # not 1.0500000000000000444 (a float's)
    assert got["nc"].new_symbol == "XYZ" and got["nc"].effective == date(2026, 3, 5)
    assert got["cm"].cash_rate == Decimal("53.1") and got["cm"].new_symbol is None
    assert got["sm"].new_rate == Decimal("0.3333") and not got["sm"].source_keeps
    assert got["scm"].cash_rate == Decimal("0.1")
    assert got["so"].source_keeps and (got["so"].old_rate, got["so"].new_rate) == (Decimal(5), Decimal(1))
    assert got["us/alternate"].source_keeps and got["us/alternate"].new_symbol == "UNIT.WS"
    assert got["us/new"].new_symbol == "UNIT" and not got["us/new"].source_keeps
    assert got["rd"].cash_rate == Decimal(100) and got["wr"].kind == ActionKind.WORTHLESS_REMOVAL
    order = [a.id for a in parse_actions(text)]
    assert order.index("us/alternate") < order.index("us/new")


@pytest.mark.parametrize("kinds, words", [
    ({"forward_split": [SPLIT]}, "actions.json: corporate_actions.forward_split: unknown kind"),
    ({"forward_splits": [{**SPLIT, "new_rate": 0}]}, "actions.json: corporate_actions.forward_splits[0].new_rate: "
                                                     "must be positive, not 0"),
    ({"forward_splits": [SPLIT, {**SPLIT, "id": "b", "old_rate": -1}]},
     "corporate_actions.forward_splits[1].old_rate: must be positive, not -1"),
    ({"forward_splits": [{**SPLIT, "symbol": "vti"}]}, "forward_splits[0].symbol: must be a ticker symbol"),
    ({"forward_splits": [{**SPLIT, "new_rate": "two"}]}, "forward_splits[0].new_rate: must be a number"),
    ({"forward_splits": [{**SPLIT, "ex_date": "March 5"}]}, "forward_splits[0].ex_date: must be a date"),
    ({"forward_splits": [SPLIT, SPLIT]}, "two entries have the id 'fs-1'"),
])
def test_a_malformed_file_is_refused_in_one_line_naming_the_file_the_entry_and_the_field(kinds, words):
    with pytest.raises(ActionsFileError) as e:
        parse_actions(body(**kinds), "actions.json")
    assert words in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, Refused)


def test_the_broker_refuses_a_malformed_file_when_it_is_built(tmp_path):
    f = tmp_path / "actions.json"
    f.write_text(body(forward_splits=[{**SPLIT, "new_rate": -2}]))
    with pytest.raises(ActionsFileError, match=f"{f}: corporate_actions.forward_splits\\[0\\].new_rate"):
        SimulatedBroker(SimulatedConfig(corporate_actions_file=f))


def broker(tmp_path, kinds: dict, day: list, **kw) -> SimulatedBroker:
    f = tmp_path / "actions.json"
    f.write_text(body(**kinds))
    return SimulatedBroker(SimulatedConfig(state_file=tmp_path / "state.json", corporate_actions_file=f, **kw),
                           now=lambda: day[0])


def test_a_split_applies_on_its_ex_date_by_the_brokers_clock_once_and_halves_the_walk(tmp_path):
    day = [datetime(2026, 3, 4, 10, 0, tzinfo=NY)]
    b = broker(tmp_path, {"forward_splits": [SPLIT]}, day, starting_positions={"VTI": Decimal("10.000000001")})
    before = b.latest_prices(["VTI"])["VTI"]
    assert b.positions()["VTI"].qty == Decimal("10.000000001")
    assert b.corporate_actions(["VTI"], date(2026, 3, 1), date(2026, 3, 4)) == []
    day[0] = datetime(2026, 3, 5, 9, 0, tzinfo=NY)
    raw = b._walk_price("VTI", date(2026, 3, 5))
    assert b.positions()["VTI"].qty == Decimal("20.000000002")
    assert b.latest_prices(["VTI"])["VTI"] == (raw / 2).quantize(Decimal("0.01"))
    assert before > 0
    # Once: another look, or another process reading the state, does not split again.
    assert b.positions()["VTI"].qty == Decimal("20.000000002")
    again = SimulatedBroker(SimulatedConfig(state_file=tmp_path / "state.json",
                                            corporate_actions_file=tmp_path / "actions.json"), now=lambda: day[0])
    assert again.positions()["VTI"].qty == Decimal("20.000000002")
    listed = b.corporate_actions(["VTI", "BND"], date(2026, 3, 1), date(2026, 3, 5))
    assert [a.id for a in listed] == ["fs-1"]


def test_prices_from_a_file_are_quoted_prices_and_never_adjusted(tmp_path):
    prices = tmp_path / "prices.csv"
    prices.write_text("symbol,price\nVTI,150.00\n")
    day = [datetime(2026, 3, 5, 10, 0, tzinfo=NY)]
    b = broker(tmp_path, {"forward_splits": [SPLIT]}, day, prices_file=prices,
               starting_positions={"VTI": Decimal("1")})
    assert b.positions()["VTI"].qty == Decimal(2)
    assert b.latest_prices(["VTI"]) == {"VTI": Decimal("150.00")}


def test_a_cash_merger_turns_the_position_into_cash_rounded_down_to_the_cent(tmp_path):
    day = [datetime(2026, 3, 9, 10, 0, tzinfo=NY)]
    b = broker(tmp_path, {"cash_mergers": [{"id": "cm", "acquiree_symbol": "CCC", "acquiree_cusip": "c",
                                            "rate": "10.005", "process_date": "2026-03-09",
                                            "effective_date": "2026-03-09"}]},
               day, starting_cash=Decimal("100.00"), starting_positions={"CCC": Decimal("3.5")})
    assert "CCC" not in b.positions()
    assert b.balance().cash == Decimal("135.01")                # 100 + floor(35.0175)


def test_a_rename_moves_the_position_and_the_new_symbol_continues_the_old_walk(tmp_path):
    day = [datetime(2026, 3, 5, 10, 0, tzinfo=NY)]
    b = broker(tmp_path, {"name_changes": [{"id": "nc", "old_symbol": "SQ", "old_cusip": "a", "new_symbol": "XYZ",
                                            "new_cusip": "b", "process_date": "2026-03-05"}]},
               day, starting_positions={"SQ": Decimal("4")})
    assert {s: p.qty for s, p in b.positions().items()} == {"XYZ": Decimal(4)}
    assert b.latest_prices(["XYZ"])["XYZ"] == b._walk_price("SQ", date(2026, 3, 5))


def test_a_reverse_split_with_cash_in_lieu_keeps_whole_shares_and_pays_the_fraction(tmp_path):
    """`cash_in_lieu` (pies's own field): dollars per new share for the fraction the broker
    does not issue; a negative one is refused naming the field."""
    day = [datetime(2026, 3, 5, 10, 0, tzinfo=NY)]
    rs = {"id": "rs-1", "symbol": "BND", "old_rate": 10, "new_rate": 1, "ex_date": "2026-03-05",
          "process_date": "2026-03-05", "cash_in_lieu": "725.10"}
    b = broker(tmp_path, {"reverse_splits": [rs]}, day, starting_positions={"BND": Decimal("123.456789")},
               starting_cash=Decimal("10.00"))
    # 12.3456789 new shares: 12 kept, 0.3456789 x $725.10 = $250.6517... paid, rounded down.
    assert b.positions()["BND"].qty == Decimal(12)
    assert b.balance().cash == Decimal("260.65")
    with pytest.raises(ActionsFileError, match=r"reverse_splits\[0\]\.cash_in_lieu: must be positive"):
        parse_actions(json.dumps({"corporate_actions": {"reverse_splits": [{**rs, "cash_in_lieu": -1}]}}), "a.json")
