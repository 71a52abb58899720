"""Generators of hostile policy files (issue 19): each within the file size limit, each
once able to hang or crash the compiler. Used by test_limits.py and bench/policy_limits.py."""

from __future__ import annotations


def fanout(levels: int, pies: int, uses: int) -> str:
    """`levels` levels of `pies` top-level pies; each uses `uses` pies of the next level
    (the last level holds securities): small text, an exponential tree once expanded.
    Pies are written with percentages where `uses` divides 100, `equal` otherwise."""
    equal = 100 % uses != 0
    pct = "" if equal else f" {100 // uses}%"
    out = []
    for level in range(1, levels + 1):
        for i in range(pies):
            out.append(f'pie "L{level}P{i}"{" equal" if equal else ""} {{')
            if level < levels:
                out += [f'    use "L{level + 1}P{(i + j) % pies}"{pct}' for j in range(uses)]
            else:
                out += [f"    S{j}{pct}" for j in range(uses)]
            out.append("}")
    return "\n".join(out) + "\n"


def nested(depth: int) -> str:
    """One pie `depth` pies deep."""
    return "".join(f'pie "P{i}" {"100% " if i else ""}{{\n' for i in range(depth)) + "A 100%\n" + "}\n" * depth


def extends_chain(n: int) -> str:
    """`rules "r0" extends "r1"`, ... n rule sets long."""
    return "".join(f'rules "r{i}" extends "r{i + 1}" {{ }}\n' for i in range(n - 1)) + f'rules "r{n - 1}" {{ }}\n'


def use_chain(n: int, cycle: bool = False) -> str:
    """`pie "P0" { use "P1" 100% }`, ... n pies long (the last using "P0" again, for a cycle)."""
    last = 'use "P0" 100%' if cycle else "A 100%"
    return "".join(f'pie "P{i}" {{ use "P{i + 1}" 100% }}\n' for i in range(n - 1)) + f'pie "P{n - 1}" {{ {last} }}\n'


def one_line(n: int) -> str:
    """One pie of n `VTI 1%` slices on one line."""
    return 'pie "P" { ' + "VTI 1% " * n + "}\n"


def many_blocks(n: int) -> str:
    """n small pies, one a line."""
    return "".join(f'pie "P{i}" {{ A 100% }}\n' for i in range(n))


def many_unknown_uses(n: int) -> str:
    """n pies, each using a pie that does not exist (each error looks for a suggestion)."""
    return "".join(f'pie "P{i}" {{ use "Q{i}" 100% }}\n' for i in range(n))
