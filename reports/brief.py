"""The account brief: a QBR value report, peer benchmarks, renewal plan, talk track and who.

Pure functions from what a brief is made of to a typed :class:`Brief`:

- the account's scoring record (:class:`serving.schemas.AccountScore`'s fields, as the API and
  ``radar score`` give them): risks, timing, renewal likelihood, play, customer type;
- a :class:`Portfolio`: snapshot rows of the last year's as-of dates (value metrics, segment,
  tier, health) and the raw tables the snapshots do not carry (contacts, tickets, engagement,
  milestones, subscriptions), all cut at the brief's date;
- the playbook texts of ``brief.yaml`` (renewal stages and talk tracks).

``radar brief`` builds the portfolio from raw tables; the service from its snapshot store and
the store's input folder. Rendering (HTML, Markdown, PDF) is in :mod:`reports.brief_render`.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from features import words as w
from features.catalogue import RENEWAL_STAGES
from scoring.outlook import outlook_sentence
from training.explain import SHOWN

CONFIG_FILE = Path(__file__).with_name("brief.yaml")
# Raw tables the brief reads beside the snapshots (those the data has).
RAW_TABLES = (
    "accounts",
    "subscriptions",
    "contacts",
    "support_tickets",
    "engagement",
    "milestones",
    "nps_responses",  # the NPS's base: how many answers it is from
)
NPS_DAYS, CSAT_DAYS = 180, 90  # the windows of nps_180d and csat_90d (their answers counted)
HISTORY_MONTHS = 12  # the value section's year: snapshots of the last 12 months and now
QUARTER_MONTHS = 3
MIN_PEERS = 20  # no benchmark from fewer peers (the rule)
RECENT_TICKET_DAYS = 90
# Value metrics of the brief, in order: (feature, label); the snapshot column is the feature.
VALUE_METRICS = (
    ("seat_utilisation", "Seat use"),
    ("feature_adoption", "Tier features adopted"),
    ("active_user_days_30d", "Active user-days (30 days)"),
    ("usage_trend_90d", "Usage trend (90 days)"),
    ("milestones_achieved", "Milestones achieved"),
    ("milestones_on_time_rate", "Milestones on time"),
    ("nps_180d", "NPS (180 days)"),
    ("csat_90d", "CSAT (90 days)"),
)
# Those benchmarked against peers (a count such as milestones achieved depends on age).
BENCHMARKED = (
    "seat_utilisation",
    "feature_adoption",
    "active_user_days_30d",
    "usage_trend_90d",
    "milestones_on_time_rate",
    "nps_180d",
    "csat_90d",
)
SNAPSHOT_COLUMNS = (
    "account_id",
    "as_of",
    "segment",
    "plan_tier",
    "seats",
    "arr",
    "features_used_30d",
    "health_score",
    "health_band",
    *(m for m, _ in VALUE_METRICS if m != "features_used_30d"),
)
PLACEHOLDERS = (
    "name",
    "arr",
    "seats",
    "seat_use",
    "seat_percentile",
    "feature_adoption",
    "tier",
    "usage_trend",
    "milestones_achieved",
    "nps",
    "csat",
    "renewal_date",
    "days_to_renewal",
    "churn_90d",
    "expansion_90d",
    "leading_reason",
    "last_engagement",
    "sponsor",
    "champion",
    "open_tickets",
    "outreach_ask",
)


# --- configuration ----------------------------------------------------------------------


def _placeholders_known(text: str) -> str:
    names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {unknown} in {text[:60]!r}...; use: {', '.join(PLACEHOLDERS)}"
        )
    return text


class StageConfig(BaseModel):
    """One stage of the renewal timeline and its tasks."""

    model_config = ConfigDict(extra="forbid")
    stage: str
    title: str
    from_days: int
    to_days: int
    owner: str
    tasks: list[str]


class TypeTrack(BaseModel):
    """How to talk to one customer type."""

    model_config = ConfigDict(extra="forbid")
    title: str
    approach: str
    _known = field_validator("approach")(_placeholders_known)


class TalkTracks(BaseModel):
    """Talk-track texts by customer type, renewal stage and play."""

    model_config = ConfigDict(extra="forbid")
    customer_types: dict[str, TypeTrack]
    renewal_stages: dict[str, str]
    plays: dict[str, str]

    @field_validator("renewal_stages", "plays")
    @classmethod
    def _texts(cls, v: dict[str, str]) -> dict[str, str]:
        for text in v.values():
            _placeholders_known(text)
        return v


class BriefConfig(BaseModel):
    """``brief.yaml``: the renewal timeline and the talk tracks."""

    model_config = ConfigDict(extra="forbid")
    renewal_stages: list[StageConfig]
    talk_tracks: TalkTracks

    @model_validator(mode="after")
    def _complete(self) -> BriefConfig:
        missing = [s for s in RENEWAL_STAGES if s not in self.talk_tracks.renewal_stages]
        missing += [p for p in w.PLAYS if p not in self.talk_tracks.plays]
        if missing:
            raise ValueError(f"talk_tracks has no text for: {', '.join(missing)}")
        return self

    @classmethod
    def load(cls, path: str | Path | None = None) -> BriefConfig:
        """Read and check the YAML (the packaged ``brief.yaml`` by default)."""
        p = Path(path) if path else CONFIG_FILE
        try:
            return cls.model_validate(yaml.safe_load(p.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read the brief configuration {p}: {exc}") from exc


@functools.cache
def default_config() -> BriefConfig:
    """The packaged configuration (read once)."""
    return BriefConfig.load()


# --- the data a brief reads ------------------------------------------------------------------


@dataclass
class Portfolio:
    """Snapshots of the last year's dates and the raw tables, as known at ``as_of``."""

    as_of: pd.Timestamp
    snapshots: pd.DataFrame  # SNAPSHOT_COLUMNS at the dates up to as_of
    raw: dict[str, pd.DataFrame]  # RAW_TABLES the data has, rows known by as_of
    _positions: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    _records: dict[str, dict[str, list[dict]]] = field(default_factory=dict, repr=False)

    def at(self, when: pd.Timestamp) -> pd.DataFrame:
        """The snapshot rows of the latest date on or before ``when`` (empty if none)."""
        dates = self.snapshots["as_of"]
        known = dates[dates <= when]
        if known.empty:
            return self.snapshots.iloc[:0]
        return self.snapshots[dates == known.max()]

    def table(self, name: str) -> pd.DataFrame | None:
        """Raw table ``name``, or None when the data has none."""
        return self.raw.get(name)

    def of(self, name: str, account_id: str) -> pd.DataFrame | None:
        """The rows of one account in ``snapshots`` or a raw table (None: no such table)."""
        frame = self.snapshots if name == "snapshots" else self.raw.get(name)
        if frame is None:
            return None
        where = self._index(name).get(account_id)
        return frame.iloc[where] if where is not None else frame.iloc[:0]

    def _index(self, name: str) -> dict[str, np.ndarray]:
        # Positions per account, built once per table: a brief is then O(its own rows).
        if name not in self._positions:
            frame = self.snapshots if name == "snapshots" else self.raw[name]
            self._positions[name] = frame.groupby("account_id", sort=False).indices
        return self._positions[name]

    def records(self, name: str, account_id: str) -> list[dict]:
        """One account's rows of raw table ``name`` as plain dicts (missing as None)."""
        if name not in self.raw:
            return []
        if name not in self._records:
            frame = self.raw[name]
            plain = frame.astype(object).where(frame.notna(), None)
            by: dict[str, list[dict]] = {}
            for row in plain.to_dict("records"):
                by.setdefault(row["account_id"], []).append(row)
            self._records[name] = by
        return self._records[name].get(account_id, [])

    @functools.cached_property
    def today(self) -> pd.DataFrame:
        """The snapshot rows at ``as_of`` (the date the peers are compared at)."""
        return self.at(self.as_of)

    @functools.cached_property
    def peer_groups(self) -> dict[tuple, pd.DataFrame]:
        """Today's rows by (segment, plan tier)."""
        return {k: g for k, g in self.today.groupby(["segment", "plan_tier"], sort=False)}


