"""Every example of the seed, with numbers chosen to agree with its stated results,
run through `pies preview --json` as a user would."""

import json

import pytest
from click.testing import CliRunner

from engine.shell.cli import main

FIVE = 'pie "P" equal { A B C D E }'
NESTED = 'pie "P" { A 20% B 20% C 20% D 20% pie "Pie 1" 20% { E 50% F 50% } }'


@pytest.fixture
def preview(tmp_path):
    def run(policy: str, holdings: dict, *events: str, rules: str | None = None) -> dict:
        pfile = tmp_path / "p.pie"
        pfile.write_text(policy)
        hfile = tmp_path / "h.json"
        hfile.write_text(json.dumps({k: str(v) for k, v in holdings.items()}))
        args = ["preview", str(pfile), "--pie", "P", "--holdings", str(hfile), "--json"]
        for e in events:
            args += ["--event", e]
        if rules:
            args += ["--rules", rules]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)
    return run


def money(d: dict) -> dict:
    return {k: f"{v:.2f}" for k, v in d.items()}


# --- Initial account funding ----------------------------------------------------------------

def test_initial_funding_1_five_equal_100(preview):
    out = preview(FIVE, {}, "deposit:100")
    assert out["trades"] == money(dict.fromkeys("ABCDE", 20))
    assert out["orders"] == [{"symbol": s, "side": "buy", "notional": "20.00"} for s in "ABCDE"]
    assert out["deferred"] == []


def test_initial_funding_2_five_equal_50000(preview):
    out = preview(FIVE, {}, "deposit:50000")
    assert out["trades"] == money(dict.fromkeys("ABCDE", 10_000))


def test_initial_funding_3_nested_100000(preview):
    out = preview(NESTED, {}, "deposit:100000")
    assert out["trades"] == money({"A": 20_000, "B": 20_000, "C": 20_000, "D": 20_000,
                                   "Pie 1/E": 10_000, "Pie 1/F": 10_000})


# --- Rebalance ------------------------------------------------------------------------------

def test_rebalance_1_all_slices_to_22(preview):
    out = preview(FIVE, {"A": 30, "B": 25, "C": 20, "D": 18, "E": 17}, "rebalance")
    assert out["trades"] == money({"A": -8, "B": -3, "C": 2, "D": 4, "E": 5})
    assert out["holdings_after"] == money(dict.fromkeys("ABCDE", 22))
    assert [(o["symbol"], o["side"]) for o in out["orders"]] == [
        ("A", "sell"), ("B", "sell"), ("C", "buy"), ("D", "buy"), ("E", "buy")]


def test_rebalance_2_whole_nested_portfolio_recursively(preview):
    out = preview(NESTED, {"A": 25_000, "B": 18_000, "C": 22_000, "D": 15_000,
                           "Pie 1/E": 12_000, "Pie 1/F": 8_000}, "rebalance")
    assert out["holdings_after"] == money({"A": 20_000, "B": 20_000, "C": 20_000, "D": 20_000,
                                           "Pie 1/E": 10_000, "Pie 1/F": 10_000})
    assert out["trades"] == money({"A": -5_000, "B": 2_000, "C": -2_000, "D": 5_000,
                                   "Pie 1/E": -2_000, "Pie 1/F": 2_000})


def test_rebalance_3_only_the_nested_pie(preview):
    holdings = {"A": 25_000, "B": 15_000, "C": 22_000, "D": 18_000, "Pie 1/E": 7_500, "Pie 1/F": 12_500}
    out = preview(NESTED, holdings, "rebalance:Pie 1")
    assert out["trades"] == money({"Pie 1/E": 2_500, "Pie 1/F": -2_500})
    assert out["orders"] == [{"symbol": "F", "side": "sell", "notional": "2500.00"},
                             {"symbol": "E", "side": "buy", "notional": "2500.00"}]


# --- Cash inflows ---------------------------------------------------------------------------

def test_inflow_1_user_1_enough_to_reach_targets(preview):
    out = preview(FIVE, {"A": 20_000, "B": 25_000, "C": 15_000, "D": 22_000, "E": 18_000}, "deposit:25000")
    assert out["trades"] == money({"A": 5_000, "C": 10_000, "D": 3_000, "E": 7_000})   # B: no trade
    assert out["holdings_after"] == money(dict.fromkeys("ABCDE", 25_000))


def test_inflow_1_user_2_most_underweight_first(preview):
    out = preview(FIVE, {"A": 15_000, "B": 25_000, "C": 20_000, "D": 22_500, "E": 17_500}, "deposit:10000")
    # A (most underweight) first, then E, then C, to a common level of 20,833.33; the odd cent to A.
    assert out["trades"] == {"A": "5833.34", "C": "833.33", "E": "3333.33"}
    assert "B" not in out["trades"] and "D" not in out["trades"]


