"""The policy language: pies and rules as text, compiled by lark into an immutable plan.

    policy = compile_file("rules/examples/seed.pie")
    policy.pies["Growth"]            # a rules.model.Pie tree, targets in basis points
    find_rules("m1", policy)         # a rules.model.RuleSet

Every user mistake raises `PolicyError`, which carries all diagnostics with file:line:col.
"""

from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

from . import vocabulary
from .diagnostics import Collector, Diagnostic, PolicyError, Source
from .model import FULL, Action, Pie, Policy, RuleSet, Security, Slice

if TYPE_CHECKING:
    from .syntax import SyntaxFile

DEFAULT_RULES = "m1"
_LAZY = {"find_rules": "library", "rule_names": "library", "standard_rules": "library"}


def __getattr__(name: str):
    # The parser (lark) and the compiler load on first use: commands that only touch the
    # ledger never pay for them.
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'rules' has no attribute {name!r}")

BOM = "\ufeff"

__all__ = [
    "FULL", "Action", "Diagnostic", "Pie", "Policy", "PolicyError", "RuleSet", "Security", "Slice",
    "Source", "DEFAULT_RULES", "compile_file", "compile_text", "find_rules", "format_file",
    "format_text", "read_policy_text", "rule_names", "standard_rules", "vocabulary", "warnings",
]


def _parse(text: str, file: str) -> "tuple[SyntaxFile, Collector]":
    from .syntax import parse_text
    text = text.removeprefix(BOM)      # editors on Windows write one; it means nothing here
    if len(text) > vocabulary.MAX_FILE_BYTES // 4:          # text that did not come through read_policy_text
        _check_size(len(text.encode("utf-8", "surrogatepass")), file)
    c = Collector(file, text)
    if "\x00" in text:
        c.error((1, 1), "this is not a text file (it contains NUL bytes)")
        raise PolicyError(c.diagnostics)
    return parse_text(text, c), c


def compile_text(text: str, file: str = "<text>") -> Policy:
    """Compile policy text; raises PolicyError listing every problem found."""
    from .compiler import compile_syntax
    from .library import standard_rules
    sf, c = _parse(text, file)
    if c.overflowing:
        raise PolicyError(c.diagnostics)
    policy = compile_syntax(sf, c, external=standard_rules())
    if c.diagnostics:
        raise PolicyError(c.diagnostics)
    return policy


def _check_size(size: int, name: str) -> None:
    if size > vocabulary.MAX_FILE_BYTES:
        raise PolicyError([Diagnostic(Source(name, 1, 1), f"the file is {size:,} bytes; the limit is "
                                                         f"{vocabulary.MAX_FILE_BYTES:,} bytes")])


def read_policy_text(path: str | Path) -> str:
    """Read a policy file, refusing what is too large or not UTF-8, as a PolicyError."""
    path = Path(path)
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PolicyError([Diagnostic(Source(name, 1, 1), f"cannot read the file: {e.strerror or e}")]) from None
    _check_size(len(data), name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise PolicyError([Diagnostic(Source(name, line, col), "this is not UTF-8 text")]) from None


def compile_file(path: str | Path) -> Policy:
    return compile_text(read_policy_text(path), str(path))


def format_text(text: str, file: str = "<text>") -> str:
    """The canonical form of a policy that parses (PolicyError when it does not). A file
    that parses but breaks a rule of meaning (targets that do not add up, an unknown
    `use`) is formatted all the same: `compile_text` reports those."""
    from .formatter import format_syntax
    sf, c = _parse(text, file)
    if c.diagnostics:
        raise PolicyError(c.diagnostics)
    return format_syntax(sf)


def warnings(text: str, file: str = "<text>") -> list[str]:
    """What compiles but is probably not meant: an empty file."""
    body = [ln for ln in text.removeprefix(BOM).splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [] if body else [f"{file}:1:1: warning: the file is empty: no pies and no rules"]


def format_file(path: str | Path) -> str:
    return format_text(read_policy_text(path), str(path))