def history_dates(as_of: pd.Timestamp, first: pd.Timestamp | None = None) -> pd.DatetimeIndex:
    """``as_of`` and the same day of each of the 12 months before (not before ``first``)."""
    dates = [as_of - pd.DateOffset(months=k) for k in range(HISTORY_MONTHS, -1, -1)]
    idx = pd.DatetimeIndex(dates).astype("datetime64[s]")
    return idx if first is None else idx[idx >= first]


def known_by(raw: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The raw tables cut to what was known at ``as_of`` (rows dated after it dropped).

    Later facts about known rows are blanked too: a ticket resolved after ``as_of`` was open
    then, a contact who left later was still there, a milestone achieved later was not yet.
    """
    from features.schema import TABLES

    out: dict[str, pd.DataFrame] = {}
    for name, t in raw.items():
        col = TABLES[name].event_date
        t = t[t[col] <= as_of].copy() if col else t.copy()
        for later in ("resolved_date", "end_date", "achieved_date"):
            if later in t and name != "subscriptions":
                t[later] = t[later].where(t[later] <= as_of)
        out[name] = t
    return out


def portfolio_from_frames(
    snapshots: pd.DataFrame, raw: dict[str, pd.DataFrame], as_of: pd.Timestamp
) -> Portfolio:
    """A portfolio from snapshot rows (any columns, any dates) and raw tables."""
    snaps = snapshots[snapshots["as_of"] <= as_of]
    snaps = snaps[[c for c in SNAPSHOT_COLUMNS if c in snaps]].reset_index(drop=True)
    return Portfolio(pd.Timestamp(as_of), snaps, known_by(raw, as_of))


# --- the brief --------------------------------------------------------------------------------


class Figure(BaseModel):
    """A value metric now, a quarter and a year before, and its monthly series."""

    metric: str
    label: str
    value: float | None
    text: str
    quarter_ago: float | None
    year_ago: float | None
    quarter_text: str
    year_text: str
    trend: str  # "up 12 points over the quarter, down 3 over the year" in words
    dates: list[date]
    series: list[float | None]


class MilestoneRow(BaseModel):
    """A value milestone and where it stands at the brief's date."""

    milestone: str
    target_date: date
    achieved_date: date | None
    status: str  # achieved on time, achieved late, delayed (past target), planned


class Value(BaseModel):
    """Value delivered: seats, features, usage, milestones, ROI, NPS and CSAT."""

    seats_purchased: float | None
    seats_used: float | None
    features_used: float | None
    tier_features: float | None
    figures: list[Figure]
    milestones: list[MilestoneRow]
    achieved_quarter: int
    achieved_year: int
    delayed: int
    roi: str


class Benchmark(BaseModel):
    """The account's percentile on one metric among accounts of its segment and tier."""

    metric: str
    label: str
    value: float | None
    text: str
    percentile: float | None  # 0-100; None when fewer than MIN_PEERS peers or no value
    peers: int
    sentence: str


class Reason(BaseModel):
    """A risk or opportunity reason, as the account page words it."""

    head: str
    title: str
    effect: str
    evidence: list[str]


class Risks(BaseModel):
    """Risks and opportunities from the scoring record."""

    p_churn_90d: float | None  # None: the model has no such head (absent, never a 500)
    p_expansion_90d: float | None
    p_renewal_likelihood: float | None
    churn: list[Reason]
    expansion: list[Reason]
    timing: dict[str, str]
    alerts: list[str]
    triggers: list[str]
    play: str
    play_title: str
    play_reason: str
    # Why renewal likelihood and churn risk differ on one renewal (issue 29), where they do.
    coherence_note: str | None = None


class Stage(BaseModel):
    """One stage of the renewal plan with its dates and status."""

    stage: str
    title: str
    owner: str
    starts: date
    ends: date
    status: str  # in words: overdue (past, nothing records it done), due now, upcoming
    tasks: list[str]


class RenewalPlan(BaseModel):
    """The renewal: date, amount, current stage, and the tasks of each stage."""

    renewal_date: date | None
    amount: float | None
    stage: str | None
    days_to_renewal: float | None
    stages: list[Stage]
    note: str | None


class TalkTrack(BaseModel):
    """What to say: the type's framing, the stage's step, the play's ask."""

    customer_type: str
    type_title: str
    stage: str
    play: str
    approach: str
    stage_line: str
    ask: str


class ContactRow(BaseModel):
    """A stakeholder at the customer."""

    contact_id: str
    role: str
    champion: bool
    sponsor: bool
    start_date: date
    end_date: date | None
    current: bool


class TicketRow(BaseModel):
    """A support ticket, open or recent."""

    ticket_id: str
    created_date: date
    resolved_date: date | None
    severity: str
    escalated: bool
    open: bool


class Who(BaseModel):
    """Contacts and their roles, last engagement, open and recent tickets by severity."""

    contacts: list[ContactRow]
    champion: bool
    sponsor: bool
    last_engagement: date | None
    last_engagement_kind: str | None
    last_qbr: date | None
    tickets: list[TicketRow]
    open_by_severity: dict[str, int]
    recent_by_severity: dict[str, int]


class Brief(BaseModel):
    """Everything the brief says about one account at one date."""

    account_id: str
    name: str | None
    as_of: date
    segment: str | None
    plan_tier: str | None
    csm_owner: str | None
    arr: float | None
    health_score: float | None
    health_band: str | None
    # The forecasts in one sentence (scoring.outlook): none for a model without them.
    outlook: str | None = None
    # What this month's tickets say, with the counts (scoring.alert_evidence); none without.
    text_evidence: str | None = None
    customer_type: str
    model_version: str
    peer_group: str
    value: Value
    benchmarks: list[Benchmark]
    risks: Risks
    renewal: RenewalPlan
    talk: TalkTrack
    who: Who


def _num(v: Any) -> float | None:
    return None if w.missing(v) else float(v)


def _day(v: Any) -> date | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v).date()


