"""`pies check`, `pies fmt` and `pies show` as an analyst uses them."""

import json
from pathlib import Path

from click.testing import CliRunner

import rules
from engine.shell.cli import main

EXAMPLES = Path(rules.__file__).parent / "examples"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_check_passes_on_the_examples():
    r = run("check", *sorted(EXAMPLES.glob("*.pie")))
    assert r.exit_code == 0, r.output
    assert "growth.pie: 3 pies, 1 rule sets" in r.output


def test_check_reports_every_error_with_position_and_exits_1(tmp_path):
    bad = tmp_path / "bad.pie"
    bad.write_text('pie "P" { A 50% B 40% }\nrules "r" { on deposit buy sideways }\n')
    r = run("check", EXAMPLES / "seed.pie", bad)
    assert r.exit_code == 1
    assert f"{bad}:1:5: error: the slices of pie \"P\" add up to 90%" in r.output
    assert f"{bad}:2:24: error: unknown action 'buy sideways'" in r.output
    assert "2 errors" in r.output
    assert "Traceback" not in r.output


def test_check_json(tmp_path):
    bad = tmp_path / "bad.pie"
    bad.write_text('pie "P" { A 50% }')
    r = run("check", "--json", bad)
    assert r.exit_code == 1
    assert json.loads(r.stdout) == {"errors": [{"file": str(bad), "line": 1, "column": 5,
                                               "message": 'the slices of pie "P" add up to 50%, not 100% (50% missing)'}]}


def test_fmt_prints_and_writes_canonical_form(tmp_path):
    f = tmp_path / "p.pie"
    f.write_text('pie "T" equal {AAPL MSFT   NVDA}  # tech\n')
    r = run("fmt", f)
    assert r.exit_code == 0
    assert r.stdout == ('pie "T" equal {\n'
                        "    AAPL  # equal: 33.34%\n"
                        "    MSFT  # equal: 33.33%\n"
                        "    NVDA  # equal: 33.33%\n"
                        "}  # tech\n")
    assert run("fmt", "--write", f).exit_code == 0
    assert f.read_text() == r.stdout


def test_fmt_refuses_a_broken_file_and_changes_nothing(tmp_path):
    f = tmp_path / "p.pie"
    f.write_text('pie "T" { A 40 }')
    r = run("fmt", "--write", f)
    assert r.exit_code == 1 and ":1:13: error:" in r.output
    assert f.read_text() == 'pie "T" { A 40 }'


def test_show_prints_effective_weights():
    r = run("show", EXAMPLES / "growth.pie", "--pie", "Blend")
    assert r.exit_code == 0
    assert "AAPL  target 33.34%   of portfolio 10.002%" in r.output
    assert "VTI  target 70.00%   of portfolio 70%" in r.output


def test_show_unknown_pie_is_one_clear_line():
    r = run("show", EXAMPLES / "growth.pie", "--pie", "Nope")
    assert r.exit_code == 2
    assert 'has no top-level pie named "Nope"' in r.output and "Traceback" not in r.output


def test_fmt_formats_a_file_that_does_not_add_up_and_says_so(tmp_path):
    f = tmp_path / "p.pie"
    f.write_text('pie "P" {A 50%   B 40%}\n')
    r = run("fmt", f, "--write")
    assert r.exit_code == 0, r.output
    assert f.read_text() == 'pie "P" {\n    A 50%\n    B 40%\n}\n'
    assert "is formatted, but it does not compile yet (1 problem)" in r.output
    assert f"{f}:1:5: error: the slices of pie \"P\" add up to 90%" in r.output
    f.write_text('pie "P" { A 50%\n')
    assert run("fmt", f).exit_code == 1                         # does not parse: left alone


def test_check_warns_about_an_empty_file(tmp_path):
    f = tmp_path / "empty.pie"
    f.write_text("\n# to do\n")
    r = run("check", f)
    assert r.exit_code == 0 and f"{f}:1:1: warning: the file is empty" in r.output
    assert json.loads(run("check", f, "--json").output)["warnings"] == [f"{f}:1:1: warning: the file is empty: "
                                                                        f"no pies and no rules"]
