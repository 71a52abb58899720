"""Text -> syntax tree: lark does the parsing; no lark exception leaves this module.

A file is cut into its top-level blocks (by brace depth, outside names and comments) and
each block is parsed on its own, so one syntax error does not hide the errors of the
other blocks. Comments are kept and attached to the lines they belong to, for `pies fmt`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .diagnostics import Collector, Source
from .vocabulary import MAX_NESTING


# --- syntax tree -------------------------------------------------------------------------

@dataclass(slots=True)
class Node:
    src: Source
    leading: list[str] = field(default_factory=list, kw_only=True)   # own-line comments above
    trailing: str | None = field(default=None, kw_only=True)        # comment at end of line


@dataclass(slots=True)
class Close(Node):
    """A closing brace: comments above it belong to the end of the block."""


@dataclass(slots=True)
class Value:
    text: str
    src: Source


@dataclass(slots=True)
class SecurityDecl(Node):
    symbol: str
    percent: Value | None


@dataclass(slots=True)
class UseDecl(Node):
    name: Value
    percent: Value | None


@dataclass(slots=True)
class PieDecl(Node):
    name: Value
    percent: Value | None
    equal: bool
    slices: list[SecurityDecl | UseDecl | PieDecl]
    close: Close


@dataclass(slots=True)
class RuleStmt(Node):
    kind: str                  # on | cash_reserve | invest_minimum | when_drift | every | lots | avoid
    words: list[Value]         # the words after the keyword(s)
    value: Value | None        # the amount or percentage, where the statement has one


@dataclass(slots=True)
class RulesDecl(Node):
    name: Value
    extends: Value | None
    statements: list[RuleStmt]
    close: Close


Block = PieDecl | RulesDecl


@dataclass(slots=True)
class SyntaxFile:
    path: str
    blocks: list[Block]
    broken_names: set[str]             # names of blocks that failed to parse
    trailer: list[str]                 # comments after the last block


# --- parsing -------------------------------------------------------------------------------

@cache
def _parser() -> Lark:
    return Lark.open(
        "grammar.lark", rel_to=__file__, parser="lalr", propagate_positions=True,
        maybe_placeholders=True,
    )


@dataclass(slots=True)
class _Chunk:
    start: int           # offset of the first character
    end: int             # offset after the last character
    line: int
    column: int
    too_deep: tuple[int, int] | None = None     # the '{' that opens more than MAX_NESTING blocks


@dataclass(slots=True)
class _Comment:
    line: int
    column: int
    text: str
    blank_before: bool   # a blank line separates it from what comes before


def _scan(text: str) -> tuple[list[_Chunk], list[_Comment]]:
    """Cut the text into top-level blocks and collect comments, in one pass."""
    chunks: list[_Chunk] = []
    comments: list[_Comment] = []
    depth = 0
    start: _Chunk | None = None
    line, line_start = 1, 0
    last_content_line = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            line_start = i + 1
            i += 1
            continue
        if ch == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank = last_content_line > 0 and line - last_content_line > 1
            comments.append(_Comment(line, i - line_start + 1, text[i:j].rstrip(), blank))
            last_content_line = line
            i = j
            continue
        if ch.isspace():
            i += 1
            continue
        last_content_line = line
        if start is None:
            start = _Chunk(i, n, line, i - line_start + 1)
        if ch == '"':
            j = text.find('"', i + 1)
            k = text.find("\n", i + 1)
            if j < 0 or (0 <= k < j):
                i = n if k < 0 else k   # unterminated: the parser will say so
                continue
            i = j + 1
            continue
        if ch == "{":
            depth += 1
            if depth > MAX_NESTING and start.too_deep is None:
                start.too_deep = (line, i - line_start + 1)
        elif ch == "}":
            depth -= 1
            if depth <= 0:
                start.end = i + 1
                chunks.append(start)
                start, depth = None, 0
        i += 1
    if start is not None:
        chunks.append(start)
    return chunks, comments


_WORDS = {
    "NAME": 'a name in double quotes, like "Bonds"',
    "PERCENT": "a percentage, like 40%",
    "SYMBOL": "a ticker symbol in capitals, like VTI",
    "MONEY": "a dollar amount, like $25",
    "WORD": "a word",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "MORETHAN": "'>'",
    "EQUAL": "'equal'",
    "_EXTENDS": "'extends'",
    "$END": "the end of the file",
}
_SLICE = {"SYMBOL", "PIE", "USE"}
_RULE = {"ON", "CASH", "INVEST", "WHEN", "EVERY", "LOTS", "AVOID"}


def _describe(expected: set[str]) -> str:
    expected = set(expected)
    parts: list[str] = []
    if "PERCENT" in expected and "LBRACE" in expected:
        parts.append("a percentage (like 40%)")
        expected.discard("PERCENT")
    if _SLICE <= expected:
        parts.append("a slice (a ticker symbol like VTI, a nested 'pie' or 'use')")
        expected -= _SLICE
    if _RULE <= expected:
        parts.append("a rule ('on', 'cash reserve', 'invest minimum', 'when drift', 'every', 'lots' or 'avoid')")
        expected -= _RULE
    if "RBRACE" in expected:
        expected.discard("RBRACE")
        closing = "'}' to close the block"
    else:
        closing = None
    parts += sorted(_WORDS.get(t, f"'{t.lower()}'") for t in expected)
    if closing:
        parts.append(closing)
    if not parts:
        return "something else"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?(?![0-9.%])")


_FOUND_CHARS = 30      # what an error quotes of the text it did not expect


def _found_at(text: str, pos: int) -> str:
    m = re.compile(r"[^\s{}#]+|[{}]").match(text, pos)
    return m.group(0)[:_FOUND_CHARS] if m else text[pos:pos + 1]


def _hint(found: str, expected: set[str]) -> str:
    if found.startswith("\ufeff"):
        return " (a byte-order mark, U+FEFF, that an editor left in the text: remove it)"
    if "PERCENT" in expected and _NUMBER.fullmatch(found):
        return " (a percentage needs a % sign, like 40%)"
    if "SYMBOL" in expected and re.fullmatch(r"[a-z][a-z0-9.\-]*", found):
        return f" (ticker symbols are written in capitals: {found.upper()})"
    if found.startswith('"') and found.count('"') == 1:
        return ' (a name needs its closing ")'
    if "MONEY" in expected and _NUMBER.fullmatch(found):
        return f" (amounts start with $, like ${found})"
    return ""


_MAX_ERRORS_PER_BLOCK = 10


def _at_end(err: UnexpectedInput) -> bool:
    return isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END")


def _unclosed(text: str, start: int, end: int) -> int | None:
    """The offset of the innermost '{' in text[start:end] that is never closed."""
    opened: list[int] = []
    i = start
    while i < end:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            i = end if j < 0 else j
            continue
        if ch == '"':
            j = text.find('"', i + 1)
            k = text.find("\n", i + 1)
            i = (end if k < 0 else k) if j < 0 or 0 <= k < j else j + 1
            continue
        if ch == "{":
            opened.append(i)
        elif ch == "}" and opened:
            opened.pop()
        i += 1
    return opened[-1] if opened else None


def _ended_early(err: UnexpectedInput, text: str, collector: _Block, chunk: _Chunk) -> None:
    """The file (or block) ended inside a block: say where it ended, and which '{' was
    never closed, at that brace too."""
    end_line = text.count("\n", 0, chunk.end) + 1
    end_col = chunk.end - (text.rfind("\n", 0, chunk.end) + 1) + 1
    expected = _describe(getattr(err, "expected", None) or set())
    brace = _unclosed(text, chunk.start, chunk.end)
    if brace is None:
        collector.error((end_line, end_col), f"the block ends too early: expected {expected}")
        return
    line = text.count("\n", 0, brace) + 1
    col = brace - (text.rfind("\n", 0, brace) + 1) + 1
    collector.error((end_line, end_col), f"the block ends too early: expected {expected}; "
                                         f"the '{{' at line {line}, column {col} is never closed",
                    notes=(((line, col), "this '{' is never closed"),))


def _syntax_error(err: UnexpectedInput, text: str, collector: _Block, chunk: _Chunk) -> None:
    if isinstance(err, UnexpectedEOF):
        _ended_early(err, text, collector, chunk)
        return
    if isinstance(err, UnexpectedCharacters):
        found = _found_at(text, err.pos_in_stream)
        expected = set(err.allowed or ())
    else:
        assert isinstance(err, UnexpectedToken)
        if err.token.type == "$END":
            _ended_early(err, text, collector, chunk)
            return
        found = str(err.token.value)
        expected = set(err.expected or ())
    collector.error(
        (err.line, err.column),
        f"expected {_describe(expected)}, but found '{found[:_FOUND_CHARS]}'{_hint(found, expected)}",
    )


def _src(collector: _Block, tok: Token | Tree) -> Source:
    if isinstance(tok, Token):
        return collector.source(tok.line, tok.column)
    return collector.source(tok.meta.line, tok.meta.column)


def _value(collector: _Block, tok: Token | None) -> Value | None:
    return None if tok is None else Value(str(tok), _src(collector, tok))


def _name(collector: _Block, tok: Token) -> Value:
    return Value(str(tok)[1:-1], _src(collector, tok))


def _close(collector: _Block, tree: Tree) -> Close:
    return Close(collector.source(tree.meta.line, tree.meta.column))


def _build(tree: Tree, c: _Block) -> Block | SecurityDecl | UseDecl:
    kind = tree.data
    ch = tree.children
    if kind == "pie":
        name, percent, equal, *slices, close = ch
        return PieDecl(_src(c, tree), _name(c, name), _value(c, percent), equal is not None,
                       [_build(s, c) for s in slices], _close(c, close))
    if kind == "security":
        sym, percent = ch
        return SecurityDecl(_src(c, tree), str(sym), _value(c, percent))
    if kind == "use":
        name, percent = ch
        return UseDecl(_src(c, tree), _name(c, name), _value(c, percent))
    if kind == "rules":
        name, extends, *stmts, close = ch
        return RulesDecl(_src(c, tree), _name(c, name),
                         None if extends is None else _name(c, extends),
                         [_statement(s, c) for s in stmts], _close(c, close))
    raise AssertionError(kind)


def _statement(tree: Tree, c: _Block) -> RuleStmt:
    words = [Value(str(t), _src(c, t)) for t in tree.children if t.type == "WORD"]
    values = [Value(str(t), _src(c, t)) for t in tree.children if t.type in ("MONEY", "PERCENT")]
    return RuleStmt(_src(c, tree), str(tree.data), words, values[0] if values else None)


def _anchors(blocks: list[Block]) -> list[Node]:
    """Every node that `fmt` prints as a line of its own, in file order."""
    out: list[Node] = []

    def walk(node: Node) -> None:
        out.append(node)
        if isinstance(node, PieDecl):
            for s in node.slices:
                walk(s)
            out.append(node.close)
        elif isinstance(node, RulesDecl):
            out.extend(node.statements)
            out.append(node.close)

    for b in blocks:
        walk(b)
    return out


def _attach(blocks: list[Block], comments: list[_Comment]) -> list[str]:
    anchors = _anchors(blocks)
    anchors.sort(key=lambda a: (a.src.line, a.src.column))
    trailer: list[str] = []
    k = 0
    for com in comments:
        while k < len(anchors) and (anchors[k].src.line, anchors[k].src.column) < (com.line, com.column):
            k += 1
        before = anchors[k - 1] if k else None
        if before is not None and before.src.line == com.line:
            before.trailing = com.text if before.trailing is None else f"{before.trailing} {com.text[1:].strip()}"
        elif k < len(anchors):
            if com.blank_before and anchors[k].leading:
                anchors[k].leading.append("")
            anchors[k].leading.append(com.text)
        else:
            if com.blank_before and trailer:
                trailer.append("")
            trailer.append(com.text)
    return trailer


_BLOCK_NAME = re.compile(r'\s*(?:pie|rules)\s+"([^"\n]*)"')


def _mark_broken(text: str, chunk: _Chunk, broken: set[str]) -> None:
    """A block that did not parse: its name, so that a `use` of it is not reported again."""
    m = _BLOCK_NAME.match(text, chunk.start)
    if m:
        broken.add(m.group(1))


class _Block:
    """The collector as one block parsed on its own sees it: lark counts lines and columns
    from the block's first character; this moves them to where the block is in the file
    (rather than padding each block with the lines before it, which is quadratic)."""

    def __init__(self, collector: Collector, chunk: _Chunk):
        self.collector = collector
        self.lines = chunk.line - 1
        self.columns = chunk.column - 1          # on the block's first line only

    def at(self, line: int, column: int) -> tuple[int, int]:
        return line + self.lines, column + (self.columns if line == 1 else 0)

    def source(self, line: int, column: int) -> Source:      # once per token: kept cheap
        return Source(self.collector.file, line + self.lines, column + self.columns if line == 1 else column)

    def error(self, where: tuple[int, int], message: str,
              notes: tuple[tuple[tuple[int, int], str], ...] = ()) -> None:
        self.collector.error(self.at(*where), message, tuple((self.at(*p), text) for p, text in notes))


def parse_text(text: str, collector: Collector) -> SyntaxFile:
    """Parse a whole file; syntax errors go to the collector, good blocks are returned."""
    chunks, comments = _scan(text)
    blocks: list[Block] = []
    broken: set[str] = set()
    parser = _parser()
    for chunk in chunks:
        if collector.overflowing:
            break                   # no further error would be shown
        if chunk.too_deep is not None:
            collector.error(chunk.too_deep, f"blocks nest at most {MAX_NESTING} deep; this '{{' opens "
                                            f"block {MAX_NESTING + 1}")
            _mark_broken(text, chunk, broken)
            continue
        source = text[chunk.start:chunk.end]
        block = _Block(collector, chunk)
        errors: list[UnexpectedInput] = []

        def recover(err: UnexpectedInput) -> bool:
            # Skip the token and go on, so that a later mistake in the same block is
            # reported too; a block with errors is never compiled.
            errors.append(err)
            return len(errors) < _MAX_ERRORS_PER_BLOCK
        tree = None
        try:
            tree = parser.parse(source, on_error=recover)
        except UnexpectedInput as err:
            if not errors or err is not errors[-1]:
                errors.append(err)
        if errors:
            whole = _Chunk(0, len(source), 1, 1)
            reported, ended = 0, False
            for err in errors:
                line = getattr(err, "line", -1)
                if ended or (line != -1 and line <= reported and not _at_end(err)):
                    continue            # one error a line: the rest of a line is its echo
                _syntax_error(err, source, block, whole)
                reported, ended = max(reported, line), _at_end(err)
            _mark_broken(text, chunk, broken)
            continue
        blocks.extend(_build(t, block) for t in tree.children)  # type: ignore[union-attr,misc]
    trailer = _attach(blocks, comments)
    return SyntaxFile(collector.file, blocks, broken, trailer)


