"""CTAs from a scoring run: open one per account and cause, wake snoozes, close cleared ones.

Pure rules first (causes and their severity from the records), then :func:`sync`, which applies
them to the store. Records are those of ``radar score`` with a ``needs_action`` column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from actions.config import ActionsConfig, Rule
from actions.models import SYSTEM, Cta, User
from actions.store import record
from features.schema import SEVERITIES
from scoring.alert_evidence import alert_reason

CLEARED = "condition cleared"
ALERT, PLAY = "alert", "play"
# What a CTA keeps of the record that raised it (those present).
FIGURES = (
    "p_churn_30d",
    "p_churn_90d",
    "p_expansion_90d",
    "arr",
    "arr_at_risk_90d",
    "health_score",
    "days_to_renewal",
)


def _number(value) -> float | None:
    """A finite float, or None (absent stays absent: never a zero)."""
    if value is None or value is pd.NA:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def matches(rule: Rule, kind: str, severe: bool, p90: float | None, arr: float | None) -> bool:
    """Whether every condition the rule gives holds (a missing figure meets no threshold)."""
    if rule.kind is not None and rule.kind != kind:
        return False
    if rule.high_severity_alert is not None and rule.high_severity_alert != severe:
        return False
    if rule.min_p_churn_90d is not None and (p90 is None or p90 < rule.min_p_churn_90d):
        return False
    return rule.min_arr is None or (arr is not None and arr >= rule.min_arr)


def severity(cfg: ActionsConfig, kind: str, severe: bool, p90, arr) -> str:
    """The first rule of the table that matches (the last has no condition)."""
    return next(r.severity for r in cfg.rules if matches(r, kind, severe, p90, arr))


def causes(records: pd.DataFrame, cfg: ActionsConfig, high_alerts: Iterable[str]) -> pd.DataFrame:
    """One row per account and cause: each alert, and the play of an account needing action.

    Columns: account_id, cause, kind, play, severity, owner, at_stake (ARR x 90-day churn risk;
    NaN without ARR) and figures (a dict).
    """
    high = set(high_alerts)
    rows = []
    for r in records.itertuples(index=False):
        rec = r._asdict()
        p90, arr = _number(rec.get("p_churn_90d")), _number(rec.get("arr"))
        owner = rec.get("csm_owner")
        owner = owner if isinstance(owner, str) and owner else None
        play = rec.get("play") if isinstance(rec.get("play"), str) else None
        figures = {k: _number(rec.get(k)) for k in FIGURES if k in rec}
        figures["as_of"] = str(pd.Timestamp(rec["as_of"]).date())
        at_stake = math.nan if p90 is None or arr is None else p90 * arr
        base = {"account_id": str(rec["account_id"]), "owner": owner, "at_stake": at_stake}
        alerts = rec.get("alerts")
        for a in [] if alerts is None else list(alerts):
            sev = severity(cfg, ALERT, a in high, p90, arr)
            # The alert's own figures in words, where it has them (ticket counts, forecast).
            reason = alert_reason(a, rec)
            rows.append(
                base
                | {"cause": f"{ALERT}:{a}", "kind": ALERT, "play": play, "severity": sev}
                | {"figures": figures | {"alert": a} | ({"reason": reason} if reason else {})}
            )
        if bool(rec.get("needs_action")) and play:
            sev = severity(cfg, PLAY, False, p90, arr)
            reason = rec.get("play_reason") if isinstance(rec.get("play_reason"), str) else None
            rows.append(
                base
                | {"cause": f"{PLAY}:{play}", "kind": PLAY, "play": play, "severity": sev}
                | {"figures": figures | {"play_reason": reason}}
            )
    cols = ["account_id", "cause", "kind", "play", "severity", "owner", "at_stake", "figures"]
    return pd.DataFrame(rows, columns=cols)


def response_due(cfg: ActionsConfig, sev: str, start: datetime) -> datetime:
    """When the current level must have answered a CTA of severity ``sev`` raised at ``start``."""
    return start + timedelta(hours=cfg.response_hours[sev])


def escalation_deadline(cfg: ActionsConfig, cta: Cta) -> datetime:
    """After this, an unacknowledged CTA goes one level up ("immediate" waits the grace)."""
    grace = cfg.immediate_grace_minutes if cfg.response_hours[cta.severity] == 0 else 0
    return cta.due + timedelta(minutes=grace)


def choose(new: pd.DataFrame, busy: dict[str | None, set[str]], capacity: int) -> pd.DataFrame:
    """The new causes to open within each owner's capacity of accounts with an open CTA.

    An account that already has one takes its new causes at no cost; others come in by their
    worst severity, then ARR at stake (missing ARR last, never as zero), until the owner holds
    ``capacity`` accounts.
    """
    if new.empty:
        return new
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    acc = (
        new.assign(sev_rank=new["severity"].map(rank))
        .groupby(["owner", "account_id"], dropna=False, as_index=False)
        .agg(sev_rank=("sev_rank", "max"), at_stake=("at_stake", "max"))
    )
    keep: set[tuple[str | None, str]] = set()
    for owner, group in acc.groupby("owner", dropna=False, sort=False):
        owner = None if isinstance(owner, float) and math.isnan(owner) else owner
        held = busy.get(owner, set())
        room = max(capacity - len(held), 0)
        group = group.sort_values(
            ["sev_rank", "at_stake"], ascending=[False, False], na_position="last"
        )
        fresh = group[~group["account_id"].isin(held)]
        keep |= {(owner, a) for a in group.loc[group["account_id"].isin(held), "account_id"]}
        keep |= {(owner, a) for a in fresh["account_id"].head(room)}
    # A list, not a Series: pandas 3 reads None back as NaN in a string column, and
    # (NaN, id) is never in ``keep``, so accounts without a CSM never got a CTA.
    owners = [None if pd.isna(o) else o for o in new["owner"]]
    mask = [(o, a) in keep for o, a in zip(owners, new["account_id"], strict=True)]
    return new[mask]


@dataclass
class SyncResult:
    """What a sync did."""

    opened: list[Cta] = field(default_factory=list)
    closed: list[Cta] = field(default_factory=list)
    woken: list[Cta] = field(default_factory=list)
    held_back: int = 0  # causes left in the portfolio by the capacity bound


def users_by_name(s: Session, names: Iterable[str], at: datetime) -> dict[str, User]:
    """The users of these names, a CSM created for each name the store does not know yet."""
    wanted = {n for n in names if n}
    found = {u.name: u for u in s.scalars(select(User).where(User.name.in_(wanted)))}
    for n in sorted(wanted - found.keys()):
        found[n] = User(name=n, role="csm", created=at)
        s.add(found[n])
    s.flush()
    return found


def sync(
    s: Session,
    records: pd.DataFrame,
    as_of: date,
    now: datetime,
    cfg: ActionsConfig,
    high_alerts: Iterable[str],
) -> SyncResult:
    """Apply one scoring run (the records of one as-of date) to the store's CTAs."""
    out = SyncResult()
    found = causes(records, cfg, high_alerts)
    ids = records["account_id"].astype(str)
    # A model without the 90-day churn head: no risk figure (absent is absent, not a KeyError).
    risk = records.get("p_churn_90d", pd.Series(None, index=records.index, dtype=object))
    risk = risk.map(_number)
    p90 = dict(zip(ids, risk, strict=True))
    users = users_by_name(s, found["owner"].dropna().unique(), now)
    # Live causes: open or snoozed CTAs, and those a person closed while the cause stays.
    live = s.scalars(
        select(Cta).where(
            or_(
                Cta.status != "closed",
                (Cta.close_reason != CLEARED) & (Cta.absent_runs < cfg.clear_after_runs),
            )
        )
    ).all()
    present = set(zip(found["account_id"], found["cause"], strict=True))
    by_key = {(c.account_id, c.cause): c for c in live}
    for c in live:
        if (c.account_id, c.cause) in present:
            c.last_seen, c.absent_runs = as_of, 0
            _maybe_wake(s, c, p90.get(c.account_id), now, cfg, out)
        elif as_of > c.last_seen:
            c.absent_runs += 1
            if c.status != "closed" and c.absent_runs >= cfg.clear_after_runs:
                c.status, c.closed, c.close_reason = "closed", now, CLEARED
                record(s, "closed", c.account_id, SYSTEM, now, c, reason=CLEARED, as_of=str(as_of))
                out.closed.append(c)
    keys = zip(found["account_id"], found["cause"], strict=True)
    new = found[[k not in by_key for k in keys]]
    id_of = {u.id: u.name for u in users.values()}
    busy: dict[str | None, set[str]] = {}
    for c in live:
        if c.status != "closed":
            busy.setdefault(id_of.get(c.owner_id, c.owner_id), set()).add(c.account_id)
    chosen = choose(new, busy, cfg.capacity_per_csm)
    out.held_back = len(new) - len(chosen)
    owners = []
    for r in chosen.itertuples(index=False):
        owner = users.get(r.owner) if isinstance(r.owner, str) else None
        c = Cta(
            account_id=r.account_id,
            cause=r.cause,
            play=r.play,
            severity=r.severity,
            owner_id=None if owner is None else owner.id,
            opened=now,
            due=response_due(cfg, r.severity, now),
            status="open",
            level=0,
            figures=r.figures,
            last_seen=as_of,
            absent_runs=0,
        )
        s.add(c)
        owners.append(owner)
        out.opened.append(c)
    s.flush()  # once for all: the events need the new ids
    for c, owner in zip(out.opened, owners, strict=True):
        record(
            s,
            "opened",
            c.account_id,
            SYSTEM,
            now,
            c,
            cause=c.cause,
            play=c.play,
            severity=c.severity,
            owner=None if owner is None else owner.name,
            figures=c.figures,
        )
    return out


def _maybe_wake(s: Session, c: Cta, p90: float | None, now: datetime, cfg, out) -> None:
    """End a snooze on its date, or early when the churn risk rose by the configured margin."""
    if c.status != "snoozed":
        return
    worse = (
        p90 is not None
        and c.snooze_p_churn_90d is not None
        and p90 >= c.snooze_p_churn_90d + cfg.snooze_wake_margin
    )
    if not worse and (c.snoozed_until is None or now.date() < c.snoozed_until):
        return
    why = "risk rose" if worse else "snooze ended"
    c.status, c.snoozed_until, c.snooze_p_churn_90d = "open", None, None
    c.due = response_due(cfg, c.severity, now)
    record(s, "reopened", c.account_id, SYSTEM, now, c, reason=why, p_churn_90d=p90)
    out.woken.append(c)
