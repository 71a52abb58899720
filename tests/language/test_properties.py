"""Property tests: fmt round-trips every policy, and no input makes the parser raise anything
but PolicyError."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
from rules import vocabulary as vocab

SYMBOLS = st.from_regex(r"\A[A-Z]{1,4}(\.[A-Z])?\Z")
NAMES = st.text(alphabet=string.ascii_letters + string.digits + " -_", min_size=1, max_size=8).filter(str.strip)


@st.composite
def separator(draw):
    """Whitespace as an analyst might type it, comments included."""
    return draw(st.sampled_from([" ", "  ", "\n", "\t", "\n\n    ", " # note\n", "\n# own line\n"]))


@st.composite
def split_100(draw, n):
    """n targets in basis points summing to 10000, with some zeros and odd values."""
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), min_size=n - 1, max_size=n - 1)))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 10_000])]
    return parts


def pct(bp: int) -> str:
    whole, frac = divmod(bp, 100)
    return f"{whole}%" if frac == 0 else f"{whole}.{frac:02d}%"


@st.composite
def pie_body(draw, depth, usable):
    n = draw(st.integers(1, 5))
    equal = draw(st.booleans())
    targets = draw(split_100(n))
    sep = draw(separator())
    items = []
    seen = set()
    for i in range(n):
        # `use` only in the top two levels: a chain of three pies each using the last then
        # nests at most 7 deep, within the compiler's limit of 8 (deeper is a PolicyError).
        kinds = ["sec", "sec", "pie", "use"] if depth < 2 else ["sec", "sec", "pie"] if depth < 3 else ["sec"]
        kind = draw(st.sampled_from(kinds))
        if kind == "use" and not usable:
            kind = "sec"
        if kind == "sec":
            name = draw(SYMBOLS)
        elif kind == "use":
            name = draw(st.sampled_from(usable))
        else:
            name = draw(NAMES)
        if name in seen:
            continue
        seen.add(name)
        p = "" if equal else " " + pct(targets[i])
        if kind == "sec":
            items.append(f"{name}{p}")
        elif kind == "use":
            items.append(f'use "{name}"{p}')
        else:
            inner = draw(pie_body(depth + 1, usable))
            items.append(f'pie "{name}"{p}{inner}')
    if not equal and len(items) != n:
        return draw(pie_body(depth, usable))   # a duplicate broke the sum: try again
    head = " equal" if equal else ""
    return head + " {" + sep + sep.join(items) + draw(separator()) + "}"


@st.composite
def rules_block(draw, name):
    stmts = []
    for event in draw(st.lists(st.sampled_from(vocab.EVENTS), unique=True, max_size=4)):
        stmts.append(f"on {event} {draw(st.sampled_from(vocab.EVENT_ACTIONS[event]))}")
    if draw(st.booleans()):
        stmts.append(f"cash reserve ${draw(st.integers(0, 10**6))}.{draw(st.integers(0, 99)):02d}")
    if draw(st.booleans()):
        stmts.append(f"when drift > {pct(draw(st.integers(1, 10_000)))} rebalance")
    if draw(st.booleans()):
        stmts.append(f"every {draw(st.sampled_from(vocab.PERIODS))} rebalance")
    base = draw(st.sampled_from(["", ' extends "m1"', ' extends "pro-rata"']))
    sep = draw(separator())
    return f'rules "{name}"{base} {{' + sep + sep.join(stmts) + sep + "}"


@st.composite
def policies(draw):
    blocks, names = [], []
    for i in range(draw(st.integers(1, 3))):
        name = f"P{i}"
        blocks.append(f'pie "{name}"' + draw(pie_body(0, list(names))))
        names.append(name)
    if draw(st.booleans()):
        blocks.append(draw(rules_block("r")))
    return "\n" + "\n".join(blocks) + draw(st.sampled_from(["", "\n", "\n# the end\n"]))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_fmt_round_trips_and_is_idempotent(text):
    plan = rules.compile_text(text, "gen.pie")
    once = rules.format_text(text, "gen.pie")
    assert rules.compile_text(once, "gen.pie") == plan
    assert rules.format_text(once, "gen.pie") == once


TOKENS = ['pie', 'use', 'rules', 'extends', 'equal', 'on', 'cash', 'reserve', 'invest', 'minimum',
          'when', 'drift', '>', 'every', '{', '}', '"P"', '"Q"', 'VTI', 'A', '40%', '100%', '0%',
          '33.333%', '$25', '$1.234', 'deposit', 'buy', 'pro-rata', 'rebalance', '#x\n', '\n', '"',
          'month', 'liquidate', 'proceeds-to', 'parent', '40', 'vti', '/', '%']


def compiles_or_policy_error(text: str) -> None:
    try:
        rules.compile_text(text, "fuzz.pie")
    except rules.PolicyError as e:
        for d in e.diagnostics:
            assert d.source.file == "fuzz.pie" and d.source.line >= 1 and d.source.column >= 1
            assert d.message
        e.render()


@settings(max_examples=300)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_token_soup_only_raises_policy_error(text):
    compiles_or_policy_error(text)


@settings(max_examples=300)
@given(st.binary(max_size=200).map(lambda b: b.decode("utf-8", errors="replace")))
def test_random_bytes_only_raise_policy_error(text):
    compiles_or_policy_error(text)


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_random_files_only_raise_policy_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "f.pie"
    path.write_bytes(data)
    try:
        rules.compile_file(path)
    except rules.PolicyError:
        pass
