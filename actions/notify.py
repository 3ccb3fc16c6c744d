"""Notifications through an outbox: written first, sent after, retried, marked sent once.

Channels are apprise URLs (e-mail over SMTP, Slack, Microsoft Teams, plain webhooks ...) from
the configuration. A message's dedupe key is unique in the store, so writing one twice writes
it once; a send that fails is retried with backoff on a later run, and one that succeeded is
never sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from actions.config import ActionsConfig, Channel
from actions.models import LEVELS, SYSTEM, Cta, Outbox, User
from actions.store import record
from features.words import PLAYS, alert_words

log = logging.getLogger(__name__)
DIGEST, CRITICAL, ESCALATION = "digest", "critical", "escalation"


def cause_words(cta: Cta) -> str:
    """A CTA's cause in words: the alert's sentence, or the play's title.

    An alert whose record gave its figures in words (scoring.alert_evidence) is said by
    them: "3 of 5 tickets this month read as frustrated: billing, bugs".
    """
    kind, _, code = cta.cause.partition(":")
    if kind != "alert":
        return PLAYS.get(code, code)
    return (cta.figures or {}).get("reason") or alert_words(code)


def line(cta: Cta) -> str:
    """One CTA on one line: account, severity, cause, play, due."""
    play = f"; play: {PLAYS.get(cta.play, cta.play)}" if cta.play else ""
    return (
        f"{cta.account_id} [{cta.severity}] {cause_words(cta)}{play}; "
        f"due {cta.due:%Y-%m-%d %H:%M} UTC (CTA {cta.id})"
    )


def _address(channel: Channel, user: User) -> str | None:
    """The channel's URL for this recipient; None when it needs an e-mail the user lacks."""
    if "{email}" in channel.url and not user.email:
        return None
    return channel.url.format(email=user.email or "", name=user.name)


def enqueue(
    s: Session,
    cfg: ActionsConfig,
    kind: str,
    to: User,
    subject: str,
    body: str,
    key: str,
    now: datetime,
    cta: Cta | None = None,
) -> int:
    """Write the message to the outbox once per channel that carries ``kind``; returns how many.

    A key already in the outbox is skipped (the unique constraint backs the check, for a writer
    that raced past it).
    """
    written = 0
    for ch in cfg.channels:
        if kind not in ch.kinds:
            continue
        if _address(ch, to) is None:
            log.info("%s: no e-mail on file, %s message not written to %s", to.name, kind, ch.name)
            continue
        dedupe = f"{kind}:{key}:{to.name}:{ch.name}"
        if s.scalars(select(Outbox.id).where(Outbox.dedupe_key == dedupe)).first() is not None:
            continue
        row = Outbox(
            channel=ch.name,
            recipient=to.name,
            subject=subject,
            body=body,
            dedupe_key=dedupe,
            kind=kind,
            cta_id=None if cta is None else cta.id,
            created=now,
            attempts=0,
            next_try=now,
        )
        try:
            with s.begin_nested():
                s.add(row)
        except IntegrityError:
            continue
        written += 1
    return written


def critical_message(s: Session, cfg: ActionsConfig, cta: Cta, owner: User | None, now) -> int:
    """The immediate message for a critical CTA, to its owner."""
    if owner is None:
        return 0
    subject = f"Critical: {cta.account_id}: {cause_words(cta)}"
    return enqueue(s, cfg, CRITICAL, owner, subject, line(cta), str(cta.id), now, cta)


def escalation_message(s: Session, cfg: ActionsConfig, cta: Cta, to: User | None, now) -> int:
    """The message to whoever a CTA was escalated to."""
    if to is None:
        return 0
    subject = f"Escalated to you ({LEVELS[cta.level]}): {cta.account_id}: {cause_words(cta)}"
    body = f"Not acknowledged within its response time.\n{line(cta)}"
    return enqueue(s, cfg, ESCALATION, to, subject, body, f"{cta.id}:{cta.level}", now, cta)


