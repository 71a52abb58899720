"""Every error class names file, line and column, quotes the line, and speaks the analyst's words."""

import pytest

import rules
from rules.vocabulary import MAX_DEPTH, MAX_FILE_BYTES, MAX_SLICES_PER_PIE


def errors(text: str, file: str = "p.pie"):
    with pytest.raises(rules.PolicyError) as info:
        rules.compile_text(text, file)
    return info.value.diagnostics


def one(text: str):
    diags = errors(text)
    assert len(diags) == 1, [d.render() for d in diags]
    return diags[0]


def at(d, line, col):
    return (d.source.file, d.source.line, d.source.column) == ("p.pie", line, col)


def test_sum_other_than_100():
    d = one('pie "P" {\n    A 50%\n    B 40%\n}')
    assert at(d, 1, 5)
    assert d.message == 'the slices of pie "P" add up to 90%, not 100% (10% missing)'
    rendered = d.render()
    assert rendered.splitlines() == ['p.pie:1:5: error: ' + d.message, '    pie "P" {', "        ^"]


def test_sum_too_much_in_a_nested_pie():
    d = one('pie "P" {\n  A 50%\n  pie "N" 50% { B 60% C 50.5% }\n}')
    assert at(d, 3, 7) and "add up to 110.5%, not 100% (10.5% too much)" in d.message


def test_more_than_two_decimals():
    first, second = errors('pie "P" { A 33.333% B 66.667% }')
    assert at(first, 1, 13) and "33.333% has more than 2 decimals" in first.message
    assert at(second, 1, 23) and "66.667%" in second.message


def test_missing_percent_sign_is_a_syntax_error_with_a_hint():
    d = one('pie "P" {\n    A 40\n    B 60%\n}')
    assert at(d, 2, 7)
    assert "but found '40'" in d.message and "a percentage needs a % sign" in d.message
    assert "SYMBOL" not in d.message and "PERCENT" not in d.message  # no lark token names


def test_lowercase_symbol():
    d = one('pie "P" { vti 100% }')
    assert at(d, 1, 11) and "ticker symbols are written in capitals: VTI" in d.message


def test_unclosed_block():
    d = one('pie "P" {\n    A 100%\n')
    assert d.source.line == 3 and "ends too early" in d.message and "'}'" in d.message


def test_missing_target():
    d = one('pie "P" {\n    A 50%\n    B\n}')
    assert at(d, 3, 5) and '"B" needs a target percentage' in d.message


def test_percent_in_an_equal_pie():
    d = one('pie "P" equal { A 50% B }')
    assert at(d, 1, 19) and "the slices of an equal pie take no percentage" in d.message


def test_top_level_percent():
    d = one('pie "P" 50% { A 100% }')
    assert at(d, 1, 9) and "a top-level pie takes no percentage" in d.message


def test_duplicate_symbol_in_a_pie():
    d = one('pie "P" {\n  A 50%\n  A 50%\n}')
    assert at(d, 3, 3) and '"A" appears twice in pie "P" (first at line 2)' in d.message


def test_duplicate_sibling_pie_names_and_duplicate_top_level_pies():
    diags = errors('pie "P" {\n  pie "N" 50% { A 100% }\n  pie "N" 50% { B 100% }\n}\npie "P" { C 100% }')
    assert [(d.source.line, d.source.column) for d in diags] == [(3, 7), (5, 5)]
    assert "appears twice" in diags[0].message
    assert 'a pie named "P" is already defined at line 1' in diags[1].message


def test_pie_name_with_slash():
    d = one('pie "P" { pie "a/b" 100% { A 100% } }')
    assert at(d, 1, 15) and 'may not contain "/"' in d.message


def test_unknown_pie_with_suggestion():
    d = one('pie "Tech" { A 100% }\npie "P" { use "Tehc" 100% }')
    assert at(d, 2, 15) and 'no top-level pie named "Tehc"' in d.message and 'did you mean "Tech"' in d.message


def test_use_cycle():
    diags = errors('pie "A" { use "B" 100% }\npie "B" { X 50% use "A" 50% }')
    assert len(diags) == 1
    d = diags[0]
    assert (d.source.line, d.source.column) == (2, 21)
    assert 'a pie cannot contain itself: "A" -> "B" -> "A"' in d.message


def test_self_use():
    d = one('pie "A" { use "A" 100% }')
    assert at(d, 1, 15) and "cannot contain itself" in d.message


def test_depth_beyond_limit():
    text = "pie \"P\" {\n"
    for i in range(MAX_DEPTH + 1):
        text += f'pie "L{i}" 100% {{\n'
    text += "A 100%\n" + "}\n" * (MAX_DEPTH + 2)
    d = one(text)
    assert d.source.line == MAX_DEPTH + 2 and f"the limit is {MAX_DEPTH}" in d.message


def test_depth_beyond_limit_through_use():
    deep = 'pie "Deep" {' + "".join(f' pie "L{i}" 100% {{' for i in range(MAX_DEPTH)) + " A 100%" + " }" * (MAX_DEPTH + 1)
    d = one(deep + '\npie "Top" { use "Deep" 100% }')
    assert d.source.line == 2 and f"nests pies {MAX_DEPTH + 1} levels deep" in d.message


def test_too_many_slices():
    n = MAX_SLICES_PER_PIE + 1
    d = one('pie "P" equal {' + " ".join(f"S{i}" for i in range(n)) + "}")
    assert at(d, 1, 5) and f"has {n} slices; the limit is {MAX_SLICES_PER_PIE}" in d.message


