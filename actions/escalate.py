"""Escalation: an unacknowledged CTA past its response time goes one level up (seed 002)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.config import ActionsConfig
from actions.ctas import escalation_deadline, response_due
from actions.models import LEVELS, SYSTEM, Cta, User
from actions.store import record


def level_user(s: Session, owner: User | None, level: int) -> User | None:
    """The person at ``level`` above the owner: the manager, then the manager's manager."""
    u = owner
    for _ in range(level):
        if u is None or u.manager_id is None:
            return None
        u = s.get(User, u.manager_id)
    return u


@dataclass
class Escalation:
    """One step up: the CTA, its new level and who answers now (None: nobody on file)."""

    cta: Cta
    level: int
    to: User | None


def escalate(s: Session, now: datetime, cfg: ActionsConfig) -> list[Escalation]:
    """Move every open, unacknowledged CTA past its deadline one level up; each an event.

    Idempotent: the step sets a new deadline (the response time again, from now), so a second
    call at the same time finds nothing past it.
    """
    due = s.scalars(
        select(Cta).where(
            Cta.status == "open", Cta.acknowledged.is_(None), Cta.level < cfg.max_level
        )
    ).all()
    out = []
    for c in due:
        if now <= escalation_deadline(cfg, c):
            continue
        owner = None if c.owner_id is None else s.get(User, c.owner_id)
        c.level += 1
        c.due = response_due(cfg, c.severity, now)
        to = level_user(s, owner, c.level)
        record(
            s,
            "escalated",
            c.account_id,
            SYSTEM,
            now,
            c,
            level=c.level,
            level_name=LEVELS[c.level],
            to=None if to is None else to.name,
        )
        out.append(Escalation(c, c.level, to))
    return out
