"""The one rule for names (accounts, pies, tokens) and idempotency keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.names import KEY_MAX, NAME_MAX, InvalidName, check_name, problem


@pytest.mark.parametrize("name", ["alice", "Growth & Income", "ébène-2", "a" * NAME_MAX, "家族", "x.y_z:1"])
def test_ordinary_names_pass(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name, says", [
    ("", "must not be empty"), ("a" * (NAME_MAX + 1), f"the limit is {NAME_MAX}"), ("a/b", 'may not contain "/"'),
    ("a\nb", "U+000A"), ("a\tb", "U+0009"), ("nul\x00", "U+0000"), ("rtl\u202e", "U+202E"),
    ("zero\u200bwidth", "U+200B"),
    ("line\u2028sep", "U+2028"), ("no\xa0break", "U+00A0"), ("private\ue000", "U+E000"),
])
def test_names_no_door_can_show_or_reach_are_refused(name, says):
    with pytest.raises(InvalidName, match=says.replace("(", r"\(").replace("+", r"\+")):
        check_name(name, "account name")


def test_keys_are_longer_and_may_hold_a_slash():
    assert check_name("bank/2026/11/ref-1", "key", key=True)
    assert check_name("k" * KEY_MAX, "key", key=True)
    assert "the limit is 200" in problem("k" * (KEY_MAX + 1), "key", key=True)
    assert "control or invisible character" in problem("a\x07b", "key", key=True)


def test_the_message_never_quotes_a_long_name_whole():
    text = problem("x" * 5000 + "/", "name")
    assert len(text) < 200 and "5001 characters" in text


@given(st.text(max_size=120))
def test_a_valid_name_has_no_slash_no_control_and_fits(text):
    if problem(text) is None:
        assert 0 < len(text) <= NAME_MAX and "/" not in text
        assert all(ch.isprintable() or ch == " " for ch in text)