def percentile_rank(value: float, peers: np.ndarray) -> float:
    """Share of ``peers`` below ``value``, ties counting half, in percent (0-100)."""
    below = float(np.sum(peers < value))
    ties = float(np.sum(peers == value))
    return 100.0 * (below + 0.5 * ties) / len(peers)


def _trend(metric: str, now: float | None, before: float | None, span: str) -> str | None:
    if now is None or before is None:
        return None
    return w.change_words(metric, now - before, span)


def value_section(record: dict, account: pd.DataFrame, portfolio: Portfolio) -> Value:
    """Seats, features, usage and satisfaction with their trends, and the milestones."""
    t = portfolio.as_of
    account = account.sort_values("as_of")
    dates = account["as_of"].to_numpy()
    n = len(account)
    now = account.iloc[-1] if n else None

    def position(months: int) -> int | None:
        # The latest snapshot on or before the same day `months` earlier.
        k = int(np.searchsorted(dates, np.datetime64(t - pd.DateOffset(months=months)), "right"))
        return k - 1 if k > 0 else None

    q_at, y_at = position(QUARTER_MONTHS), position(HISTORY_MONTHS)
    days = [pd.Timestamp(d).date() for d in dates]
    figures = []
    for metric, label in VALUE_METRICS:
        series = [_num(v) for v in account[metric].to_numpy(dtype="float64", na_value=np.nan)]
        value = series[-1] if n else None
        q = series[q_at] if q_at is not None else None
        y = series[y_at] if y_at is not None else None
        trend = [
            x for x in (_trend(metric, value, q, "quarter"), _trend(metric, value, y, "year")) if x
        ]
        figures.append(
            Figure(
                metric=metric,
                label=label,
                value=value,
                text=w.format_value(metric, value),
                quarter_ago=q,
                year_ago=y,
                quarter_text=w.format_value(metric, q),
                year_text=w.format_value(metric, y),
                trend=", ".join(trend) or w.NO_TREND,
                dates=days,
                series=series,
            )
        )
    seats = _num(now["seats"]) if now is not None else None
    util = _num(now["seat_utilisation"]) if now is not None else None
    used = _num(now["features_used_30d"]) if now is not None else None
    adoption = _num(now["feature_adoption"]) if now is not None else None
    rows = milestone_rows(portfolio.records("milestones", record["account_id"]), t)
    achieved = [r.achieved_date for r in rows if r.achieved_date]
    return Value(
        seats_purchased=seats,
        seats_used=None if seats is None or util is None else round(seats * util),
        features_used=used,
        tier_features=None if not used or not adoption else round(used / adoption),
        figures=figures,
        milestones=rows,
        achieved_quarter=sum(
            d > (t - pd.DateOffset(months=QUARTER_MONTHS)).date() for d in achieved
        ),
        achieved_year=sum(d > (t - pd.DateOffset(months=HISTORY_MONTHS)).date() for d in achieved),
        delayed=sum(r.status == w.MILESTONE_STATUS["delayed"] for r in rows),
        roi=w.NO_ROI,
    )


