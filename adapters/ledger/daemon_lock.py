"""One daemon per ledger: a lock held for the daemon's whole life.

PostgreSQL: a session advisory lock on a connection kept open; the connection's
application_name says who holds it (pid and host), so a refused daemon can name the holder
even from another machine, and the lock goes away with the holder's connection. SQLite:
an exclusive `flock` on a file beside the database, holding the same words.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from engine.core.errors import Conflict

from .store import Ledger

def _key(database: str, schema: str) -> int:
    """The advisory lock's number for this ledger (a database and schema): 31+31 bits."""
    digest = hashlib.sha256(f"pies-daemon:{database}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x3FFFFFFF7FFFFFFF


def _me() -> str:
    return f"pies-daemon pid={os.getpid()} host={socket.gethostname()} since={datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


class DaemonLock:
    def __init__(self, ledger: Ledger, data_dir: Path):
        self.ledger = ledger
        self.data_dir = data_dir
        self._conn = None
        self._file = None
        self._k = 0

    def acquire(self) -> None:
        """Take the lock or raise Conflict naming the daemon that holds it."""
        if self.ledger.engine.dialect.name == "sqlite":
            self._acquire_file()
        else:
            self._acquire_advisory()

    def _acquire_advisory(self) -> None:
        conn = self.ledger.engine.connect()
        db, schema = conn.execute(text("select current_database(), current_schema()")).one()
        self._k = _key(db, schema)
        conn.execute(text("select set_config('application_name', :me, false)"), {"me": _me()[:63]})
        got = conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": self._k}).scalar()
        conn.commit()
        if got:
            self._conn = conn
            return
        holder = conn.execute(text(
            "select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid "
            "where l.locktype = 'advisory' and l.granted and l.objid = :lo and l.classid = :hi "
            "and l.database = (select oid from pg_database where datname = current_database())"),
            {"lo": self._k & 0xFFFFFFFF, "hi": self._k >> 32}).scalar()
        conn.close()
        raise Conflict(f"another daemon already runs on this ledger ({holder or 'holder unknown'}); "
                          f"stop it first")

    def _lock_path(self) -> Path:
        db = self.ledger.url.split("///", 1)[-1]
        return Path(db + ".daemon.lock") if db and db != ":memory:" else self.data_dir / "daemon.lock"

    def _acquire_file(self) -> None:
        path = self._lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "holder unknown"
            f.close()
            raise Conflict(f"another daemon already runs on this ledger ({holder}); stop it first") from None
        f.seek(0)
        f.truncate()
        f.write(_me() + "\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("select pg_advisory_unlock(:k)"), {"k": self._k})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
        if self._file is not None:
            self._file.truncate(0)
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
