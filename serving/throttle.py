"""Wrong API keys counted once for the whole server: a small SQLite file all workers share.

Each BentoML worker is its own process, so an in-memory count let a guesser spread its tries
over the workers (the first 429 came at the 41st wrong key with 2 workers, not the 21st).
The count lives instead in ``throttle.sqlite`` in the server's state folder
(``$RADAR_STATE_DIR``, which ``radar serve`` always sets): one row per wrong key, read with
one indexed query. SQLite is in the standard library, needs no server, and its locking
makes the count exact across processes; WAL mode lets readers go on while one writes.

Without ``$RADAR_STATE_DIR`` (the service started by ``bentoml serve`` itself, or a test
client in process) each process counts alone, and a warning says so.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger("renewal_radar.service")

STATE_DIR_ENV = "RADAR_STATE_DIR"
FILE_NAME = "throttle.sqlite"
BUSY_TIMEOUT_MS = 2_000  # a write by another worker takes microseconds; never wait forever


class SharedThrottle:
    """Wrong keys per client address in a sliding window, in SQLite (or in memory).

    ``path`` None keeps the table in this process's memory (the same rules, not shared).
    """

    def __init__(self, path: Path | None, max_failures: int, window_s: float) -> None:
        self.path = path
        self.max_failures = max_failures
        self.window_s = window_s
        self._lock = threading.Lock()  # the pages' form handler may run in a thread
        self._db: sqlite3.Connection | None = None
        self._pruned = 0.0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path is None:
                db = sqlite3.connect(":memory:", check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=OFF")  # a lost count after a crash is harmless
            db.execute("CREATE TABLE IF NOT EXISTS failures (client TEXT NOT NULL, at REAL)")
            db.execute("CREATE INDEX IF NOT EXISTS failures_client ON failures (client, at)")
            db.commit()
            self._db = db
        return self._db

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds until ``client`` may try again, or None when it is not blocked."""
        now = time.time() if now is None else now
        with self._lock:
            n, first = (
                self._conn()
                .execute(
                    "SELECT count(*), min(at) FROM failures WHERE client = ? AND at > ?",
                    (client, now - self.window_s),
                )
                .fetchone()
            )
        if n < self.max_failures:
            return None
        return max(1, int(self.window_s - (now - first)) + 1)

    def failed(self, client: str, now: float | None = None) -> None:
        """Record a wrong key from ``client``."""
        now = time.time() if now is None else now
        with self._lock:
            db = self._conn()
            db.execute("INSERT INTO failures VALUES (?, ?)", (client, now))
            if now - self._pruned > self.window_s:  # keep the table to one window's rows
                db.execute("DELETE FROM failures WHERE at <= ?", (now - self.window_s,))
                self._pruned = now
            db.commit()

    def clear(self) -> None:
        """Forget every failure (tests)."""
        with self._lock:
            self._conn().execute("DELETE FROM failures")
            self._conn().commit()


class LazyThrottle:
    """The server's throttle, opened on first use from ``$RADAR_STATE_DIR`` (no work at import)."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._throttle: SharedThrottle | None = None
        self._pid = 0

    def get(self) -> SharedThrottle:
        """The throttle of this process (a forked worker opens its own connection)."""
        if self._throttle is None or self._pid != os.getpid():
            state = os.environ.get(STATE_DIR_ENV)
            if not state:
                log.warning(
                    "%s is not set: wrong API keys are counted per worker process",
                    STATE_DIR_ENV,
                )
            path = Path(state) / FILE_NAME if state else None
            self._throttle = SharedThrottle(path, self.max_failures, self.window_s)
            self._pid = os.getpid()
        return self._throttle

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """See :meth:`SharedThrottle.retry_after`."""
        return self.get().retry_after(client, now)

    def failed(self, client: str, now: float | None = None) -> None:
        """See :meth:`SharedThrottle.failed`."""
        self.get().failed(client, now)

    def clear(self) -> None:
        """See :meth:`SharedThrottle.clear`."""
        self.get().clear()

    def reset(self) -> None:
        """Open again from the environment on next use (tests that change it)."""
        self._throttle = None