def _months_before(t: pd.Timestamp, months: int) -> date:
    return (t - pd.DateOffset(months=months)).date()


def milestone_rows(rows: list[dict], t: pd.Timestamp) -> list[MilestoneRow]:
    """An account's milestones with their status at ``t`` (target date order)."""
    out = []
    for r in sorted(rows, key=lambda r: r["target_date"]):
        got, target = _day(r["achieved_date"]), _day(r["target_date"])
        if got is not None:
            status = "on_time" if got <= target else "late"
        else:
            status = "delayed" if target < t.date() else "planned"
        out.append(
            MilestoneRow(
                milestone=str(r["milestone"]),
                target_date=target,
                achieved_date=got,
                status=w.MILESTONE_STATUS[status],
            )
        )
    return out


def benchmark_section(record: dict, portfolio: Portfolio) -> tuple[list[Benchmark], str]:
    """Percentiles among the accounts of the same segment and tier at the same date."""
    seg, tier = record.get("segment"), record.get("plan_tier")
    group = w.peer_group(seg, tier)
    same = portfolio.peer_groups.get((seg, tier), portfolio.today.iloc[:0])
    me = same[same["account_id"] == record["account_id"]]
    others = same[same["account_id"] != record["account_id"]]
    out = []
    for metric, label in VALUE_METRICS:
        if metric not in BENCHMARKED:
            continue
        value = _num(me[metric].iloc[0]) if len(me) else None
        peers = others[metric].astype("float64").dropna().to_numpy()
        pct = (
            percentile_rank(value, peers) if value is not None and len(peers) >= MIN_PEERS else None
        )
        text = w.format_value(metric, value)
        out.append(
            Benchmark(
                metric=metric,
                label=label,
                value=value,
                text=text,
                percentile=pct,
                peers=len(peers),
                sentence=w.benchmark_sentence(label, text, pct, len(peers), group, MIN_PEERS),
            )
        )
    return out, group


