"""Open the work-item store (migrated to the newest revision), the run lock, the event helper."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, delete, event, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from actions.models import Cta, Event, RunLock

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "head"


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def engine_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (the driver the project pins), SQLite as given."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """An engine; SQLite waits for a busy file rather than failing at once."""
    url = engine_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")  # SQLite ignores foreign keys unless asked
            # Readers (the pages) never wait for the daily run's writes, and each commit
            # (one per message sent) appends to the log instead of rewriting pages.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(connection) -> Config:
    """Alembic's configuration for the migrations shipped in this package, on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


MIGRATION_LOCK = 727_272  # PostgreSQL advisory lock key: one migration at a time


def migrate(engine: Engine, revision: str = HEAD) -> None:
    """Upgrade the store's schema to ``revision`` (the newest by default).

    Two processes opening a new store at once (two daily runs) must not both create it: on
    PostgreSQL an advisory lock orders them (its DDL is transactional); SQLite's DDL is not,
    so a lock file beside the database orders them there.
    """
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), revision)


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on ``<database>.migrate.lock`` for a SQLite file; nothing otherwise."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    import fcntl  # POSIX only, and only for SQLite files

    with open(f"{path}.migrate.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the store is at (None: empty)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@dataclass
class Store:
    """An open store: the engine and a session factory."""

    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed at the end of the block, rolled back on an error."""
        with self.sessions.begin() as s:
            yield s

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()


def open_store(url: str) -> Store:
    """Open the store at ``url`` (a SQLite file is created), migrated to the newest revision."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    migrate(engine)
    return Store(engine, sessionmaker(engine, expire_on_commit=False))


def record(
    s: Session,
    kind: str,
    account_id: str,
    actor: str,
    at: datetime,
    cta: Cta | None = None,
    **payload: Any,
) -> Event:
    """Append an event (the only way anything in the store changes state says so)."""
    e = Event(
        cta_id=None if cta is None else cta.id,
        account_id=account_id,
        at=at,
        actor=actor,
        kind=kind,
        payload={k: v for k, v in payload.items() if v is not None},
    )
    s.add(e)
    return e


class LockHeldError(RuntimeError):
    """Another run holds the store's lock."""


LOCK_NAME = "daily"


def holder_name() -> str:
    """Who takes the lock: host and process, for the message a second run prints."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def run_lock(store: Store, minutes: float, name: str = LOCK_NAME) -> Iterator[str]:
    """Hold the store's run lock for the block; raise :class:`LockHeldError` when another holds it.

    A row in ``run_lock`` (its primary key makes taking it atomic on every backend); a lock
    past its expiry is a crashed run's and is taken over.
    """
    me, t = holder_name(), now_utc()
    until = t + timedelta(minutes=minutes)
    try:
        with store.session() as s:
            s.add(RunLock(name=name, holder=me, acquired=t, expires=until))
    except IntegrityError:
        with store.session() as s:
            took = s.execute(
                update(RunLock)
                .where(RunLock.name == name, RunLock.expires < t)
                .values(holder=me, acquired=t, expires=until)
            ).rowcount
            if not took:
                held = s.scalars(select(RunLock).where(RunLock.name == name)).first()
                since = "?" if held is None else f"{held.acquired:%Y-%m-%d %H:%M} UTC"
                who = "?" if held is None else held.holder
                raise LockHeldError(f"another run ({who}) holds the store since {since}") from None
            log.warning("took over an expired run lock")
    try:
        yield me
    finally:
        with store.session() as s:
            s.execute(delete(RunLock).where(RunLock.name == name, RunLock.holder == me))
