"""One door: the front ends (CLI, API, console) reach the ledger only through the service
layer. What is still allowed is listed here, by name, so a new direct call fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRONT_ENDS = sorted((ROOT / "engine" / "shell" / "cli").glob("*.py")) + [ROOT / "engine/shell/api.py",
                                                                        ROOT / "engine/shell/web.py"]
# Still direct: policy plan and apply (moving into the service with the one liquidation
# decision), the schema upgrade of `pies db upgrade`, closing the ledger a command opened, and
# whether opening it created it (`pies db init` and the first write say where).
ALLOWED = {"plan_policy", "apply_policy", "engine", "dispose", "created"}


def test_front_ends_call_the_ledger_and_the_audit_only_through_the_service():
    direct = []
    for f in FRONT_ENDS:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in ("led", "ledger") and node.attr not in ALLOWED:
                    direct.append(f"{f.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
                if node.value.id == "access" and node.attr == "audit" and f.name != "web.py":
                    direct.append(f"{f.relative_to(ROOT)}:{node.lineno}: access.audit")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Access":
                direct.append(f"{f.relative_to(ROOT)}:{node.lineno}: Access(...)")
    assert direct == []