def _reasons(record: dict, head: str) -> list[Reason]:
    # The account page's rule: only families moving the probability by half a point or more.
    return [
        Reason(
            head=head,
            title=r["title"],
            effect=w.signed_points(r["effect"]),
            evidence=[e["sentence"] for e in r["evidence"]],
        )
        for r in record["reasons"].get(head, [])
        if abs(r["effect"]) >= SHOWN
    ]


def risks_section(record: dict) -> Risks:
    """The scoring record's reasons, timing, likelihoods, alerts, triggers and play."""
    return Risks(
        p_churn_90d=record.get("p_churn_90d"),
        p_expansion_90d=record.get("p_expansion_90d"),
        p_renewal_likelihood=record.get("p_renewal_likelihood"),
        churn=[r for r in _reasons(record, "churn_90d") if r.effect.startswith("+")],
        expansion=[r for r in _reasons(record, "expansion_90d") if r.effect.startswith("+")],
        timing={h: p["sentence"] for h, p in record["timing"].items()},
        alerts=[w.alert_words(a) for a in record["alerts"]],
        triggers=[w.trigger(t) for t in record["triggers"]],
        play=record["play"],
        play_title=record["play_title"],
        play_reason=record["play_reason"],
        coherence_note=record.get("coherence_note"),
    )


def previous_renewal(subscriptions: list[dict], t: pd.Timestamp) -> pd.Timestamp | None:
    """The renewal just passed: the day after the end of the term in effect 30 days before.

    As the renewal_stage feature dates it (its T+30 stage); None when that term has not ended.
    """
    before = t - pd.Timedelta(days=30)
    rows = sorted(
        (r for r in subscriptions if r["start_date"] <= before), key=lambda r: r["start_date"]
    )
    if not rows or rows[-1]["end_date"] is None or rows[-1]["end_date"] >= t:
        return None
    return pd.Timestamp(rows[-1]["end_date"]) + pd.Timedelta(days=1)


