"""Bounded policy text (issue 19, item 4): the hostile files that once hung the compiler,
`pies fmt` and `pies show`, ran them out of memory or into RecursionError, each end in a
clear PolicyError (or compile) in a child process held to a memory and CPU limit.

The limits are safety nets, not speed assertions: a child that loops or swells is killed
(RLIMIT_CPU, RLIMIT_AS) and the test fails; bench/policy_limits.py prints the figures.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import rules
from rules import vocabulary as vocab
from language import hostile

MEMORY = 1 << 30            # bytes of address space a child may take
CPU_SECONDS = 20            # CPU time a child may burn (load on the machine does not count)
WALL_SECONDS = 180          # the last resort, should the child sleep
REPO = Path(__file__).resolve().parents[2]

# The child compiles (or formats) a file, or runs the CLI, and says how it ended as JSON.
_CHILD = r"""
import json, sys, traceback
import rules
what, path = sys.argv[1], sys.argv[2]
try:
    if what == "compile":
        policy = rules.compile_file(path)
        print(json.dumps({"ok": True, "pies": len(policy.pies), "rules": len(policy.rules)}))
    else:
        rules.format_file(path)
        print(json.dumps({"ok": True}))
except rules.PolicyError as e:
    print(json.dumps({"ok": False, "errors": [d.as_dict() for d in e.diagnostics], "text": e.render()}))
