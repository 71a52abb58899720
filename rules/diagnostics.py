"""Errors as values: every problem in a policy file names file, line and column.

A stage collects `Diagnostic`s instead of stopping at the first; `PolicyError` carries all
of them, sorted by position, and renders each with the offending line and a caret.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, order=True)
class Source:
    """Where something was written: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def _quote(head: str, line_text: str, column: int) -> str:
    if not line_text:
        return head
    caret = " " * (max(column, 1) - 1) + "^"
    return f"{head}\n    {line_text.expandtabs(1)}\n    {caret}"


@dataclass(frozen=True, slots=True)
class Note:
    """A second place an error concerns (e.g. the '{' a block never closed)."""

    source: Source
    message: str
    line_text: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    source: Source
    message: str
    line_text: str = field(default="", compare=False)
    notes: tuple[Note, ...] = field(default=(), compare=False)

    def render(self) -> str:
        out = _quote(f"{self.source}: error: {self.message}", self.line_text, self.source.column)
        for n in self.notes:
            out += "\n" + _quote(f"{n.source}: note: {n.message}", n.line_text, n.source.column)
        return out

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "file": self.source.file,
            "line": self.source.line,
            "column": self.source.column,
            "message": self.message,
        }
        if self.notes:
            out["notes"] = [{"line": n.source.line, "column": n.source.column, "message": n.message}
                            for n in self.notes]
        return out


class PolicyError(Exception):
    """A policy file (or several) did not compile. Holds every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: d.source)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class Collector:
    """Gathers diagnostics for one file and quotes its lines."""

    def __init__(self, file: str, text: str):
        self.file = file
        self._lines = text.splitlines()
        self.diagnostics: list[Diagnostic] = []

    def source(self, line: int, column: int) -> Source:
        return Source(self.file, line, column)

    def _line(self, src: Source) -> str:
        return self._lines[src.line - 1] if 0 < src.line <= len(self._lines) else ""

    def error(self, where: Source | tuple[int, int], message: str,
              notes: tuple[tuple[tuple[int, int], str], ...] = ()) -> None:
        src = where if isinstance(where, Source) else self.source(*where)
        extra = tuple(Note(self.source(*at), text, self._line(self.source(*at))) for at, text in notes)
        self.diagnostics.append(Diagnostic(src, message, self._line(src), extra))