def test_inflow_2_flows_into_the_nested_pie(preview):
    out = preview(NESTED, {"A": 20_000, "B": 15_000, "C": 25_000, "D": 15_000,
                           "Pie 1/E": 15_000, "Pie 1/F": 10_000}, "deposit:50000")
    assert out["trades"] == money({"A": 10_000, "B": 15_000, "C": 5_000, "D": 15_000, "Pie 1/F": 5_000})
    after = out["holdings_after"]
    assert after["Pie 1/E"] == after["Pie 1/F"] == "15000.00" and after["A"] == "30000.00"


def test_inflow_3_does_not_flow_into_the_nested_pie(preview):
    out = preview(NESTED, {"A": 20_000, "B": 15_000, "C": 20_000, "D": 20_000,
                           "Pie 1/E": 12_500, "Pie 1/F": 12_500}, "deposit:25000")
    assert out["trades"] == money({"A": 5_000, "B": 10_000, "C": 5_000, "D": 5_000})


def test_dividends_are_inflows_too(preview):
    out = preview(FIVE, {"A": 15_000, "B": 25_000, "C": 20_000, "D": 22_500, "E": 17_500}, "dividend:10000")
    assert out["trades"] == {"A": "5833.34", "C": "833.33", "E": "3333.33"}


# --- Withdrawals ----------------------------------------------------------------------------

def test_withdrawal_1_user_1_enough_to_reach_targets(preview):
    out = preview(FIVE, {"A": 20_000, "B": 16_000, "C": 18_000, "D": 21_000, "E": 25_000}, "withdraw:25000")
    assert out["trades"] == money({"A": -5_000, "B": -1_000, "C": -3_000, "D": -6_000, "E": -10_000})
    assert out["holdings_after"] == money(dict.fromkeys("ABCDE", 15_000))
    assert all(o["side"] == "sell" for o in out["orders"])


def test_withdrawal_1_user_2_most_overweight_first(preview):
    out = preview(FIVE, {"A": 15_000, "B": 25_000, "C": 20_000, "D": 22_500, "E": 17_500}, "withdraw:10000")
    assert out["trades"] == {"B": "-5833.34", "C": "-833.33", "D": "-3333.33"}


def test_withdrawal_2_reaches_into_the_nested_pie(preview):
    out = preview(NESTED, {"A": 16_000, "B": 20_000, "C": 15_000, "D": 24_000,
                           "Pie 1/E": 15_000, "Pie 1/F": 10_000}, "withdraw:25000")
    assert out["trades"] == money({"A": -1_000, "B": -5_000, "D": -9_000, "Pie 1/E": -7_500, "Pie 1/F": -2_500})
    assert out["holdings_after"]["C"] == "15000.00"


def test_withdrawal_3_does_not_touch_the_nested_pie(preview):
    out = preview(NESTED, {"A": 25_000, "B": 22_000, "C": 18_000, "D": 20_000,
                           "Pie 1/E": 7_500, "Pie 1/F": 7_500}, "withdraw:10000")
    assert out["trades"] == money({"A": -6_000, "B": -3_000, "D": -1_000})


# --- Changing targets (example 1, four steps) -----------------------------------------------

NEW_TARGETS = 'pie "P" { A 10% B 10% C 10% D 10% E 60% }'


def test_changing_targets_1_four_steps(preview):
    start = dict.fromkeys("ABCDE", 20_000)
    # 1. the target change alone trades nothing
    step1 = preview(NEW_TARGETS, start)
    assert step1["trades"] == {} and step1["orders"] == []
    # 2. a $20,000 deposit buys only E
    step2 = preview(NEW_TARGETS, start, "deposit:20000")
    assert step2["trades"] == money({"E": 20_000})
    # 3. a $20,000 withdrawal sells $5,000 each of A, B, C and D
    step3 = preview(NEW_TARGETS, step2["holdings_after"], "withdraw:20000")
    assert step3["trades"] == money({"A": -5_000, "B": -5_000, "C": -5_000, "D": -5_000})
    # 4. a rebalance reaches the new targets
    step4 = preview(NEW_TARGETS, step3["holdings_after"], "rebalance")
    assert step4["holdings_after"] == money({"A": 10_000, "B": 10_000, "C": 10_000, "D": 10_000, "E": 60_000})


# --- Adding slices (examples 2 and 3, four steps each) ---------------------------------------

