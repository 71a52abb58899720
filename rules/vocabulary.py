"""The words of the rules language: events, the actions each event may take, and their parameters.

This is the single list the compiler checks rules against; the engine's action registry
must cover exactly these names (a test holds them together), so an unknown action is a
compile error and never a surprise in a trading window.
"""

from __future__ import annotations

import re

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
LOT_METHODS: tuple[str, ...] = ("tax-min", "fifo", "lifo", "hifo")      # engine.core.lots.LotMethod, in order

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


# --- dollar amounts -----------------------------------------------------------------------
# The one grammar of an amount (docs/money.md), written here, in the layer below the
# engine, so that the language's `$` amounts and every other door (through
# engine.core.money.parse_dollars) read amounts with the same function.

MAX_CENTS = 1_000_000_000 * 100        # a billion dollars: more is a typo, not a deposit
# Checked before anything else looks at the text: the longest amount in the grammar is
# "$1,000,000,000.00" (17); the room above it is for leading zeros. A longer text is
# refused without being converted (Python refuses int() of more than 4,300 digits).
MAX_CHARS = 40
_SPACE = " \t\r\n"                     # ASCII only: other spaces are not part of an amount
# 123, 123.45, 1,234.56 (thousands only in groups of three), an optional leading $.
_WHOLE = r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+"
_AMOUNT = re.compile(rf"\$?(?P<whole>{_WHOLE})(?:\.(?P<frac>[0-9]{{1,2}}))?")
_VALUE = re.compile(rf"\$?(?P<whole>{_WHOLE})(?:\.(?P<frac>[0-9]+))?")      # a market value: any decimals
_SUB_CENT = re.compile(rf"\$?(?:{_WHOLE})\.[0-9]{{3,}}")
_COMMAS = re.compile(r"\$?[0-9][0-9,]*(?:\.[0-9]+)?")


class AmountError(ValueError):
    """An amount is not in the grammar (engine.core.money.MoneyError says so to users)."""


def _shown(text: str) -> str:
    """The text as an error quotes it: never more than a line, however long the input."""
    return repr(text) if len(text) <= 24 else f"{text[:20]!r}... ({len(text):,} characters)"


def parse_amount(text: str, *, what: str = "amount", zero: bool = False, market: bool = False) -> int:
    """A dollar amount as a person types it, strictly, as integer cents.

    Accepted: `123`, `123.45`, `1,234.56`, each with an optional leading `$` and spaces
    around. Refused, in one line that says why: a comma that is not a thousands separator
    (`10,50`), exponents, signs, underscores, hex, other currency symbols or digits that are
    not ASCII, NaN and Infinity, a point without digits on both sides (`.5`, `5.`), more
    than two decimals, zero (unless `zero`), more than a billion, more than MAX_CHARS
    characters. `market`: a market value someone wrote down (preview's holdings), which
    may have more decimals; it is rounded half to even to the cent, like every market value."""
    if not isinstance(text, str):
        raise TypeError(f"{what}: an amount to parse is text, not {type(text).__name__}")
    if len(text) > MAX_CHARS * 4 or len(raw := text.strip(_SPACE)) > MAX_CHARS:
        raise AmountError(f"{what} {_shown(text)} is too long for an amount (at most {MAX_CHARS} characters)")
    shown = _shown(text)
    if not raw:
        raise AmountError(f"{what}: no amount given (write dollars, like 1,234.56)")
    m = (_VALUE if market else _AMOUNT).fullmatch(raw)
    if m is None:
        if _SUB_CENT.fullmatch(raw):
            raise AmountError(f"{what} {shown} has fractions of a cent")
        if _COMMAS.fullmatch(raw) and "," in raw:
            raise AmountError(f"{what} {shown}: commas only separate thousands (1,234.56); "
                             f"write cents after a point, like 10.50")
        if raw.startswith(("-", "+")):
            raise AmountError(f"{what} {shown}: write the amount without a sign; it must be positive")
        if not any("0" <= ch <= "9" for ch in raw):
            raise AmountError(f"{what} {shown} is not a dollar amount: not a number (write it like 1,234.56 or $100)")
        raise AmountError(f"{what} {shown} is not a dollar amount (like 1,234.56 or $100)")
    whole, frac = m.group("whole").replace(",", ""), m.group("frac") or ""
    if len(frac) > 2:                   # a market value: half to even, in integers (exact at any length)
        scale = 10 ** (len(frac) - 2)
        c, rest = divmod(int(whole + frac), scale)
        c += 2 * rest > scale or (2 * rest == scale and c % 2 == 1)
    else:
        c = int(whole) * 100 + int(frac.ljust(2, "0"))
    return _bounded(c, what, shown, raw, zero)


def _bounded(cents: int, what: str, shown: str, raw: str, zero: bool) -> int:
    if cents == 0 and not zero:
        raise AmountError(f"{what} must be positive, not {raw}")
    if cents > MAX_CENTS:
        raise AmountError(f"{what} {shown} is more than ${MAX_CENTS // 100:,}.00: surely a typo")
    return cents
