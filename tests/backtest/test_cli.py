"""`pies backtest` end to end: the JSON contract, every metric recomputed from the printed
curve, comparisons, the grid over processes, the chart, and bad input in one line."""

from __future__ import annotations

import json
import math
import random
import statistics
from datetime import date, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner

from engine.shell.cli import main

POLICY = '''pie "Sixty" { AAA 60% BBB 40% }
pie "Half" { AAA 50% BBB 50% }
pie "Three" { AAA 40% pie "Rest" 60% { BBB 50% CCC 50% } }
'''
KEYS = {"pie", "rules", "from", "to", "start", "final_value", "deposits", "withdrawals", "dividends", "metrics", "curve"}
METRICS = {"twr", "cagr", "mwr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "turnover", "cash_drag",
           "orders", "skipped_orders"}


@pytest.fixture
def files(tmp_path):
    rng = random.Random(7)
    price = {"AAA": Decimal("100.00"), "BBB": Decimal("40.00")}
    lines = ["date,AAA,BBB"]
    d = date(2023, 1, 2)
    while d <= date(2024, 6, 28):
        if d.weekday() < 5:
            bbb = "" if d == date(2023, 5, 10) else str(price["BBB"])          # one day without a close
            lines.append(f"{d},{price['AAA']},{bbb}")
            price = {s: (p * (1 + Decimal(rng.randint(-250, 260)) / 10_000)).quantize(Decimal("0.01"))
                     for s, p in price.items()}
            if d == date(2023, 9, 14):
                price["AAA"] = (price["AAA"] / 2).quantize(Decimal("0.01"))   # the 2:1 split of the next day
        d += timedelta(days=1)
    (tmp_path / "prices.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "actions.csv").write_text("date,symbol,kind,value\n2023-09-15,AAA,split,2\n"
                                          "2023-03-15,AAA,dividend,0.42\n2024-03-15,BBB,dividend,0.3\n")
    (tmp_path / "policy.pie").write_text(POLICY)
    return tmp_path


def run(*args, code=0):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


def backtest(files, *extra, code=0):
    return run("backtest", files / "policy.pie", "--prices", files / "prices.csv", "--actions",
               files / "actions.csv", *extra, code=code)


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def recomputed(doc: dict, bought_and_sold: int | None) -> dict:
    """The metrics by the book, from the printed curve and flows only."""
    start = cents(doc["start"])
    curve = doc["curve"]
    values = [cents(p["value"]) for p in curve]
    flows = [cents(p["flow"]) for p in curve]
    rs, prev = [], start
    for v, f in zip(values, flows):
        rs.append(v / (prev + f) - 1)
        prev = v
    first, last = date.fromisoformat(curve[0]["date"]), date.fromisoformat(curve[-1]["date"])
    days = (last - first).days + 1
    twr = math.prod(1 + r for r in rs) - 1
    cagr = (1 + twr) ** (365.25 / days) - 1
    sd = statistics.stdev(rs)
    index, peak, mdd = 1.0, 1.0, 0.0
    for r in rs:
        index *= 1 + r
        peak = max(peak, index)
        mdd = min(mdd, index / peak - 1)
    out = {"twr": twr, "cagr": cagr, "volatility": sd * math.sqrt(252),
           "sharpe": statistics.mean(rs) / sd * math.sqrt(252),
           "sortino": statistics.mean(rs) / math.sqrt(statistics.mean([min(r, 0) ** 2 for r in rs])) * math.sqrt(252),
           "max_drawdown": mdd, "calmar": cagr / abs(mdd),
           "cash_drag": statistics.mean([cents(p["cash"]) / cents(p["value"]) for p in curve])}
    if bought_and_sold is not None:
        out["turnover"] = bought_and_sold / 2 / statistics.mean(values) / (days / 365.25)
    # mwr: the printed rate nets the start, the flows and the final value to zero.
    rate = doc["metrics"]["mwr"]
    npv = -start + sum(-f / (1 + rate) ** ((date.fromisoformat(p["date"]) - first).days / 365.25)
                       for p, f in zip(curve, flows)) + values[-1] / (1 + rate) ** ((last - first).days / 365.25)
    assert abs(npv) < 0.01 * (start + sum(abs(f) for f in flows)) / 1e4, npv
    return out


