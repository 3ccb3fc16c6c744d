"""Segments, customer types and the recommended play, from the seeds' playbooks.

Rules (``domain.md``): the value x growth matrix (seed 002), the customer types (seed 000), the
health-band actions and root-cause plays (seed 001), the renewal timeline (seeds 001, 003), and
"expansion follows value": expansion is never recommended to an unhealthy account.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.catalogue import CHURN_HEAD, FEATURE_BY_NAME
from features.config import HEALTHY_SCORE, POOR_SCORE
from features.words import (
    FAMILY_WORDS,
    PLAYS,
    alert_words,
    code,
    expansion_words,
    growth_words,
    missing,
    onboarding_reason,
    percent,
    points,
    trigger,
)


class ScoringConfig(BaseModel):
    """Thresholds of the segment, type and play rules; every one documented in docs/scoring.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_drivers: int = Field(5, ge=1, le=20)
    # value: ARR tiers of seed 001 (enterprise $250K+ ACV, mid-market $50K-$250K, SMB below)
    high_value_arr: float = 250_000
    medium_value_arr: float = 50_000
    # growth: ARR change over the last year, or a likely expansion, or signs of decline
    high_growth_arr_change: float = 0.10
    high_growth_expansion_p90: float = 0.30
    low_growth_usage_trend_90d: float = -0.20
    # health: seed 001 bands (green from 70, red below 40), whatever the scheme's band names
    healthy_score: float = HEALTHY_SCORE
    poor_score: float = POOR_SCORE
    # risk
    high_churn_p90: float = 0.20
    top_risk_share: float = 0.10  # "top decile" of 90-day churn risk in the scored portfolio
    top_risk_min_p90: float = 0.10  # ... counted as high risk only from this probability on
    promoter_nps: float = 9.0  # latest NPS answer that marks a promoter
    # The play: the first alert of this list the account has, before anything else (seed 001
    # root causes; seed 002's 7-day usage sprint) ...
    alert_plays: tuple[tuple[str, str], ...] = (
        ("champion_lost", "executive_outreach"),
        ("sponsor_lost", "executive_outreach"),
        ("unresolved_critical", "support_escalation"),
        ("usage_collapse", "usage_recovery"),
        ("engagement_drop", "engagement_revival"),
    )
    # ... else, for an account at risk or below healthy, the play of its leading reason.
    family_plays: dict[str, str] = {
        "usage": "usage_recovery",
        "engagement": "engagement_revival",
        "relationship": "executive_outreach",
        "support": "support_escalation",
        "commercial": "value_review",
    }
    # ... unless its strongest evidence calls for another play of the same family: usage that
    # never took hold (few seats or features in use) is seed 001's adoption problem (training,
    # change management, simpler workflows), not a fall to reverse with the 7-day sprint.
    evidence_plays: dict[str, str] = {
        "seat_utilisation": "adoption_plan",
        "feature_adoption": "adoption_plan",
        "features_used_30d": "adoption_plan",
    }
    # Alerts that rule out an expansion conversation ("expansion follows value", seed 001).
    high_severity_alerts: tuple[str, ...] = (
        "champion_lost",
        "sponsor_lost",
        "unresolved_critical",
        "usage_collapse",
        "health_below_40",
    )
    # Timing decides when, never why: the renewal motion of a healthy account by its stage.
    launch_stages: tuple[str, ...] = ("t_minus_180", "t_minus_120")
    negotiation_stages: tuple[str, ...] = ("t_minus_90", "t_minus_60", "t_minus_30")
    leading_reason_min: float = Field(0.005, ge=0)  # a family leads from half a point on
    # Lifecycle: seed 001's "Phase 1: Onboarding (Days 0-90)" gets its first-90-days plan, not
    # an expansion talk or a recovery sprint (there is no earlier usage to recover); only the
    # alert plays listed here (a lost sponsor, critical tickets) come before it.
    onboarding_days: int = Field(90, ge=0)
    onboarding_alert_plays: tuple[str, ...] = ("executive_outreach", "support_escalation")
    # Tier: an account on the top tier has no higher tier to buy: seats, add-ons, multi-year.
    top_tiers: tuple[str, ...] = ("enterprise",)
    # Renewal likelihood and churn risk: for a renewal inside the churn head's horizon, 1 -
    # renewal likelihood and the churn risk are two estimates of one event; beyond this many
    # points apart the record says why (``coherence_note``).
    coherence_points: float = Field(0.10, gt=0, le=1)
    # Renewal risk (docs/scoring.md): only for a renewal within the renewal window; high when
    # the renewal likelihood is below ``renewal_risk_high`` (or, with no likelihood, the
    # headline churn risk at ``high_churn_p90`` or more), medium below ``renewal_risk_medium``.
    renewal_risk_high: float = Field(0.75, ge=0, le=1)
    renewal_risk_medium: float = Field(0.90, ge=0, le=1)

    @model_validator(mode="after")
    def _known_plays(self) -> ScoringConfig:
        """Every play of the table has words; evidence plays name catalogue features."""
        plays = [p for _, p in self.alert_plays]
        plays += [*self.family_plays.values(), *self.evidence_plays.values()]
        plays += list(self.onboarding_alert_plays)
        unknown = sorted(set(plays) - set(PLAYS))
        if unknown:
            raise ValueError(f"unknown plays {unknown}; known: {sorted(PLAYS)}")
        features = sorted(set(self.evidence_plays) - set(FEATURE_BY_NAME))
        if features:
            raise ValueError(f"evidence_plays: unknown features {features}")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> ScoringConfig:
        """Defaults, updated by a YAML file."""
        data = yaml.safe_load(Path(path).read_text()) if path else {}
        return cls.model_validate(data or {})


