"""Exclusive locks the ledger itself enforces, whichever process asks:

- one daemon per ledger (DaemonLock), held for the daemon's whole life;
- one window at a time per broker account (WindowLock), held by whoever runs a window
  (daemon, `pies window run`, the API, the demo) from before it opens the broker until the
  window stops, so no two processes ever submit or record the same window's orders.

PostgreSQL: a session advisory lock on a connection kept open; the connection's
application_name says who holds it (what, pid and host), so a refused caller can name the
holder even from another machine, and the lock goes away with the holder's connection
(a killed process included). SQLite: an exclusive `flock` on a file beside the database,
holding the same words; the kernel drops it when the holder dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from .store import Ledger, LedgerConflict, LedgerError

_MEMORY: dict[tuple[int, str], threading.Lock] = {}     # in-memory SQLite: one process, thread locks
_MEMORY_GUARD = threading.Lock()


def _key(scope: str, database: str, schema: str) -> int:
    """The advisory lock's number for a scope on this ledger (a database and schema): 31+31 bits."""
    digest = hashlib.sha256(f"{scope}:{database}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x3FFFFFFF7FFFFFFF


def describe_process(what: str | None = None) -> str:
    """Who holds a lock, in words: the command (`pies window run` unless told), pid, host, since."""
    if what is None:
        what = " ".join(["pies", *[a for a in sys.argv[1:3] if not a.startswith("-")]]) \
            if Path(sys.argv[0]).name == "pies" else Path(sys.argv[0]).name or "python"
    return f"{what} pid={os.getpid()} host={socket.gethostname()} since={datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


class LedgerLock:
    """An exclusive lock named `scope` on a ledger. `acquire` takes it or raises
    LedgerConflict naming the holder; `held` says whether it is still ours (a PostgreSQL
    connection can be lost); `release` gives it back (and a dead process's goes by itself)."""

    refused = "{holder} holds it"

    def __init__(self, ledger: Ledger, scope: str, file_name: str, *, holder: str | None = None,
                 data_dir: Path | None = None):
        self.ledger = ledger
        self.scope = scope
        self.file_name = file_name
        self.holder = holder or describe_process()
        self.data_dir = data_dir
        self._conn = None
        self._file = None
        self._mem: threading.Lock | None = None
        self._k = 0

    def __enter__(self) -> "LedgerLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @property
    def acquired(self) -> bool:
        return self._conn is not None or self._file is not None or self._mem is not None

    def acquire(self) -> None:
        if self.acquired:
            return
        if self.ledger.engine.dialect.name == "sqlite":
            self._acquire_file()
        else:
            self._acquire_advisory()

    def _refuse(self, holder: str | None):
        return LedgerConflict(self.refused.replace("{holder}", holder or "holder unknown"))

    def _acquire_advisory(self) -> None:
        conn = self.ledger.engine.connect()
        try:
            db, schema = conn.execute(text("select current_database(), current_schema()")).one()
            self._k = _key(self.scope, db, schema)
            conn.execute(text("select set_config('application_name', :me, false)"), {"me": self.holder[:63]})
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
        except BaseException:
            conn.invalidate()       # never back in the pool with our name or a half-taken lock
            conn.close()
            raise
        conn.invalidate()
        conn.close()
        raise self._refuse(holder)

    def _lock_path(self) -> Path | None:
        db = self.ledger.url.split("///", 1)[-1] if "///" in self.ledger.url else ""
        if db and db != ":memory:":
            return Path(db + "." + self.file_name).expanduser()
        return self.data_dir / self.file_name if self.data_dir else None

    def _acquire_file(self) -> None:
        path = self._lock_path()
        if path is None:                  # an in-memory ledger lives in one process
            with _MEMORY_GUARD:
                lock = _MEMORY.setdefault((id(self.ledger.engine), self.scope), threading.Lock())
            if not lock.acquire(blocking=False):
                raise self._refuse("another thread of this process")
            self._mem = lock
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = open(path, "a+", encoding="utf-8")
        except OSError as e:
            raise LedgerError(f"cannot create the lock file {path}: {e.strerror or e}") from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            for _ in range(20):          # the holder writes its name just after it takes the lock
                f.seek(0)
                holder = f.read().strip()
                if holder:
                    break
                time.sleep(0.025)
            f.close()
            raise self._refuse(holder) from None
        f.seek(0)
        f.truncate()
        f.write(self.holder + "\n")
        f.flush()
        self._file = f

    def held(self) -> bool:
        """Still ours? A PostgreSQL lock lives as long as its connection: ask it."""
        if self._conn is not None:
            try:
                self._conn.execute(text("select 1")).scalar()
                self._conn.commit()
            except Exception:  # noqa: BLE001 - any failure means the session, and the lock, may be gone
                return False
            return True
        return self.acquired

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("select pg_advisory_unlock(:k)"), {"k": self._k})
                conn.commit()
            except Exception:  # noqa: BLE001 - a lost connection took the lock with it
                pass
            finally:
                conn.invalidate()     # its application_name names us: not for the pool
                conn.close()
        if self._file is not None:
            f, self._file = self._file, None
            f.truncate(0)
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()
        if self._mem is not None:
            m, self._mem = self._mem, None
            m.release()


class DaemonLock(LedgerLock):
    """One daemon per ledger, for the daemon's whole life."""

    refused = "another daemon already runs on this ledger ({holder}); stop it first"

    def __init__(self, ledger: Ledger, data_dir: Path):
        super().__init__(ledger, "pies-daemon", "daemon.lock", holder=describe_process("pies-daemon"),
                         data_dir=data_dir)


def _file_part(broker: str) -> str:
    return broker if re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", broker) else hashlib.sha256(broker.encode()).hexdigest()[:16]


class WindowLock(LedgerLock):
    """One window at a time per broker account of a ledger: whoever runs a window holds
    it from before the broker is opened until the window stops."""

    def __init__(self, ledger: Ledger, broker: str, *, holder: str | None = None, data_dir: Path | None = None):
        super().__init__(ledger, f"pies-window:{broker}", f"window-{_file_part(broker)}.lock", holder=holder,
                         data_dir=data_dir)
        self.broker = broker
        self.refused = (f"a window of broker account {broker!r} is running already ({{holder}}); "
                        f"it was not started again: wait for it to end (pies status), then run it to resume if needed")