"""


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def _child(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, preexec_fn=_limits, timeout=WALL_SECONDS,
                              cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args[-2:]} still ran after {WALL_SECONDS} s")
    assert done.returncode >= 0, f"killed by signal {-done.returncode} (CPU or memory limit): {done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


def run(tmp_path: Path, text: str, what: str = "compile") -> dict:
    path = tmp_path / "hostile.pie"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size <= vocab.MAX_FILE_BYTES     # within the file limit: the other limits must hold
    done = _child([sys.executable, "-c", _CHILD, what, str(path)])
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def cli(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "hostile.pie"
    path.write_text(text, encoding="utf-8")
    return _child([sys.executable, "-c", "from engine.shell.cli import main; main()", args[0], str(path), *args[1:]])


def test_8_levels_of_50_pies_each_using_50_is_refused_where_the_expansion_passes_the_cap(tmp_path):
    text = hostile.fanout(8, 50, 50)
    assert len(text) > 300_000
    out = run(tmp_path, text)
    assert not out["ok"]
    first = out["errors"][0]
    # Level 8 holds 50 slices, level 7 50 x 51, level 6 50 x 2,551: the first past 20,000.
    assert (first["line"], first["column"]) == (13001, 5)
    assert first["message"] == ('pie "L6P0" has 127,550 slices once every `use` is expanded; '
                                f"the limit is {vocab.MAX_PIE_SLICES:,}")
    assert {e["message"].split('"')[1][:2] for e in out["errors"]} == {"L6"}   # above them: not repeated
    assert len(out["errors"]) == 50


def test_check_and_fmt_of_the_fanout_end_with_the_error(tmp_path):
    text = hostile.fanout(8, 50, 50)
    check = cli(tmp_path, text, "check")
    assert check.returncode == 1 and "has 127,550 slices once every `use` is expanded" in check.stderr
    fmt = cli(tmp_path, text, "fmt")
    assert fmt.returncode == 0 and fmt.stdout.startswith('pie "L1P0" {\n    use "L2P0"  2%\n')
    assert "does not compile yet" in fmt.stderr and "the limit is 20,000" in fmt.stderr


def test_a_small_file_that_expands_to_a_million_slices_is_refused_by_check_and_show(tmp_path):
    text = hostile.fanout(6, 10, 10)
    assert len(text) < 12_000
    out = run(tmp_path, text)
    assert out["errors"][0]["message"].startswith('pie "L2P0" has 111,110 slices once every `use` is expanded')
    show = cli(tmp_path, text, "show", "--pie", "L1P0")
    assert show.returncode == 1 and "111,110 slices" in show.stderr and show.stdout == ""


def test_show_prints_the_largest_pie_within_the_cap(tmp_path):
    text = hostile.fanout(5, 7, 7)           # 7 + 7*8 + ... = 19,607 slices below L1P0, 4 levels deep
    policy = rules.compile_text(text)
    assert sum(1 for _ in policy.pies["L1P0"].walk()) == 19_607 <= vocab.MAX_PIE_SLICES
    show = cli(tmp_path, text, "show", "--pie", "L1P0")
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    assert len(lines) == 1 + 19_607
    # 7 equal slices: 14.29% for the first, 14.28% for the rest; S0 of L5P0 reached by always the first
    share = Decimal("0.1429") ** 5 * 100
    assert lines[5].endswith(f"S0  target 14.29%   of portfolio {share.normalize():f}%")


def test_5000_nested_pies_are_refused_at_the_brace_past_the_nesting_limit(tmp_path):
    for what in ("compile", "format"):
        out = run(tmp_path, hostile.nested(5000), what)
        (e,) = out["errors"]
        assert (e["line"], e["column"]) == (vocab.MAX_NESTING + 1, 16 if vocab.MAX_NESTING + 1 < 100 else 17)
        assert e["message"] == f"blocks nest at most {vocab.MAX_NESTING} deep; this '{{' opens block {vocab.MAX_NESTING + 1}"


def test_an_extends_chain_of_18000_is_refused_where_it_passes_the_limit(tmp_path):
    n = 18_000
    out = run(tmp_path, hostile.extends_chain(n))
    (e,) = out["errors"]
    k = n - 1 - vocab.MAX_EXTENDS       # r{n-1} begins a chain of 1, r{k} one of MAX_EXTENDS + 1
    assert e["line"] == k + 1 and e["message"] == (
        f'rules "r{k}" begin a chain of {vocab.MAX_EXTENDS + 1} rule sets in this file, each extending the next; '
        f"the limit is {vocab.MAX_EXTENDS}")


def test_a_use_chain_of_18000_is_refused_where_it_nests_too_deep(tmp_path):
    n = 18_000
    out = run(tmp_path, hostile.use_chain(n))
    (e,) = out["errors"]
    k = n - 2 - vocab.MAX_DEPTH          # P{k} uses P{k+1}, which has MAX_DEPTH levels below it
    assert e["line"] == k + 1 and e["message"] == (
        f'using "P{k + 1}" here nests pies {vocab.MAX_DEPTH + 1} levels deep; the limit is {vocab.MAX_DEPTH}')


def test_a_use_cycle_of_18000_is_named_once_and_shortened(tmp_path):
    out = run(tmp_path, hostile.use_chain(18_000, cycle=True))
    (e,) = out["errors"]
    assert e["line"] == 18_000 and e["message"] == (
        'a pie cannot contain itself: "P0" -> "P1" -> "P2" -> ... (17995 more) -> "P17998" -> "P17999" -> "P0"')


def test_140000_slices_on_one_line_end_in_bounded_errors_quoting_a_window(tmp_path):
    n = 140_000
    out = run(tmp_path, hostile.one_line(n))
    errors = out["errors"]
    assert errors[0]["message"] == f'pie "P" has {n} slices; the limit is {vocab.MAX_SLICES_PER_PIE} per pie'
    assert len(errors) == vocab.MAX_ERRORS + 1
    assert errors[-1]["message"] == (f"too many errors: this one and any more are not shown "
                                     f"(the first {vocab.MAX_ERRORS} found are)")
    assert max(len(line) for line in out["text"].splitlines()) < 250
    assert len(out["text"]) < 100 * 400


def test_many_unknown_uses_and_many_stray_braces_stop_at_the_error_limit(tmp_path):
    out = run(tmp_path, hostile.many_unknown_uses(28_000))
    assert len(out["errors"]) == vocab.MAX_ERRORS + 1
    assert out["errors"][0]["message"] == 'there is no top-level pie named "Q0" to use (did you mean "P0"?)'
    out = run(tmp_path, "}\n" * 500_000)
    assert len(out["errors"]) == vocab.MAX_ERRORS + 1 and out["errors"][-1]["line"] == vocab.MAX_ERRORS + 1


def test_40000_small_pies_compile(tmp_path):
    assert run(tmp_path, hostile.many_blocks(40_000)) == {"ok": True, "pies": 40_000, "rules": 0}


# --- the limits one by one, in process ---------------------------------------------------

def errors(text: str) -> list[rules.Diagnostic]:
    with pytest.raises(rules.PolicyError) as info:
        rules.compile_text(text, "p.pie")
    return info.value.diagnostics


TWO_LEVELS = 'pie "B" { A 50% C 50% }\npie "T" { use "B" 50% D 50% }\npie "U" { use "T" 100% }\n'


def test_the_expanded_cap_per_pie_is_inclusive(monkeypatch):
    monkeypatch.setattr(vocab, "MAX_PIE_SLICES", 5)        # T has 4 slices expanded, U 5
    assert rules.compile_text(TWO_LEVELS).pies["U"].find("T/B/C").target_bp == 5000
    monkeypatch.setattr(vocab, "MAX_PIE_SLICES", 4)
    (e,) = errors(TWO_LEVELS)
    assert (e.source.line, e.source.column) == (3, 5)
    assert e.message == 'pie "U" has 5 slices once every `use` is expanded; the limit is 4'


def test_the_expanded_cap_per_file_names_the_pie_that_passes_it(monkeypatch):
    monkeypatch.setattr(vocab, "MAX_FILE_SLICES", 11)      # 2 + 4 + 5
    assert len(rules.compile_text(TWO_LEVELS).pies) == 3
    monkeypatch.setattr(vocab, "MAX_FILE_SLICES", 10)
    (e,) = errors(TWO_LEVELS)
    assert e.source.line == 3 and e.message == ('with pie "U" the pies of this file have 11 slices once every '
                                                "`use` is expanded; the limit is 10")


def test_nesting_up_to_the_limit_parses_and_formats():
    text = hostile.nested(vocab.MAX_NESTING)
    assert rules.format_text(text).count("{") == vocab.MAX_NESTING
    (e,) = errors(text)           # it parses: what is wrong is the depth of pies
    assert f"the limit is {vocab.MAX_DEPTH}" in e.message


def test_an_extends_chain_up_to_the_limit_compiles():
    policy = rules.compile_text(hostile.extends_chain(vocab.MAX_EXTENDS))
    assert policy.rules["r0"].deposit == rules.find_rules("m1").deposit
    (e,) = errors(hostile.extends_chain(vocab.MAX_EXTENDS + 1))
    assert e.source.line == 1 and f"a chain of {vocab.MAX_EXTENDS + 1} rule sets" in e.message


def test_a_long_line_is_quoted_around_the_column_with_the_caret_under_the_fault():
    text = 'pie "P" { ' + "A1 1% " * 50 + "B 40 " + "C1 1% " * 500 + "}"
    (e,) = [d for d in errors(text) if "needs a % sign" in d.message]
    head, quoted, caret = e.render().splitlines()
    assert len(quoted) <= 4 + vocab.QUOTE_CHARS + 6 and quoted.startswith("    ...") and quoted.endswith("...")
    assert quoted[len(caret) - 1:].startswith("40 C1")          # the caret is under "40"
    short = errors('pie "P" { A 40 }')[0].render().splitlines()
    assert short[1:] == ['    pie "P" { A 40 }', "                ^"]    # a short line whole, as before


def test_names_longer_than_the_limit_are_refused():
    long = "N" * (vocab.MAX_NAME_CHARS + 1)
    (e,) = errors(f'pie "{long}" {{ A 100% }}\npie "Ok" {{ B 100% }}')
    assert e.message == f"this name has {vocab.MAX_NAME_CHARS + 1} characters; the limit is {vocab.MAX_NAME_CHARS}"
    (e,) = errors(f'rules "{long}" {{ }}')
    assert "the limit is" in e.message
    assert rules.compile_text(f'pie "{"N" * vocab.MAX_NAME_CHARS}" {{ A 100% }}').pies


def test_a_use_cycle_through_the_middle_is_named_from_where_it_closes():
    (e,) = errors('pie "A" { use "B" 100% }\npie "B" { use "C" 100% }\npie "C" { X 50% use "B" 50% }')
    assert e.source.line == 3 and e.message == 'a pie cannot contain itself: "B" -> "C" -> "B"'


def test_a_long_value_in_a_message_keeps_both_ends_of_the_message():
    (e,) = errors('pie "P" { A ' + "1" * 5000 + "% }")
    assert len(e.message) <= vocab.MAX_MESSAGE_CHARS
    assert e.message.startswith("111") and "..." in e.message and e.message.endswith("% is more than 100%")


def test_a_suggestion_is_looked_for_among_a_bounded_number_of_names_and_only_for_the_first_errors():
    many = "".join(f'pie "Pie number {i}" {{ A 100% }}\n' for i in range(5000))
    (e,) = errors(many + 'pie "T" { use "Pie numbr 42" 100% }')
    assert e.message.endswith('(did you mean "Pie number 42"?)')
    short = errors('pie "Technology" { A 100% }\npie "T" { use "Tech" 100% }')[0]
    assert short.message.endswith('(did you mean "Technology"?)')     # lengths 4 and 10 can still be close
    wrong = "".join(f'pie "P{i}" {{ use "Q{i}" 100% }}\n' for i in range(30))
    suggested = [d for d in errors(wrong) if "did you mean" in d.message]
    assert len(suggested) == 10


def test_positions_of_a_block_that_starts_inside_a_line_are_the_files():
    # Each block is parsed on its own (not padded with the text before it): positions are moved.
    first, second, third = errors('pie "A" { A 100% }  pie "B" { B 40 }\n\n  pie "C" { C 100%\n  D 40 }\n  pie "E" { }')
    assert (first.source.line, first.source.column) == (1, 33) and "needs a % sign" in first.message
    assert (second.source.line, second.source.column) == (4, 5) and "needs a % sign" in second.message
    assert (third.source.line, third.source.column) == (5, 7) and third.message == 'pie "E" has no slices'


def test_text_compiled_without_a_file_is_held_to_the_file_size_limit():
    text = "#" * vocab.MAX_FILE_BYTES
    assert rules.compile_text(text, "p.pie").pies == {}
    for call in (rules.compile_text, rules.format_text):
        with pytest.raises(rules.PolicyError) as info:
            call(text + "é", "p.pie")             # one character more, two bytes
        assert info.value.diagnostics[0].message == (f"the file is {vocab.MAX_FILE_BYTES + 2:,} bytes; "
                                                     f"the limit is {vocab.MAX_FILE_BYTES:,} bytes")
