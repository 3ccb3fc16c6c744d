"""One pass of the action loop on a scoring run: CTAs, escalation, messages, the outbox."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy import func, select

from actions.config import ActionsConfig
from actions.ctas import sync
from actions.escalate import escalate
from actions.models import Run, User
from actions.notify import critical_message, digests, escalation_message, send_outbox
from actions.people import sync_people
from actions.store import Store

ProgressFn = Callable[[str, int, int], None]


@dataclass
class Summary:
    """What a run did: the one-line summary of ``radar daily``."""

    as_of: str | None
    opened: int = 0
    closed: int = 0
    woken: int = 0
    held_back: int = 0
    escalated: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    skipped_sync: bool = False  # this as-of date was already applied

    def line(self) -> str:
        """``opened 3, closed 1, escalated 0, sent 4, failed 0`` and the rest."""
        s = (
            f"opened {self.opened}, closed {self.closed}, escalated {self.escalated}, "
            f"sent {self.sent}, failed {self.failed}"
        )
        extra = [f"{self.held_back} held back by capacity"] if self.held_back else []
        extra += [f"{self.woken} snooze(s) ended"] if self.woken else []
        if self.skipped_sync:
            extra.append(f"as-of {self.as_of} already applied: no CTA opened or closed")
        return s + (f" ({'; '.join(extra)})" if extra else "")


def latest_applied(store: Store) -> date | None:
    """The latest scoring as-of date a run applied to the CTAs."""
    with store.session() as s:
        return s.scalar(select(func.max(Run.as_of)))


def run_once(
    store: Store,
    records: pd.DataFrame | None,
    now: datetime,
    cfg: ActionsConfig,
    high_alerts: Iterable[str] = (),
    progress: ProgressFn | None = None,
) -> Summary:
    """Apply one scoring run's ``records`` (None: none), escalate, queue and send messages.

    A scoring as-of date already applied opens and closes nothing (the same data twice is one
    run); escalation and the outbox still run, as they depend on the clock.
    """
    as_of = None if records is None or records.empty else pd.Timestamp(records["as_of"].max())
    out = Summary(None if as_of is None else str(as_of.date()))
    last = latest_applied(store)
    with store.session() as s:
        sync_people(s, cfg, now)
        run = Run(as_of=None, started=now, summary={})
        s.add(run)
        if as_of is not None and (last is None or as_of.date() > last):
            done = sync(s, records, as_of.date(), now, cfg, high_alerts)
            run.as_of = as_of.date()
            out.opened, out.closed = len(done.opened), len(done.closed)
            out.woken, out.held_back = len(done.woken), done.held_back
            for c in done.opened:
                if c.severity == "critical":
                    owner = None if c.owner_id is None else s.get(User, c.owner_id)
                    out.queued += critical_message(s, cfg, c, owner, now)
        else:
            out.skipped_sync = as_of is not None
        if progress:
            progress("opening and closing CTAs", 1, 1)
        ups = escalate(s, now, cfg)
        out.escalated = len(ups)
        for e in ups:
            out.queued += escalation_message(s, cfg, e.cta, e.to, now)
        out.queued += digests(s, cfg, now)
    run_id = run.id  # assigned at the commit
    sent = send_outbox(store.sessions, cfg, now, progress)
    out.sent, out.failed = sent.sent, sent.failed
    with store.session() as s:
        run = s.get(Run, run_id)
        run.finished, run.summary = now, asdict(out)
    return out
