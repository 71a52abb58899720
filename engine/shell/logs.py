"""structlog set-up: JSON lines in production, readable lines in a terminal, always stderr.

Window code binds window id, account, symbol and client order id to its lines; secrets are
never passed to a logger (keys stay in the environment), and a last processor masks any
value whose key looks like one, in case.

structlog (and the rich it pulls in) is imported only by a process that logs: a module that
logs takes its logger from `logger()`, which configures the defaults if nobody has, so a
command that only reads or writes the ledger never pays for it (bench/cli.py).
"""

from __future__ import annotations

import json as _json
import logging
import sys
from pathlib import Path
from typing import Any

_SECRET_WORDS = ("secret", "password", "api_key", "apikey", "token")


def _mask_secrets(_logger, _name, event: dict) -> dict:
    for k in list(event):
        if any(w in k.lower() for w in _SECRET_WORDS):
            event[k] = "***"
    return event


class _Stderr:
    """Whatever sys.stderr is when a line is written (tests and daemons may swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Compact:
    """The last processor in compact mode: every line goes to the log file, in full, as
    JSON; the terminal gets one short line per window step (unless quiet) and every warning
    or error, and nothing else."""

    STEPS = ("window step", "window closed", "window interrupted")

    def __init__(self, file: Path, quiet: bool):
        self.file, self.quiet = file, quiet

    def __call__(self, _logger, _name, event: dict) -> str:
        with open(self.file, "a", encoding="utf-8") as f:
            f.write(_json.dumps(event, default=str) + "\n")
        level = event.get("level", "info")
        if level in ("warning", "error", "critical"):
            extra = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "level", "timestamp"))
            return f"{level}: {event['event']}{' ' + extra if extra else ''}"
        if not self.quiet and event.get("event") in self.STEPS:
            if event["event"] == "window step":
                return f"  window {event.get('window', '')} {event.get('step')} ({event.get('seconds')} s)"
            return f"  {event['event']}: " + ", ".join(f"{k} {v}" for k, v in event.items()
                                                     if k not in ("event", "level", "timestamp", "logger"))
        import structlog
        raise structlog.DropEvent


def compact(file: Path, *, quiet: bool = False, level: int = logging.INFO, alerts=None) -> Path:
    """Send the logs to `file` (JSON lines, in full) and keep the terminal short: one line per
    window step (none when `quiet`), warnings and errors. For `pies window run` and `pies
    demo` on a terminal, or with --quiet. Returns the file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    configure(json=False, level=level, alerts=alerts, tail=[_Compact(file, quiet)])
    return file


def wants_compact(quiet: bool) -> bool:
    """Compact output when asked (--quiet) or when a person watches (stderr is a terminal)."""
    return quiet or sys.stderr.isatty()


def configure(*, json: bool | None = None, level: int = logging.INFO, alerts=None,
              tail: list[Any] | None = None) -> None:
    """`alerts` (an engine.shell.alerts.Alerter) turns lines marked alert=True into posts."""
    import structlog
    if json is None:
        json = not sys.stderr.isatty()
    # Piped (JSON), a traceback is kept as the line's `exception` field; a terminal shows it.
    tail = tail or ([structlog.processors.format_exc_info, structlog.processors.JSONRenderer()] if json
                    else [structlog.dev.ConsoleRenderer(colors=False)])
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            *([alerts.processor] if alerts is not None else []),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),
        cache_logger_on_first_use=False,
    )


def ensure_configured() -> None:
    """The defaults (`configure()`), unless this process configured structlog already."""
    import structlog
    if not structlog.is_configured():
        configure()


def logger(name: str):
    """A module's structlog logger; the first one of a process that configured nothing yet
    sets the defaults (JSON lines on stderr when piped)."""
    import structlog
    ensure_configured()
    return structlog.get_logger(name)