MATRIX = {
    ("high", "high"): "Champions",
    ("medium", "high"): "Stars",
    ("low", "high"): "Potentials",
    ("high", "medium"): "Defenders",
    ("medium", "medium"): "Core",
    ("low", "medium"): "Basics",
    ("high", "low"): "At Risk",
    ("medium", "low"): "Declining",
    ("low", "low"): "Dormant",
}
STRATEGY = {
    "Champions": "protect",
    "Stars": "grow",
    "Potentials": "develop",
    "Defenders": "maintain",
    "Core": "optimize",
    "Basics": "efficiency",
    "At Risk": "rescue",
    "Declining": "recover",
    "Dormant": "reactivate",
}


def value_tier(arr: ArrayLike, cfg: ScoringConfig) -> np.ndarray:
    """High / medium / low by ARR."""
    a = np.nan_to_num(np.asarray(arr, dtype="float64"), nan=0.0)
    return np.where(
        a >= cfg.high_value_arr, "high", np.where(a >= cfg.medium_value_arr, "medium", "low")
    ).astype(object)


def growth_tier(
    arr_change_365d: ArrayLike,
    usage_trend_90d: ArrayLike,
    p_churn_90d: ArrayLike,
    p_expansion_90d: ArrayLike,
    cfg: ScoringConfig,
    health: ArrayLike | None = None,
) -> np.ndarray:
    """High / medium / low-or-negative growth.

    Low: ARR fell over the last year, or usage fell more than 20% over 90 days, or 90-day churn
    risk is high, or the health score is poor (below ``poor_score``: a "Defenders (maintain)"
    label on a red account contradicts its own health). High (otherwise): ARR grew more than
    10% over the year or a 90-day expansion is likely. Else medium. Missing values count as
    neither.
    """
    change = np.asarray(arr_change_365d, dtype="float64")
    trend = np.asarray(usage_trend_90d, dtype="float64")
    low = (change < 0) | (trend < cfg.low_growth_usage_trend_90d)
    low |= np.asarray(p_churn_90d, dtype="float64") >= cfg.high_churn_p90
    if health is not None:
        low |= np.asarray(health, dtype="float64") < cfg.poor_score
    high = (change > cfg.high_growth_arr_change) | (
        np.asarray(p_expansion_90d, dtype="float64") >= cfg.high_growth_expansion_p90
    )
    return np.where(low, "low", np.where(high, "high", "medium")).astype(object)


def growth_reasons(
    arr_change_365d: ArrayLike,
    usage_trend_90d: ArrayLike,
    p_churn_90d: ArrayLike,
    p_expansion_90d: ArrayLike,
    health: ArrayLike,
    cfg: ScoringConfig,
) -> list[str | None]:
    """Per account, the figure that set its growth tier in words (None for medium growth).

    The first of :func:`growth_tier`'s tests that holds, in the order a CSM would check them,
    so that "Declining" beside health 90 says why: "ARR -23% over the last year".
    """
    cols = [
        np.asarray(c, dtype="float64")
        for c in (arr_change_365d, usage_trend_90d, p_churn_90d, p_expansion_90d, health)
    ]
    out: list[str | None] = []
    for change, trend, churn, exp, h in zip(*cols, strict=True):
        low = [
            (h < cfg.poor_score, lambda h=h: growth_words("health", h)),
            (churn >= cfg.high_churn_p90, lambda c=churn: growth_words("churn", c)),
            (change < 0, lambda c=change: growth_words("arr_change", c)),
            (trend < cfg.low_growth_usage_trend_90d, lambda t=trend: growth_words("usage", t)),
        ]
        high = [
            (change > cfg.high_growth_arr_change, lambda c=change: growth_words("arr_change", c)),
            (exp >= cfg.high_growth_expansion_p90, lambda e=exp: growth_words("expansion", e)),
        ]
        found = next((say for holds, say in low if holds), None)
        found = found or next((say for holds, say in high if holds), None)
        out.append(found() if found else None)
    return out


