"""structlog set-up: JSON lines in production, readable lines in a terminal, always stderr.

Window code binds window id, account, symbol and client order id to its lines; secrets are
never passed to a logger (keys stay in the environment), and a last processor masks any
value whose key looks like one, in case.
"""

from __future__ import annotations

import logging
import sys

import structlog

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


def configure(*, json: bool | None = None, level: int = logging.INFO, alerts=None) -> None:
    """`alerts` (an engine.shell.alerts.Alerter) turns lines marked alert=True into posts."""
    if json is None:
        json = not sys.stderr.isatty()
    # Piped (JSON), a traceback is kept as the line's `exception` field; a terminal shows it.
    tail = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()] if json \
        else [structlog.dev.ConsoleRenderer(colors=False)]
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