def renewal_section(
    record: dict, cfg: BriefConfig, t: pd.Timestamp, subscriptions: list[dict]
) -> RenewalPlan:
    """The renewal date and amount and each stage's tasks with due / overdue status.

    Each stage is dated from the next renewal, except the post-renewal stage of an account
    that has just renewed (stage T+30), which is dated from the renewal just passed.
    """
    when = _day(record.get("renewal_date"))
    stage = record.get("renewal_stage")
    just = previous_renewal(subscriptions, t) if stage == "t_plus_30" else None
    stages = []
    # A monthly rolling contract has no renewal cycle to plan: the note says so.
    if when is not None and stage != "monthly_rolling":
        for s in cfg.renewal_stages:
            end = just if just is not None and s.to_days < 0 else pd.Timestamp(when)
            starts = (end - pd.Timedelta(days=s.from_days)).date()
            ends = (end - pd.Timedelta(days=s.to_days)).date()
            if t.date() >= ends:
                status = "overdue"
            elif t.date() >= starts:
                status = "due"
            else:
                status = "upcoming"
            stages.append(
                Stage(
                    stage=s.stage,
                    title=s.title,
                    owner=s.owner,
                    starts=starts,
                    ends=ends,
                    status=w.TASK_STATUS[status],
                    tasks=s.tasks,
                )
            )
    return RenewalPlan(
        renewal_date=when,
        amount=_num(record.get("arr")),
        stage=stage,
        days_to_renewal=_num(record.get("days_to_renewal")),
        stages=stages,
        note=w.renewal_note(stage, when),
    )


def who_section(portfolio: Portfolio, account_id: str) -> Who:
    """Contacts with roles and dates, last engagement, open and recent tickets."""
    t = portfolio.as_of
    contacts = []
    for r in sorted(portfolio.records("contacts", account_id), key=lambda r: r["start_date"]):
        ended = _day(r["end_date"])
        contacts.append(
            ContactRow(
                contact_id=str(r["contact_id"]),
                role=str(r["role"]),
                champion=r["role"] == "champion",
                sponsor=r["role"] == "executive_sponsor",
                start_date=_day(r["start_date"]),
                end_date=ended,
                current=ended is None,
            )
        )
    touches = sorted(portfolio.records("engagement", account_id), key=lambda r: r["date"])
    qbrs = [r for r in touches if r["kind"] == "qbr"]
    recent_from = t - pd.Timedelta(days=RECENT_TICKET_DAYS)
    open_n = dict.fromkeys(w.SEVERITY_ORDER, 0)
    recent_n = dict.fromkeys(w.SEVERITY_ORDER, 0)
    shown = []
    for r in portfolio.records("support_tickets", account_id):
        is_open, recent = r["resolved_date"] is None, r["created_date"] > recent_from
        open_n[r["severity"]] += is_open
        recent_n[r["severity"]] += recent
        if is_open or recent:
            shown.append(
                TicketRow(
                    ticket_id=str(r["ticket_id"]),
                    created_date=_day(r["created_date"]),
                    resolved_date=_day(r["resolved_date"]),
                    severity=str(r["severity"]),
                    escalated=bool(r["escalated"]),
                    open=is_open,
                )
            )
    # Most severe first, then newest.
    shown.sort(key=lambda x: x.created_date, reverse=True)
    shown.sort(key=lambda x: w.SEVERITY_ORDER.index(x.severity))
    return Who(
        contacts=contacts,
        champion=any(c.champion and c.current for c in contacts),
        sponsor=any(c.sponsor and c.current for c in contacts),
        last_engagement=_day(touches[-1]["date"]) if touches else None,
        last_engagement_kind=str(touches[-1]["kind"]) if touches else None,
        last_qbr=_day(qbrs[-1]["date"]) if qbrs else None,
        tickets=shown,
        open_by_severity=open_n,
        recent_by_severity=recent_n,
    )


def answers(portfolio: Portfolio, account_id: str) -> tuple[int | None, int | None]:
    """How many NPS answers (180 days) and CSAT ratings (tickets resolved in 90 days) there are.

    As the features count them; None where the data has no such table (absent, never 0).
    """
    t = portfolio.as_of
    nps = csat = None
    if portfolio.table("nps_responses") is not None:
        rows = portfolio.records("nps_responses", account_id)
        nps = sum(0 <= (t - pd.Timestamp(r["date"])).days < NPS_DAYS for r in rows)
    tickets = portfolio.table("support_tickets")
    if tickets is not None and "csat" in tickets:
        rows = portfolio.records("support_tickets", account_id)
        csat = sum(
            r["csat"] is not None
            and r["resolved_date"] is not None
            and 0 <= (t - pd.Timestamp(r["resolved_date"])).days < CSAT_DAYS
            for r in rows
        )
    return nps, csat


def fill(text: str, figures: dict[str, str]) -> str:
    """A talk-track text with its placeholders filled (all known: the config was checked)."""
    return " ".join(text.format_map(figures).split())


