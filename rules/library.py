"""The standard rule library: the `*.rules` files shipped in this folder."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .compiler import compile_syntax
from .diagnostics import Collector, PolicyError
from .model import Policy, RuleSet
from .syntax import SyntaxFile, parse_text

LIBRARY_DIR = Path(__file__).parent
DEFAULT_RULES = "m1"          # also rules.DEFAULT_RULES


@cache
def standard_rules() -> dict[str, RuleSet]:
    """All shipped rule sets by name. They are compiled together; m1 is the base of the others."""
    blocks: list = []
    collectors: list[Collector] = []
    for path in sorted(LIBRARY_DIR.glob("*.rules")):
        text = path.read_text(encoding="utf-8")
        c = Collector(f"rules/{path.name}", text)
        blocks.extend(parse_text(text, c).blocks)
        collectors.append(c)
    # One collector for the joint compile: the library's names are unique across files.
    joint = Collector("rules/", "")
    policy = compile_syntax(SyntaxFile("rules/", blocks, set(), []), joint, external={}, default_base=DEFAULT_RULES)
    errors = [d for c in (*collectors, joint) for d in c.diagnostics]
    if errors:
        raise PolicyError(errors)   # a broken library is a bug in this package, not user input
    return policy.rules


def find_rules(name: str, policy: Policy | None = None) -> RuleSet | None:
    """A rule set by name: the policy file's own first, then the standard library."""
    if policy is not None and name in policy.rules:
        return policy.rules[name]
    return standard_rules().get(name)


def rule_names(policy: Policy | None = None) -> list[str]:
    return sorted({*standard_rules(), *(policy.rules if policy else {})})
