"""Which layer may import which (docs/architecture.md), read from the source with `ast`.

Every import counts, function-local ones included (they hide circles, they do not remove
them); only imports under `if TYPE_CHECKING:` are left out (they never run). An import
`from a.b import c` is an edge to the module a.b.c when that is a module, else to a.b.
"""

from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "rules", "adapters", "config")

# The core decides; it never reaches the outside. Standard modules that do (files,
# processes, the clock, randomness, the network, logging) are refused like I/O libraries.
IMPURE_STDLIB = {"os", "io", "sys", "socket", "subprocess", "logging", "time", "threading", "multiprocessing",
                 "sqlite3", "shutil", "tempfile", "pathlib", "glob", "asyncio", "urllib", "http", "random",
                 "signal", "select", "selectors", "ssl", "email", "smtplib", "pickle", "shelve", "uuid", "secrets"}
PURE_LIBRARIES: set[str] = set()       # third-party libraries the core may use (none needed today)
# The language's modules the core reads its frozen types and rule sets from (not `rules`
# itself: its __init__ reads files).
LANGUAGE_FOR_CORE = ("rules.model", "rules.vocabulary", "rules.library", "rules.diagnostics", "rules.compiler",
                     "rules.syntax", "rules.names")         # names: the one rule for names, no imports at all


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            found[module_name(p)] = p
    return found


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node, at any depth, but not under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


@lru_cache(maxsize=1)
def imports() -> dict[str, set[tuple[str, int]]]:
    """module -> {(imported module, line)}: project modules and the top names of the others."""
    known = modules()
    out: dict[str, set[tuple[str, int]]] = {}
    for name, path in known.items():
        is_pkg = path.name == "__init__.py"
        found: set[tuple[str, int]] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
            for t in targets:
                if t.split(".")[0] in PACKAGES:
                    while t not in known and "." in t:          # `import a.b.C`-style names
                        t = t.rsplit(".", 1)[0]
                found.add((t, node.lineno))
        out[name] = found
    return out


def edges(src: str) -> set[str]:
    return {t for t, _ in imports()[src] if t in modules() and t != src}


def where(src: str, dst: str) -> str:
    lines = sorted(line for t, line in imports()[src] if t == dst)
    return f"{modules()[src].relative_to(ROOT)}:{lines[0]} imports {dst}"


def circles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges(v)):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(modules()):
        if v not in index:
            visit(v)
    return out


def _in(mod: str, *prefixes: str) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def violations(sources, forbidden) -> list[str]:
    return sorted(f"{modules()[src].relative_to(ROOT)}:{line} imports {t}"
                  for src in modules() if sources(src)
                  for t, line in imports()[src] if forbidden(src, t))


FRONT_ENDS = ("engine.shell.cli", "engine.shell.api", "engine.shell.web")


# --- the checker itself -------------------------------------------------------------------

def test_the_reader_sees_function_local_and_relative_imports():
    # the store loads the ORM classes (schema) only in the methods that change objects, through
    # a function-local import; relative imports resolve to their module.
    assert "adapters.ledger.schema" in edges("adapters.ledger.store")
    assert "engine.core.window.model" in edges("engine.core.window.netting")
    src = "def f():\n    from engine.shell import window\n"
    tree = ast.parse(src)
    assert [n.module for n in _imports(tree)] == ["engine.shell"]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import adapters.ledger.store\n")
    assert [type(n).__name__ for n in _imports(tree)] == ["ImportFrom"]


# --- the rules ------------------------------------------------------------------------------

def test_no_import_circles():
    found = circles()
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_adapters_do_not_import_the_language():
    bad = violations(lambda src: _in(src, "adapters"), lambda src, t: _in(t, "rules"))
    assert not bad, "\n".join(bad)


def test_the_language_imports_nothing_of_the_engine():
    bad = violations(lambda src: _in(src, "rules"), lambda src, t: _in(t, "engine", "adapters", "config"))
    assert not bad, "\n".join(bad)


def test_the_core_imports_only_itself_the_language_and_pure_modules():
    stdlib = sys.stdlib_module_names

    def forbidden(src: str, t: str) -> bool:
        top = t.split(".")[0]
        if _in(t, "engine.core") or _in(t, *LANGUAGE_FOR_CORE) or top == "__future__":
            return False
        if top in PACKAGES:
            return True
        if top in stdlib:
            return top in IMPURE_STDLIB
        return top not in PURE_LIBRARIES
    bad = violations(lambda src: _in(src, "engine.core"), forbidden)
    assert not bad, "\n".join(bad)


def test_adapters_and_settings_never_reach_up_into_the_shell():
    bad = violations(lambda src: _in(src, "adapters", "config"), lambda src, t: _in(t, "engine.shell"))
    assert not bad, "\n".join(bad)


def test_the_ledger_does_not_know_the_broker():
    bad = violations(lambda src: _in(src, "adapters.ledger"), lambda src, t: _in(t, "adapters.broker"))
    bad += violations(lambda src: _in(src, "adapters.broker"), lambda src, t: _in(t, "adapters.ledger"))
    assert not bad, "\n".join(bad)


def test_settings_import_only_the_core():
    bad = violations(lambda src: _in(src, "config"), lambda src, t: _in(t, "adapters", "rules")
                     or (_in(t, "engine") and not _in(t, "engine.core")))
    assert not bad, "\n".join(bad)


def test_front_ends_go_through_the_service():
    bad = violations(lambda src: _in(src, *FRONT_ENDS), lambda src, t: _in(t, "adapters.ledger"))
    assert not bad, "\n".join(bad)


WINDOW_TABLES = {"windows", "window_accounts", "intents", "orders", "fills", "allocations", "window_shards",
                 "corporate_actions", "Window", "WindowAccount", "Intent", "Order", "Fill", "Allocation",
                 "WindowShard", "CorporateActionRow"}


def test_the_store_holds_no_window_sql():
    # A window is written by window_repo.py and read back by window_reports.py; the store
    # (accounts, events) names none of the window's tables, as rows or as ORM classes.
    tree = ast.parse(modules()["adapters.ledger.store"].read_text())
    named = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
             and (n.module or "").split(".")[-1] in ("tables", "schema") for a in n.names}
    named |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
              and (n.module or "").split(".")[-1] in ("tables", "schema") for a in n.names}
    assert not named & WINDOW_TABLES, sorted(named & WINDOW_TABLES)