def customer_type(value: ArrayLike, growth: ArrayLike, at_risk: ArrayLike) -> np.ndarray:
    """Seed 000 customer types: at_risk, strategic, growth_oriented, satisfied_stable.

    At risk: the at-risk flag, or the value x growth matrix's "At Risk" cell (high value, low
    growth: seed 002's intensive recovery), so that a segment never reads "At Risk" beside a
    "strategic" type.
    """
    value, growth = np.asarray(value), np.asarray(growth)
    return np.select(
        [
            np.asarray(at_risk, dtype=bool) | ((value == "high") & (growth == "low")),
            value == "high",
            growth == "high",
        ],
        ["at_risk", "strategic", "growth_oriented"],
        "satisfied_stable",
    ).astype(object)


@dataclass(frozen=True)
class Leading:
    """The account's leading churn reason: its family, effect and strongest evidence."""

    family: str
    effect: float
    evidence: str | None = None
    feature: str | None = None  # the feature behind ``evidence``


def recommend(
    *,
    health: float | None,
    band: str | None,
    at_risk: bool,
    churn_p90: float,
    expansion_p90: float,
    renewal_stage: str | None,
    alerts: list[str],
    triggers: list[str],
    nps_latest: float | None,
    leading: Leading | None,
    cfg: ScoringConfig,
    tenure_days: float | None = None,
    plan_tier: str | None = None,
    expected_expansion: float | None = None,
    top_decile: bool = False,
) -> tuple[str, str]:
    """The recommended play and its reason in one sentence, by the priority table of ``cfg``.

    In order: the first of ``cfg.alert_plays`` the account has (a lost champion or sponsor
    means executive outreach before anything else); an account at risk (poor health or high
    / top-decile churn risk) or below healthy gets the play of its leading reason (never the
    calendar), a value review when no family stands out; a healthy account gets the renewal
    motion of its stage (launch at T-180/T-120, negotiation prep at T-90..T-30), else the
    expansion conversation when it is likely or triggered (never with a high-severity
    alert), else the advocacy ask for a promoter, else a value review. Each reason names the
    signal that chose the play.

    Lifecycle and tier (issue 29): an account in its first ``onboarding_days`` gets the
    onboarding plan (only ``onboarding_alert_plays`` come before it); an account on a top tier
    is offered seats, add-ons or a multi-year term, never a higher tier. An expansion reason,
    and a renewal motion's when expansion is likely, cites the chance and the expected
    expansion ARR that earned it. "At risk" heads a reason only when the churn risk makes it
    so; poor health is named as such.
    """
    onboarding = tenure_days is not None and tenure_days < cfg.onboarding_days
    # A model without the churn head says so, never "nan%" (absent is absent).
    risk = (
        "no 90-day churn estimate"
        if missing(churn_p90)
        else f"90-day churn risk {percent(churn_p90)}"
    )
    state = f"{band} health ({health:.0f})" if health is not None else "no health score"
    when = (
        f" The renewal is at {code(renewal_stage)}."
        if renewal_stage
        in (
            *cfg.launch_stages,
            *cfg.negotiation_stages,
        )
        else ""
    )
    for alert_name, play in cfg.alert_plays:
        if alert_name in alerts and (not onboarding or play in cfg.onboarding_alert_plays):
            return play, f"{alert_words(alert_name)}: {state}, {risk}.{when}"
    if onboarding:
        return "onboarding_plan", onboarding_reason(tenure_days, state, risk)
    healthy = health is not None and health >= cfg.healthy_score and not at_risk
    severe = [a for a in alerts if a in cfg.high_severity_alerts]
    grows = not severe and (expansion_p90 >= cfg.high_growth_expansion_p90 or triggers)
    # Without the expansion head the triggers alone earn the play, never "nan%".
    chance = (
        "; ".join(trigger(t) for t in triggers)
        if missing(expansion_p90)
        else expansion_words(expansion_p90, expected_expansion)
    )
    # Expansion follows value: a likely expansion of an account not yet healthy waits for the
    # value review, and its reason says what is waiting.
    later = f" Expansion follows value: {chance} once it is healthy." if grows else ""
    if at_risk or (health is not None and not healthy):
        risky = churn_p90 >= cfg.high_churn_p90 or top_decile
        head = "At risk" if risky else state[0].upper() + state[1:]
        lead = leading if leading and leading.effect >= cfg.leading_reason_min else None
        if lead is None or lead.family not in cfg.family_plays:
            why = f"{head}: {risk} with no single family of signals standing out."
            return "value_review", why + when + ("" if at_risk else later)
        why = f"{head} ({risk}): {FAMILY_WORDS[lead.family]} adds {points(lead.effect)}"
        why += f"; {lead.evidence}." if lead.evidence else "."
        chosen = cfg.evidence_plays.get(lead.feature or "", cfg.family_plays[lead.family])
        return chosen, why + when
    if not healthy:
        return "value_review", f"Keep the value visible: {state}, {risk}.{later}"
    fold = f" Fold in the expansion: {chance}." if grows else ""
    if renewal_stage in cfg.launch_stages:
        return (
            "renewal_launch",
            f"The renewal is at {code(renewal_stage)}: time to launch it ({risk}).{fold}",
        )
    if renewal_stage in cfg.negotiation_stages:
        return (
            "negotiation_prep",
            f"The renewal is at {code(renewal_stage)}: prepare terms and the value story "
            f"({risk}).{fold}",
        )
    if grows:
        why = chance
        if triggers and not missing(expansion_p90):
            why += "; " + "; ".join(trigger(t) for t in triggers)
        play = "expansion_addons" if plan_tier in cfg.top_tiers else "expansion_conversation"
        return play, f"Healthy and ready to grow: {why}."
    if nps_latest is not None and nps_latest >= cfg.promoter_nps:
        return "advocacy_ask", f"Healthy and a promoter (latest NPS answer {nps_latest:.0f} of 10)."
    return "value_review", f"Keep the value visible: {state}, {risk}."