def digests(s: Session, cfg: ActionsConfig, now: datetime) -> int:
    """Each CSM's daily digest of the open CTAs of their accounts: new, overdue, due, escalated.

    One per person and day (the date is in the key); nothing for someone with nothing open.
    """
    open_ctas = s.scalars(select(Cta).where(Cta.status == "open", Cta.owner_id.is_not(None)))
    mine: dict[int, list[Cta]] = {}
    for c in open_ctas:
        mine.setdefault(c.owner_id, []).append(c)
    written = 0
    for uid, ctas in sorted(mine.items()):
        user = s.get(User, uid)
        groups = {
            "New": [c for c in ctas if c.opened > now - timedelta(days=1)],
            "Overdue": [c for c in ctas if c.due < now and c.acknowledged is None],
            "Due in the next day": [c for c in ctas if now <= c.due < now + timedelta(days=1)],
            "Escalated": [c for c in ctas if c.level > 0],
        }
        parts = [
            f"{title} ({len(g)}):\n" + "\n".join(f"- {line(c)}" for c in g)
            for title, g in groups.items()
            if g
        ]
        if not parts:
            continue
        subject = f"Your accounts today: {len(ctas)} open call(s) to action"
        body = "\n\n".join(parts)
        written += enqueue(s, cfg, DIGEST, user, subject, body, f"{now.date()}", now)
    return written


@dataclass
class SendResult:
    """What one pass over the outbox did."""

    sent: int = 0
    failed: int = 0  # failed this time (retried later, unless out of attempts)
    given_up: int = 0  # out of attempts: left with their last error, never sent


def _deliver(url: str, subject: str, body: str) -> str | None:
    """Send one message through apprise; None on success, else the error apprise logged."""
    import apprise  # only the run that sends needs it

    ap = apprise.Apprise()
    if not ap.add(url):
        return "the channel's URL is not one apprise understands"
    with apprise.LogCapture(level=logging.WARNING) as logs:
        ok = ap.notify(title=subject, body=body)
    return None if ok else (logs.getvalue().strip().splitlines() or ["send failed"])[-1]


def send_outbox(
    sessions: sessionmaker[Session], cfg: ActionsConfig, now: datetime, progress=None
) -> SendResult:
    """Send every message due; each marked sent (or its failure) in its own transaction."""
    channels = {c.name: c for c in cfg.channels}
    with sessions.begin() as s:
        ids = s.scalars(
            select(Outbox.id)
            .where(Outbox.sent_at.is_(None), Outbox.next_try <= now)
            .where(Outbox.attempts < cfg.max_attempts)
            .order_by(Outbox.id)
        ).all()
    out = SendResult()
    for i, mid in enumerate(ids):
        with sessions.begin() as s:
            m = s.get(Outbox, mid, with_for_update=True)
            if m is None or m.sent_at is not None:  # another sender got there first
                continue
            to = s.scalars(select(User).where(User.name == m.recipient)).first()
            ch = channels.get(m.channel)
            url = None if ch is None or to is None else _address(ch, to)
            error = (
                "no such channel or address" if url is None else _deliver(url, m.subject, m.body)
            )
            m.attempts += 1
            if error is None:
                m.sent_at, m.last_error = now, None
                out.sent += 1
                if m.cta_id is not None:
                    cta = s.get(Cta, m.cta_id)
                    record(
                        s,
                        "notified",
                        cta.account_id,
                        SYSTEM,
                        now,
                        cta,
                        to=m.recipient,
                        channel=m.channel,
                        message=m.kind,
                    )
            else:
                m.last_error = error
                delay = cfg.retry_backoff_minutes * 2 ** (m.attempts - 1)
                m.next_try = now + timedelta(minutes=delay)
                out.failed += 1
                if m.attempts >= cfg.max_attempts:
                    out.given_up += 1
                    log.warning("gave up on message %s to %s: %s", m.id, m.recipient, error)
        if progress:
            progress("sending notifications", i + 1, len(ids))
    return out


def pending(s: Session) -> Iterable[Outbox]:
    """Messages not sent yet."""
    return s.scalars(select(Outbox).where(Outbox.sent_at.is_(None))).all()
