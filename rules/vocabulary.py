"""The words of the rules language: events, the actions each event may take, and their parameters.

This is the single list the compiler checks rules against; the engine's action registry
must cover exactly these names (a test holds them together), so an unknown action is a
compile error and never a surprise in a trading window.
"""

from __future__ import annotations

# Event names as an analyst writes them after `on`.
EVENTS: tuple[str, ...] = (
    "deposit",
    "dividend",
    "withdrawal",
    "rebalance",
    "target-change",
    "removal",
)

# Action name -> its parameters: (keyword, allowed values, default).
ACTION_PARAMS: dict[str, tuple[tuple[str, tuple[str, ...], str], ...]] = {
    "buy underweight-first": (),
    "buy pro-rata": (),
    "hold-cash": (),
    "sell overweight-first": (),
    "sell pro-rata": (),
    "rebalance": (),
    "no-trade": (),
    "liquidate": (("proceeds-to", ("parent", "portfolio"), "parent"),),
}

# Which actions make sense for which event.
EVENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "deposit": ("buy underweight-first", "buy pro-rata", "hold-cash"),
    "dividend": ("buy underweight-first", "buy pro-rata", "hold-cash"),
    "withdrawal": ("sell overweight-first", "sell pro-rata"),
    "rebalance": ("rebalance",),
    "target-change": ("no-trade", "rebalance"),
    "removal": ("liquidate",),
}

# `every PERIOD rebalance`: how often a calendar trigger fires (checked at the window).
PERIODS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")

# Trigger actions (`when drift > 5% rebalance`, `every month rebalance`).
TRIGGER_ACTIONS: tuple[str, ...] = ("rebalance",)

# Limits, documented in docs/policy-language.md. Each bounds the work or memory a file can
# make the compiler, `pies fmt` and `pies show` spend; past one, a PolicyError names the place.
MAX_FILE_BYTES = 1 << 20          # 1 MiB
MAX_DEPTH = 8                     # nested pies below a top-level pie
MAX_SLICES_PER_PIE = 100          # M1 allows 100 slices per pie
MAX_PIE_SLICES = 20_000           # slices below one top-level pie, every `use` expanded
MAX_FILE_SLICES = 200_000         # the same, summed over a file's top-level pies
MAX_NESTING = 32                  # braces open at once (a syntax limit, above MAX_DEPTH)
MAX_EXTENDS = 16                  # rule sets in one `extends` chain within a file
MAX_NAME_CHARS = 100              # a pie's or a rule set's name
MAX_ERRORS = 100                  # diagnostics kept per file; the rest are counted
QUOTE_CHARS = 120                 # the part of a long line an error quotes, around the column
MAX_MESSAGE_CHARS = 500           # one error message (messages quote names and words)


def one_of(words: tuple[str, ...] | list[str]) -> str:
    """'a, b or c' for messages."""
    quoted = [f"'{w}'" for w in words]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