def test_unknown_action_and_wrong_action_for_event():
    diags = errors('rules "r" {\n  on deposit buy sideways\n  on withdrawal buy pro-rata\n}')
    assert [(d.source.line, d.source.column) for d in diags] == [(2, 14), (3, 17)]
    assert "unknown action 'buy sideways' for 'on deposit'" in diags[0].message
    assert "choose 'buy underweight-first', 'buy pro-rata' or 'hold-cash'" in diags[0].message
    assert "'buy pro-rata' is not an action for 'on withdrawal'" in diags[1].message


def test_unknown_event_and_bad_parameter():
    diags = errors('rules "r" {\n  on deposits buy pro-rata\n  on removal liquidate proceeds-to moon\n}')
    assert "unknown event 'deposits'" in diags[0].message and "did you mean 'deposit'" in diags[0].message
    assert (diags[1].source.line, diags[1].source.column) == (3, 36)
    assert "choose 'parent' or 'portfolio'" in diags[1].message


def test_bad_money_and_trigger():
    diags = errors('rules "r" {\n  cash reserve $1.234\n  when drift > 5% sell\n  every fortnight rebalance\n}')
    assert [d.source.line for d in diags] == [2, 3, 4]
    assert "fractions of a cent" in diags[0].message
    assert "a trigger can only 'rebalance'" in diags[1].message
    assert "'every fortnight'" in diags[2].message


def test_repeated_rule_and_unknown_base():
    diags = errors('rules "r" extends "m2" {\n  on deposit hold-cash\n  on deposit buy pro-rata\n}')
    assert 'no rules named "m2"' in diags[0].message and 'did you mean "m1"' in diags[0].message
    assert "repeats line 2" in diags[1].message


def test_extends_cycle():
    diags = errors('rules "a" extends "b" { }\nrules "b" extends "a" { }')
    assert any("cannot extend itself" in d.message for d in diags)


def test_all_independent_errors_in_one_run_sorted_by_position():
    text = '\n'.join([
        'pie "One" { A 40 B 60% }',          # syntax error in block 1
        'pie "Two" { A 50% B 40% }',          # sum error in block 2
        'pie "Three" { use "One" 100% }',     # refers to the broken block: not reported again
        'rules "r" { on deposit buy nothing }',
    ])
    diags = errors(text)
    assert [d.source.line for d in diags] == [1, 2, 4]


def test_file_size_limit_and_bad_encoding(tmp_path):
    big = tmp_path / "big.pie"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(rules.PolicyError) as info:
        rules.compile_file(big)
    assert "limit is 1,048,576 bytes" in info.value.diagnostics[0].message
    bad = tmp_path / "bad.pie"
    bad.write_bytes(b'pie "P" {\n  A 100% \xff\n}')
    with pytest.raises(rules.PolicyError) as info:
        rules.compile_file(bad)
    d = info.value.diagnostics[0]
    assert (d.source.line, d.source.column, d.message) == (2, 10, "this is not UTF-8 text")


def test_missing_file(tmp_path):
    with pytest.raises(rules.PolicyError) as info:
        rules.compile_file(tmp_path / "nope.pie")
    assert "cannot read the file" in info.value.diagnostics[0].message


def test_a_byte_order_mark_at_the_start_is_accepted_and_one_inside_is_named():
    assert rules.compile_text('\ufeffpie "P" { A 100% }', "p.pie").pies["P"].slices[0].symbol == "A"
    d = one('pie "P" {\n  A 50%\n  \ufeffB 50%\n}')
    assert at(d, 3, 3) and "byte-order mark" in d.message


def test_an_unclosed_brace_is_shown_where_it_opened_and_where_the_text_ended():
    d = one('pie "P" {\n  A 50%\n  pie "N" 50% {\n    B 100%\n')
    assert d.source.line == 5 and "the '{' at line 3, column 15 is never closed" in d.message
    (note,) = d.notes
    assert (note.source.line, note.source.column) == (3, 15) and note.message == "this '{' is never closed"
    lines = d.render().splitlines()
    k = lines.index("p.pie:3:15: note: this '{' is never closed")
    assert lines[k + 1] == '      pie "N" 50% {' and lines[k + 2] == "    " + " " * 14 + "^"
    assert d.as_dict()["notes"] == [{"line": 3, "column": 15, "message": "this '{' is never closed"}]


def test_an_error_inside_a_block_does_not_hide_the_next_one_in_that_block():
    first, second = errors('pie "P" {\n  A 40\n  bnd 60%\n}\npie "Q" { C 100% }')
    assert at(first, 2, 5) and "a percentage needs a % sign" in first.message
    assert at(second, 3, 3) and "capitals: BND" in second.message


def test_an_empty_file_compiles_with_a_warning():
    assert rules.compile_text("# nothing yet\n", "p.pie").pies == {}
    assert rules.warnings("# nothing yet\n\n", "p.pie") == ["p.pie:1:1: warning: the file is empty: no pies and no rules"]
    assert rules.warnings('pie "P" { A 100% }', "p.pie") == []


def test_fmt_formats_a_file_that_parses_but_does_not_add_up():
    text = rules.format_text('pie "P" {A 50%   B 40%}', "p.pie")
    assert text == 'pie "P" {\n    A 50%\n    B 40%\n}\n'
    with pytest.raises(rules.PolicyError):
        rules.format_text('pie "P" { A 50% ', "p.pie")              # does not parse: not formatted