def test_adding_slices_2_a_sixth_security_at_50_percent(preview):
    policy = 'pie "P" { A 10% B 10% C 10% D 10% E 10% F 50% }'
    start = dict.fromkeys("ABCDE", 20)
    assert preview(policy, start)["trades"] == {}
    step2 = preview(policy, start, "deposit:10")
    assert step2["trades"] == money({"F": 10})
    step3 = preview(policy, step2["holdings_after"], "withdraw:20")
    assert step3["trades"] == money(dict.fromkeys("ABCDE", -4))
    step4 = preview(policy, step3["holdings_after"], "rebalance")
    assert step4["holdings_after"] == money({"A": 9, "B": 9, "C": 9, "D": 9, "E": 9, "F": 45})


def test_adding_slices_3_a_new_nested_pie(preview):
    policy = 'pie "P" { A 20% B 20% C 20% D 20% pie "New Pie" 20% { E 50% F 50% } }'
    start = dict.fromkeys("ABCD", 25)
    step1 = preview(policy, start)
    assert step1["trades"] == {} and step1["holdings_after"]["New Pie/E"] == "0.00"
    step2 = preview(policy, start, "deposit:10")
    assert step2["trades"] == money({"New Pie/E": 5, "New Pie/F": 5})
    step3 = preview(policy, step2["holdings_after"], "withdraw:20")
    assert step3["trades"] == money(dict.fromkeys("ABCD", -5))
    step4 = preview(policy, step3["holdings_after"], "rebalance")
    assert step4["holdings_after"] == money({"A": 18, "B": 18, "C": 18, "D": 18, "New Pie/E": 9, "New Pie/F": 9})


# --- Liquidations ---------------------------------------------------------------------------

def test_liquidation_4_removed_security_funds_the_others(preview):
    out = preview('pie "P" equal { A B C D }', dict.fromkeys("ABCDE", 20_000))
    assert out["trades"] == money({"A": 5_000, "B": 5_000, "C": 5_000, "D": 5_000, "E": -20_000})
    assert out["orders"][0] == {"symbol": "E", "side": "sell", "notional": "20000.00"}


def test_liquidation_4_zero_target_is_the_same_as_removal(preview):
    out = preview('pie "P" { A 25% B 25% C 25% D 25% E 0% }', dict.fromkeys("ABCDE", 20_000))
    assert out["trades"] == money({"A": 5_000, "B": 5_000, "C": 5_000, "D": 5_000, "E": -20_000})
    assert out["holdings_after"]["E"] == "0.00"


def test_liquidation_5_inside_a_nested_pie_leaves_the_top_level_unchanged(preview):
    holdings = {"A": 20_000, "B": 20_000, "C": 20_000, "D": 20_000,
                "Pie 1/E": 6_000, "Pie 1/F": 7_000, "Pie 1/G": 7_000}
    out = preview(NESTED, holdings)
    assert out["trades"] == money({"Pie 1/G": -7_000, "Pie 1/E": 4_000, "Pie 1/F": 3_000})
    after = out["holdings_after"]
    assert [after[s] for s in "ABCD"] == ["20000.00"] * 4
    assert after["Pie 1/E"] == after["Pie 1/F"] == "10000.00"


def test_removing_a_held_nested_pie_sends_proceeds_to_the_portfolio(preview):
    holdings = {"A": 20_000, "B": 20_000, "C": 20_000, "D": 20_000, "Pie 1/E": 10_000, "Pie 1/F": 10_000}
    out = preview('pie "P" equal { A B C D }', holdings)
    assert out["trades"] == money({"Pie 1/E": -10_000, "Pie 1/F": -10_000,
                                   "A": 5_000, "B": 5_000, "C": 5_000, "D": 5_000})


# --- Bad input: exit 2, one clear line, no traceback -----------------------------------------

@pytest.mark.parametrize("holdings, event, says", [
    ('{"A": "100"}', "deposit:-5", "positive"),
    ('{"A": "100"}', "deposit:abc", "not a number"),
    ('{"A": "100"}', "deposit:1.005", "fractions of a cent"),
    ('{"A": "100"}', "withdraw:500", "more than the account holds"),
    ('{"A": "100"}', "rebalance:Nope", "not a pie"),
    ('{"A": "100"}', "buy:5", "use deposit:AMOUNT"),
    ('{"A": ', "deposit:5", "not valid JSON"),
    ('{"A": "-3"}', "deposit:5", "cannot be negative"),
    ('{"A": "lots"}', "deposit:5", "not a dollar amount"),
    ('["A"]', "deposit:5", "must be a JSON object"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, holdings, event, says):
    pfile = tmp_path / "p.pie"
    pfile.write_text(FIVE)
    hfile = tmp_path / "h.json"
    hfile.write_text(holdings)
    r = CliRunner().invoke(main, ["preview", str(pfile), "--pie", "P", "--holdings", str(hfile),
                                  "--event", event, "--json"])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], r.output
    assert "Traceback" not in r.output
