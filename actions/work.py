"""What a person does on a CTA: each verb checks who may, changes the CTA, and logs an event.

Errors are one-line ``ValueError`` (bad input) or ``PermissionError`` (not this person's CTA);
the pages and the API turn them into problem+json.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from actions.models import Cta, User
from actions.store import record

ACTIVITY_CHANNELS = ("call", "email", "meeting")
OVERRIDE_TARGETS = ("prediction", "play")


def may_work(s: Session, user: User, cta: Cta) -> bool:
    """A CSM works their own CTAs, a manager their team's and reports', an admin every one."""
    if user.role == "admin" or cta.owner_id == user.id:
        return True
    if user.role != "manager" or cta.owner_id is None:
        return False
    owner = s.get(User, cta.owner_id)
    return owner is not None and (
        owner.manager_id == user.id or (user.team_id is not None and owner.team_id == user.team_id)
    )


def _check(s: Session, user: User, cta: Cta, open_only: bool = True) -> None:
    if not may_work(s, user, cta):
        raise PermissionError(f"CTA {cta.id} ({cta.account_id}) is not in {user.name}'s book")
    if open_only and cta.status == "closed":
        raise ValueError(f"CTA {cta.id} is closed ({cta.close_reason})")


def _text(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise ValueError(f"{what}: required, and not blank")
    if len(value) > 2000:
        raise ValueError(f"{what}: at most 2,000 characters")
    return value.strip()


def acknowledge(s: Session, cta: Cta, user: User, now: datetime) -> None:
    """Seen and taken on: escalation stops."""
    _check(s, user, cta)
    if cta.acknowledged is None:
        cta.acknowledged = now
    record(s, "acknowledged", cta.account_id, user.name, now, cta)


def note(s: Session, cta: Cta, user: User, text: str, now: datetime) -> None:
    """A note on the timeline."""
    _check(s, user, cta, open_only=False)
    record(s, "note", cta.account_id, user.name, now, cta, reason=_text(text, "note"))


def log_activity(
    s: Session, cta: Cta, user: User, channel: str, outcome: str | None, text: str | None, now
) -> None:
    """A call, e-mail or meeting with the customer, with its outcome (``no_answer`` ...)."""
    _check(s, user, cta, open_only=False)
    if channel not in ACTIVITY_CHANNELS:
        raise ValueError(f"channel {channel!r}: use one of {', '.join(ACTIVITY_CHANNELS)}")
    if cta.acknowledged is None:
        cta.acknowledged = now  # working it is acknowledging it
    record(
        s,
        "activity",
        cta.account_id,
        user.name,
        now,
        cta,
        channel=channel,
        outcome=outcome or None,
        reason=(text or "").strip() or None,
    )


def start_play(s: Session, cta: Cta, user: User, now: datetime) -> None:
    """The CTA's play is under way."""
    _check(s, user, cta)
    if not cta.play:
        raise ValueError(f"CTA {cta.id} has no play to start")
    cta.acknowledged = cta.acknowledged or now
    record(s, "play_started", cta.account_id, user.name, now, cta, play=cta.play)


def close(s: Session, cta: Cta, user: User, reason: str, now: datetime) -> None:
    """Closed by a person, with a reason."""
    _check(s, user, cta)
    cta.status, cta.closed, cta.close_reason = "closed", now, _text(reason, "reason")
    cta.snoozed_until = None
    record(s, "closed", cta.account_id, user.name, now, cta, reason=cta.close_reason)


def play_done(s: Session, cta: Cta, user: User, outcome: str, text: str | None, now) -> None:
    """The play finished, with its outcome; the CTA closes."""
    _check(s, user, cta)
    if not cta.play:
        raise ValueError(f"CTA {cta.id} has no play")
    outcome = _text(outcome, "outcome")
    record(
        s,
        "play_done",
        cta.account_id,
        user.name,
        now,
        cta,
        play=cta.play,
        outcome=outcome,
        reason=(text or "").strip() or None,
    )
    close(s, cta, user, f"play done: {outcome}", now)


def snooze(
    s: Session,
    cta: Cta,
    user: User,
    until: date,
    reason: str,
    now: datetime,
    p_churn_90d: float | None = None,
) -> None:
    """Out of the way until ``until`` (woken early if the account worsens), with a reason.

    ``p_churn_90d``: the account's risk now (default the figure that raised the CTA).
    """
    _check(s, user, cta)
    if until <= now.date():
        raise ValueError(f"snooze until {until}: give a date after today ({now.date()})")
    reason = _text(reason, "reason")
    cta.status, cta.snoozed_until = "snoozed", until
    cta.snooze_p_churn_90d = (
        p_churn_90d if p_churn_90d is not None else cta.figures.get("p_churn_90d")
    )
    cta.acknowledged = cta.acknowledged or now
    record(s, "snoozed", cta.account_id, user.name, now, cta, until=str(until), reason=reason)


def override(s: Session, cta: Cta, user: User, target: str, reason: str, now) -> None:
    """The person disagrees with the prediction or the play (e.g. migrating, not leaving)."""
    _check(s, user, cta)
    if target not in OVERRIDE_TARGETS:
        raise ValueError(f"override {target!r}: use one of {', '.join(OVERRIDE_TARGETS)}")
    reason = _text(reason, "reason")
    record(s, "overridden", cta.account_id, user.name, now, cta, target=target, reason=reason)
    close(s, cta, user, f"{target} overridden: {reason}", now)


def reassign(s: Session, cta: Cta, user: User, to: User, reason: str | None, now) -> None:
    """Another owner (a CSM the person may hand work to: their own team's, or any for admins)."""
    _check(s, user, cta)
    if to.id == cta.owner_id:
        raise ValueError(f"CTA {cta.id} is already {to.name}'s")
    if user.role == "csm" and to.team_id != user.team_id:
        raise PermissionError(f"{to.name} is not in {user.name}'s team")
    before = None if cta.owner_id is None else s.get(User, cta.owner_id)
    cta.owner_id, cta.level = to.id, 0
    record(
        s,
        "reassigned",
        cta.account_id,
        user.name,
        now,
        cta,
        to=to.name,
        previous=None if before is None else before.name,
        reason=(reason or "").strip() or None,
    )
