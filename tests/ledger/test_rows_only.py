"""The ledger is rows in, rows out: no module of adapters/ledger imports the policy
language (compiling and deciding belong to engine/shell/policies.py and the core)."""

from __future__ import annotations

import ast
from pathlib import Path

LEDGER = Path(__file__).resolve().parents[2] / "adapters" / "ledger"


def _imports(file: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_the_ledger_adapter_imports_no_policy_language():
    files = sorted(LEDGER.rglob("*.py"))
    assert len(files) > 5
    offenders = {f.relative_to(LEDGER).as_posix(): sorted(m for m in _imports(f) if m == "rules" or
                                                          m.startswith("rules."))
                 for f in files}
    assert {f: m for f, m in offenders.items() if m} == {}
