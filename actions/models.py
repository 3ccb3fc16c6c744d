"""The tables of the work-item store (their history is in ``actions/migrations``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("csm", "manager", "admin")
STATUSES = ("open", "snoozed", "closed")
# Escalation levels by number: 0 is the owner; each step goes one manager up.
LEVELS = ("csm", "manager", "executive")
SYSTEM = "radar"  # the actor of what the daily run does by itself


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite stores none: kept naive there, as UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        """Aware in, naive UTC stored (a naive value is refused: its zone is unknown)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        """Stored naive UTC out as aware UTC."""
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can address on every backend."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Team(Base):
    """A customer-success team."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class User(Base):
    """A person: a CSM owns accounts, a manager the team's, an admin everything."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # as in accounts.csm_owner
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20), default="csm")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[datetime]


class Cta(Base):
    """A call to action: one account, one cause, one owner at a time."""

    __tablename__ = "ctas"
    __table_args__ = (Index("ix_ctas_account_cause", "account_id", "cause"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    cause: Mapped[str] = mapped_column(String(200))  # "alert:<code>" or "play:<code>"
    play: Mapped[str | None] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    opened: Mapped[datetime]
    due: Mapped[datetime]  # the current level must answer by then
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged: Mapped[datetime | None]
    snoozed_until: Mapped[date | None] = mapped_column(Date)
    # The 90-day churn risk when snoozed: a rise past it by a margin ends the snooze early.
    snooze_p_churn_90d: Mapped[float | None] = mapped_column(Float)
    closed: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Text)
    figures: Mapped[dict[str, Any]]  # what raised it: as-of, probabilities, ARR, health
    last_seen: Mapped[date] = mapped_column(Date)  # last scoring as-of the cause was present
    absent_runs: Mapped[int] = mapped_column(Integer, default=0)


class Event(Base):
    """Append-only: every change to a CTA, and every note, activity or message, with who."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    cta_id: Mapped[int | None] = mapped_column(ForeignKey("ctas.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]


class RunLock(Base):
    """One row while a daily run holds the store: a second run at once does nothing."""

    __tablename__ = "run_lock"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired: Mapped[datetime]
    expires: Mapped[datetime]


class Outbox(Base):
    """A message written before it is sent; sent once (the dedupe key), retried with backoff."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("dedupe_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(100))  # a channel name of the configuration
    recipient: Mapped[str] = mapped_column(String(320))  # user name
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(40))  # digest, critical, escalation
    cta_id: Mapped[int | None] = mapped_column(ForeignKey("ctas.id"))
    created: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try: Mapped[datetime] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class Run(Base):
    """One daily run: its scoring date and what it did (the summary line)."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[date | None] = mapped_column(Date)
    started: Mapped[datetime]
    finished: Mapped[datetime | None]
    summary: Mapped[dict[str, Any]]


@event.listens_for(Event, "before_update")
@event.listens_for(Event, "before_delete")
def _append_only(mapper, connection, target: Event) -> None:
    """The event log is the record: nothing rewrites or removes an entry."""
    raise ValueError(f"event {target.id} is append-only")


class Token(Base):
    """A personal API token: only its SHA-256 is kept (the token is shown once)."""

    __tablename__ = "tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime]
