"""`pies fmt`: the canonical text of a policy file, comments kept.

Canonical means: four-space indents, one blank line between top-level blocks, slice
targets aligned, percentages and amounts without needless zeros. An `equal` pie shows the
split it computes as a comment on each slice (regenerated on every run, so fmt stays
idempotent).
"""

from __future__ import annotations

import re
from decimal import Decimal

from .compiler import equal_split
from .model import percent
from .syntax import Node, PieDecl, RuleStmt, RulesDecl, SecurityDecl, SyntaxFile, UseDecl
from .vocabulary import AmountError, parse_amount

INDENT = "    "
_GENERATED = re.compile(r"^# equal: [0-9.]+%(; )?")


def _pct(text: str) -> str:
    return f"{Decimal(text.rstrip('%')).normalize():f}%"


def _money(text: str) -> str:
    """$25, $1000.50; an amount outside the grammar stays as written (compiling reports it)."""
    try:
        c = parse_amount(text, zero=True)
    except AmountError:
        return text
    return f"${c // 100}" if c % 100 == 0 else f"${c // 100}.{c % 100:02d}"


def _line(indent: str, body: str, trailing: str | None) -> str:
    return f"{indent}{body}  {trailing}" if trailing else f"{indent}{body}"


def _leading(out: list[str], indent: str, node: Node) -> None:
    out.extend(f"{indent}{c}" if c else "" for c in node.leading)


def _label(s: SecurityDecl | UseDecl) -> str:
    return s.symbol if isinstance(s, SecurityDecl) else f'use "{s.name.text}"'


def _pie(out: list[str], decl: PieDecl, indent: str, note: str | None) -> None:
    head = f'pie "{decl.name.text}"'
    if decl.percent is not None:
        head += f" {_pct(decl.percent.text)}"
    if decl.equal:
        head += " equal"
    _leading(out, indent, decl)
    out.append(_line(indent, head + " {", _trailing(decl.trailing, note)))
    inner = indent + INDENT
    width = max((len(_label(s)) for s in decl.slices if not isinstance(s, PieDecl)), default=0)
    split = equal_split(len(decl.slices)) if decl.equal else None
    for i, s in enumerate(decl.slices):
        note_i = f"# equal: {percent(split[i])}%" if split else None
        if isinstance(s, PieDecl):
            _pie(out, s, inner, note_i)
            continue
        _leading(out, inner, s)
        label = _label(s)
        trailing = _trailing(s.trailing, note_i)
        body = label.ljust(width) if s.percent is None else f"{label.ljust(width)} {_pct(s.percent.text)}"
        out.append(_line(inner, body if trailing else body.rstrip(), trailing))
    _leading(out, inner, decl.close)
    out.append(_line(indent, "}", decl.close.trailing))


def _trailing(user: str | None, note: str | None) -> str | None:
    if user is not None:
        user = _GENERATED.sub("", user)
        if user in ("", "#"):
            user = None
    if note and user:
        return f"{note}; {user.removeprefix('#').strip()}"
    return note or user


def _head_tail(st: RuleStmt) -> tuple[str, str]:
    words = [w.text for w in st.words]
    if st.kind == "on":
        return f"on {words[0]}", " ".join(words[1:])
    if st.kind == "cash_reserve":
        return "cash reserve", _money(st.value.text)  # type: ignore[union-attr]
    if st.kind == "invest_minimum":
        return "invest minimum", _money(st.value.text)  # type: ignore[union-attr]
    if st.kind == "when_drift":
        return "when drift >", f"{_pct(st.value.text)} {' '.join(words)}"  # type: ignore[union-attr]
    if st.kind == "avoid":
        return "avoid", " ".join(words)
    if st.kind == "lots":
        return "lots", " ".join(words)
    return f"every {words[0]}", " ".join(words[1:])


def _rules(out: list[str], decl: RulesDecl) -> None:
    head = f'rules "{decl.name.text}"'
    if decl.extends is not None:
        head += f' extends "{decl.extends.text}"'
    _leading(out, "", decl)
    out.append(_line("", head + " {", decl.trailing))
    parts = [_head_tail(st) for st in decl.statements]
    width = max((len(h) for h, _ in parts), default=0)
    for st, (h, t) in zip(decl.statements, parts):
        _leading(out, INDENT, st)
        out.append(_line(INDENT, f"{h.ljust(width)} {t}", st.trailing))
    _leading(out, INDENT, decl.close)
    out.append(_line("", "}", decl.close.trailing))


def format_syntax(sf: SyntaxFile) -> str:
    out: list[str] = []
    for i, block in enumerate(sf.blocks):
        if i:
            out.append("")
        if isinstance(block, PieDecl):
            _pie(out, block, "", None)
        else:
            _rules(out, block)
    if sf.trailer:
        if out:
            out.append("")
        out.extend(sf.trailer)
    return "\n".join(out) + "\n" if out else ""
