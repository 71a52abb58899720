"""Errors as values: every problem in a policy file names file, line and column.

A stage collects `Diagnostic`s instead of stopping at the first; `PolicyError` carries all
of them, sorted by position, and renders each with the offending line and a caret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .vocabulary import MAX_ERRORS, MAX_MESSAGE_CHARS, QUOTE_CHARS


class Source(NamedTuple):
    """Where something was written: 1-based line and column. A tuple (not a frozen
    dataclass): the parser makes one per token, and a tuple is four times cheaper to make."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def _window(line_text: str, column: int, width: int = QUOTE_CHARS) -> tuple[str, int]:
    """The part of a long line around a column (elided with '...'), and the column within it."""
    column = max(column, 1)
    if len(line_text) <= width:
        return line_text, column
    start = min(max(column - 1 - width // 2, 0), len(line_text) - width)
    part = line_text[start:start + width]
    column -= start
    if start > 0:
        part, column = "..." + part, column + 3
    if start + width < len(line_text):
        part += "..."
    return part, column


def _quote(head: str, line_text: str, column: int) -> str:
    if not line_text:
        return head
    part, column = _window(line_text, column)
    caret = " " * (column - 1) + "^"
    return f"{head}\n    {part.expandtabs(1)}\n    {caret}"


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
    """Gathers diagnostics for one file and quotes its lines. It keeps the first MAX_ERRORS
    and notes that there are more, so that a file of many mistakes costs what a file of a
    few does (a stage may stop early once `overflowing`)."""

    def __init__(self, file: str, text: str):
        self.file = file
        self._lines = text.splitlines()
        self._kept: list[Diagnostic] = []
        self._first_more: Source | None = None  # where the first error not kept is

    @property
    def count(self) -> int:
        return len(self._kept)

    @property
    def overflowing(self) -> bool:
        """Errors have been dropped: finding more changes nothing that is shown."""
        return self._first_more is not None

    @property
    def full(self) -> bool:
        """No more diagnostics will be kept: skip work that only improves their wording."""
        return len(self._kept) >= MAX_ERRORS

    @property
    def diagnostics(self) -> list[Diagnostic]:
        if self._first_more is None:
            return list(self._kept)
        return [*self._kept, Diagnostic(self._first_more, f"too many errors: this one and any more are "
                                                          f"not shown (the first {MAX_ERRORS} found are)")]

    def source(self, line: int, column: int) -> Source:
        return Source(self.file, line, column)

    def _line(self, src: Source) -> str:
        return self._lines[src.line - 1] if 0 < src.line <= len(self._lines) else ""

    def error(self, where: Source | tuple[int, int], message: str,
              notes: tuple[tuple[tuple[int, int], str], ...] = ()) -> None:
        src = where if isinstance(where, Source) else self.source(*where)
        if self.full:
            self._first_more = self._first_more or src
            return
        if len(message) > MAX_MESSAGE_CHARS:      # a long word or number quoted: keep both ends
            half = (MAX_MESSAGE_CHARS - 3) // 2
            message = message[:half] + "..." + message[-half:]
        extra = tuple(Note(self.source(*at), text, self._line(self.source(*at))) for at, text in notes)
        self._kept.append(Diagnostic(src, message, self._line(src), extra))