def test_json_is_the_contract_and_every_metric_recomputes_from_the_curve(files):
    r = backtest(files, "--pie", "Sixty", "--from", "2023-01-01", "--to", "2024-06-30", "--deposit", "monthly:500",
                 "--start", "10,000", "--json")
    doc = json.loads(r.stdout)
    assert set(doc) == KEYS and set(doc["metrics"]) == METRICS
    assert (doc["pie"], doc["rules"], doc["from"], doc["to"], doc["start"]) == \
        ("Sixty", "m1", "2023-01-02", "2024-06-28", "10000.00")
    assert doc["curve"][0] == {"date": "2023-01-02", "value": doc["curve"][0]["value"], "cash": "0.00", "flow": "0.00"}
    assert all(isinstance(doc[k], str) for k in ("final_value", "deposits", "withdrawals", "dividends"))
    assert doc["final_value"] == doc["curve"][-1]["value"]
    assert doc["deposits"] == "8500.00"                  # Feb 2023 .. Jun 2024: 17 months after the start
    assert sum(cents(p["flow"]) for p in doc["curve"]) == 850_000
    assert cents(doc["dividends"]) > 0
    # m1 deposits and dividends only buy: what was bought is what came in less the cash left.
    bought = cents(doc["start"]) + cents(doc["deposits"]) + cents(doc["dividends"]) - cents(doc["curve"][-1]["cash"])
    for name, value in recomputed(doc, bought).items():
        assert doc["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert doc["metrics"]["orders"] > 17 and doc["metrics"]["skipped_orders"] >= 0


def test_withdrawals_and_drift_rebalances_recompute_too(files):
    r = backtest(files, "--pie", "Half", "--rules", "drift-5", "--from", "2023-01-01", "--to", "2024-06-30",
                 "--withdraw", "quarterly:300", "--deposit", "monthly:100", "--json")
    doc = json.loads(r.stdout)
    assert doc["withdrawals"] == "1500.00" and doc["deposits"] == "1700.00"
    flows = {p["date"]: p["flow"] for p in doc["curve"] if p["flow"] != "0.00"}
    assert flows["2023-04-03"] == "-200.00" and flows["2023-02-01"] == "100.00"    # both on one day: the difference
    for name, value in recomputed(doc, None).items():
        assert doc["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_several_pies_side_by_side_in_one_table_one_chart_and_the_same_over_jobs(files):
    args = ("--pie", "Sixty", "--pie", "Three", "--from", "2023-06-01", "--to", "2023-12-29", "--deposit", "weekly:50")
    r = run("backtest", files / "policy.pie", "--prices", files / "prices.csv", *args, code=2)
    assert "no price column for CCC" in r.output
    (files / "prices.csv").write_text("\n".join(line + ("," + line.split(",")[1] if i else ",CCC") for i, line in
                                                enumerate((files / "prices.csv").read_text().splitlines())) + "\n")
    table = backtest(files, *args, "--chart", files / "chart.svg")
    assert "Sixty" in table.output and "Three" in table.output and "max drawdown" in table.output
    svg = (files / "chart.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "Three" in svg and "drawdown" in svg
    one = json.loads(backtest(files, *args, "--rules", "m1", "--rules", "monthly", "--json").stdout)
    many = json.loads(backtest(files, *args, "--rules", "m1", "--rules", "monthly", "--json", "--jobs", "2").stdout)
    assert [(b["pie"], b["rules"]) for b in one["backtests"]] == \
        [("Sixty", "m1"), ("Sixty", "monthly"), ("Three", "m1"), ("Three", "monthly")]
    assert many == one


@pytest.mark.parametrize("what, edit, expected", [
    ("date out of order", lambda p, a: p.replace("2023-01-04,", "2023-01-02,", 1),
     "prices.csv:4: date 2023-01-02 is out of order (after 2023-01-03)"),
    ("negative price", lambda p, a: p.replace("2023-01-05,", "2023-01-05,-", 1),
     "prices.csv:5: AAA price '-"),
    ("not a number", lambda p, a: p.replace("2023-01-05,", "2023-01-05,1e3x", 1), "prices.csv:5: AAA price '1e3x"),
    ("bad date", lambda p, a: p.replace("2023-01-05,", "2023-02-30,", 1), "prices.csv:5: date '2023-02-30' is not a real day"),
])
def test_bad_prices_are_one_line_naming_file_line_and_value(files, what, edit, expected):
    (files / "prices.csv").write_text(edit((files / "prices.csv").read_text(), None))
    r = backtest(files, "--pie", "Sixty", "--from", "2023-01-01", "--to", "2023-03-01", code=2)
    assert expected in r.output, what
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_bad_actions_options_and_missing_columns_are_one_line(files):
    (files / "actions.csv").write_text("date,symbol,kind,value\n2023-03-15,AAA,spinoff,1\n")
    r = backtest(files, "--pie", "Sixty", "--from", "2023-01-01", "--to", "2023-03-01", code=2)
    assert "actions.csv:2: unknown action kind 'spinoff'" in r.output and len(r.output.strip().splitlines()) == 1
    (files / "actions.csv").write_text("date,symbol,kind,value\n2023-03-15,AAA,split,-2\n")
    r = backtest(files, "--pie", "Sixty", "--from", "2023-01-01", "--to", "2023-03-01", code=2)
    assert "actions.csv:2: split '-2' is negative" in r.output
    (files / "actions.csv").write_text("date,symbol,kind,value\n")
    r = backtest(files, "--pie", "Sixty", "--from", "2024-03-01", "--to", "2024-01-01", code=2)
    assert "--from 2024-03-01 is after --to 2024-01-01" in r.output and "Traceback" not in r.output
    r = backtest(files, "--pie", "Three", "--from", "2023-01-01", "--to", "2023-03-01", code=2)
    assert "prices.csv:1: no price column for CCC, a symbol of pie 'Three'" in r.output
    for opt, value, said in (("--deposit", "fortnightly:5", "--deposit 'fortnightly:5'"),
                             ("--deposit", "monthly:-5", "write the amount without a sign"),
                             ("--start", "10,00", "commas only separate thousands"),
                             ("--min-order", "0.001", "fractions of a cent")):
        r = backtest(files, "--pie", "Sixty", "--from", "2023-01-01", "--to", "2023-03-01", opt, value, code=2)
        assert said in r.output and len(r.output.strip().splitlines()) == 1, r.output
    r = backtest(files, "--pie", "Nope", "--from", "2023-01-01", "--to", "2023-03-01", code=2)
    assert 'has no top-level pie named "Nope"' in r.output


def test_the_sample_history_shipped_by_a_package_runs_offline():
    pytest.importorskip("bokeh_sampledata")
    r = run("backtest", "rules/examples/stocks.pie", "--pie", "Big three", "--prices", "sample:stocks",
            "--actions", "sample:stocks", "--from", "2005-02-01", "--to", "2005-03-31", "--json")
    doc = json.loads(r.stdout)
    assert doc["from"] == "2005-02-01" and doc["to"] == "2005-03-31"
    split_day = next(i for i, p in enumerate(doc["curve"]) if p["date"] == "2005-02-28")
    before, after = (cents(doc["curve"][i]["value"]) for i in (split_day - 1, split_day))
    assert abs(after / before - 1) < 0.05            # AAPL's close halves that day; its shares double