def placeholder_values(
    record: dict,
    value: Value,
    benchmarks: list[Benchmark],
    who: Who,
    counts: tuple[int | None, int | None] = (None, None),
) -> dict[str, str]:
    """The account's figures for the talk-track placeholders, each already in words.

    ``counts``: the NPS answers and CSAT ratings behind the two scores (:func:`answers`),
    said with them ("+67 from 3 answers").
    """
    by = {f.metric: f for f in value.figures}
    bench = {b.metric: b for b in benchmarks}
    seat_pct = bench["seat_utilisation"].percentile
    reasons = record["reasons"].get("churn_90d", [])
    lead = reasons[0]["title"].lower() if reasons and reasons[0]["effect"] >= SHOWN else None
    days = _num(record.get("days_to_renewal"))
    out = {
        "name": record.get("name") or record["account_id"],
        "arr": w.money(_num(record.get("arr"))),
        "seats": w.DASH if value.seats_purchased is None else f"{value.seats_purchased:,.0f}",
        "seat_use": by["seat_utilisation"].text,
        "seat_percentile": w.percentile_words(seat_pct),
        "feature_adoption": by["feature_adoption"].text,
        "tier": w.code(record.get("plan_tier")),
        "usage_trend": by["usage_trend_90d"].text,
        "milestones_achieved": by["milestones_achieved"].text,
        "nps": w.with_base(by["nps_180d"].text, counts[0], "answer"),
        "csat": w.with_base(by["csat_90d"].text, counts[1], "rating"),
        "renewal_date": w.day(record.get("renewal_date")),
        "days_to_renewal": w.DASH if days is None else f"{days:.0f}",
        "churn_90d": w.pct(record.get("p_churn_90d")),
        "expansion_90d": w.pct(record.get("p_expansion_90d")),
        "leading_reason": lead or w.NO_LEADING_REASON,
        "last_engagement": w.day(who.last_engagement) if who.last_engagement else w.NEVER,
        "sponsor": w.yes_no(who.sponsor),
        "champion": w.yes_no(who.champion),
        "open_tickets": str(sum(who.open_by_severity.values())),
        "outreach_ask": w.outreach_ask(who.sponsor, who.champion),
    }
    assert set(out) == set(PLACEHOLDERS)  # one list of names: the config check uses it
    return out


def talk_section(record: dict, cfg: BriefConfig, figures: dict[str, str]) -> TalkTrack:
    """The talk track of the account's customer type, renewal stage and play."""
    tracks = cfg.talk_tracks
    kind = record["customer_type"]
    stage = record.get("renewal_stage") or "not_in_cycle"
    type_track = tracks.customer_types[kind]
    return TalkTrack(
        customer_type=kind,
        type_title=type_track.title,
        stage=stage,
        play=record["play"],
        approach=fill(type_track.approach, figures),
        stage_line=fill(tracks.renewal_stages[stage], figures),
        ask=fill(tracks.plays[record["play"]], figures),
    )


def build_brief(record: dict, portfolio: Portfolio, cfg: BriefConfig | None = None) -> Brief:
    """The brief of the account of ``record`` (AccountScore's fields) at the portfolio's date."""
    cfg = cfg or default_config()
    account = portfolio.of("snapshots", record["account_id"])
    value = value_section(record, account, portfolio)
    benchmarks, group = benchmark_section(record, portfolio)
    who = who_section(portfolio, record["account_id"])
    figures = placeholder_values(
        record, value, benchmarks, who, answers(portfolio, record["account_id"])
    )
    return Brief(
        account_id=record["account_id"],
        name=record.get("name"),
        as_of=_day(record["as_of"]),
        segment=record.get("segment"),
        plan_tier=record.get("plan_tier"),
        csm_owner=record.get("csm_owner"),
        arr=_num(record.get("arr")),
        health_score=_num(record.get("health_score")),
        health_band=record.get("health_band"),
        outlook=outlook_sentence(record),
        text_evidence=None if w.missing(t := record.get("text_evidence")) else t,
        customer_type=record["customer_type"],
        # Shown as the model's label, as ``radar score`` logs it: "renewal-radar v3".
        model_version=" v".join(
            str(record[k]) for k in ("model_name", "model_version") if record.get(k)
        ),
        peer_group=group,
        value=value,
        benchmarks=benchmarks,
        risks=risks_section(record),
        renewal=renewal_section(
            record, cfg, portfolio.as_of, portfolio.records("subscriptions", record["account_id"])
        ),
        talk=talk_section(record, cfg, figures),
        who=who,
    )