def needs_action(df: pd.DataFrame, cfg: ScoringConfig) -> pd.Series:
    """The accounts for this week's worklist (the pages' and the calls to action's rule).

    At risk (top decile of the headline churn risk, that risk at ``high_churn_p90`` or more, or
    health below ``poor_score``), or with a high-severity alert, or at T-90..T-30 of a
    renewal below healthy health.
    """
    # A model without the headline churn head: that test is absent, never a zero.
    churn = df.get(f"p_{CHURN_HEAD}", pd.Series(np.nan, index=df.index)).astype("float64")
    severe = df["alerts"].map(lambda a: bool(set(a) & set(cfg.high_severity_alerts)))
    health = df["health_score"].astype("float64")
    soon = df["renewal_stage"].isin(cfg.negotiation_stages) & ~(health >= cfg.healthy_score)
    return (
        df["churn_risk_top_decile"].astype(bool)
        | (churn >= cfg.high_churn_p90)
        | (health < cfg.poor_score)
        | severe
        | soon
    )


def within_capacity(df: pd.DataFrame, needs: pd.Series, capacity: int, at_stake: str) -> pd.Series:
    """The accounts of ``needs`` the team can work this week: ``capacity`` per CSM owner.

    Per owner (accounts without a named CSM pooled as tech touch, as the calls to action pool
    them), the first ``capacity`` by the column ``at_stake`` (ARR at risk; missing last, never
    as zero). The rest still need action: they stay in the portfolio and come in as the
    worklist clears. The calls to action open within the same capacity
    (``actions.ctas.choose``, which puts the most severe cause first).
    """
    stake = df.get(at_stake, pd.Series(np.nan, index=df.index)).astype("float64")
    raw = df.get("csm_owner", pd.Series(None, index=df.index, dtype="object")).astype("object")
    owner = raw.where(raw.notna() & (raw != ""), "")
    order = stake[needs.astype(bool)].sort_values(
        ascending=False, na_position="last", kind="stable"
    )
    rank = order.groupby(owner[order.index], sort=False).cumcount()
    keep = pd.Series(False, index=df.index)
    keep[rank.index[rank.to_numpy() < capacity]] = True
    return keep
