"""Segments, customer types and the recommended play, from the seeds' playbooks.

Rules (``domain.md``): the value x growth matrix (seed 002), the customer types (seed 000), the
health-band actions and root-cause plays (seed 001), the renewal timeline (seeds 001, 003), and
"expansion follows value": expansion is never recommended to an unhealthy account.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field

from features.catalogue import FEATURE_BY_NAME
from features.config import HEALTHY_SCORE, POOR_SCORE
from features.words import FAMILY_WORDS, code, percent, trigger


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

# The play for a churn driver, by the driver's feature family (seed 001 root causes).
FAMILY_PLAY = {
    "usage": "usage_recovery",
    "engagement": "engagement_revival",
    "relationship": "executive_outreach",
    "support": "support_escalation",
    "commercial": "value_review",
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
) -> np.ndarray:
    """High / medium / low-or-negative growth.

    Low: ARR fell over the last year, or usage fell more than 20% over 90 days, or 90-day churn
    risk is high. High (otherwise): ARR grew more than 10% over the year or a 90-day expansion
    is likely. Else medium. Missing values count as neither.
    """
    change = np.asarray(arr_change_365d, dtype="float64")
    trend = np.asarray(usage_trend_90d, dtype="float64")
    low = (change < 0) | (trend < cfg.low_growth_usage_trend_90d)
    low |= np.asarray(p_churn_90d, dtype="float64") >= cfg.high_churn_p90
    high = (change > cfg.high_growth_arr_change) | (
        np.asarray(p_expansion_90d, dtype="float64") >= cfg.high_growth_expansion_p90
    )
    return np.where(low, "low", np.where(high, "high", "medium")).astype(object)


def customer_type(value: ArrayLike, growth: ArrayLike, at_risk: ArrayLike) -> np.ndarray:
    """Seed 000 customer types: at_risk, strategic, growth_oriented, satisfied_stable."""
    return np.select(
        [
            np.asarray(at_risk, dtype=bool),
            np.asarray(value) == "high",
            np.asarray(growth) == "high",
        ],
        ["at_risk", "strategic", "growth_oriented"],
        "satisfied_stable",
    ).astype(object)


def recommend(
    *,
    health: float | None,
    band: str | None,
    at_risk: bool,
    churn_p90: float,
    expansion_p90: float,
    renewal_stage: str | None,
    triggers: list[str],
    nps_latest: float | None,
    churn_driver: str | None,
    cfg: ScoringConfig,
) -> tuple[str, str]:
    """The recommended play and its reason in one sentence.

    In order: an at-risk account (poor health or high / top-decile churn risk) gets the play of
    its strongest churn driver's family; an account at T-180 or T-120 gets the renewal launch;
    a healthy account (score 70+, not at risk) with a likely expansion or a trigger gets the
    expansion conversation; a healthy promoter the advocacy ask; a middling one (40-69) the
    play of its strongest churn driver; anyone else (no score) a value review.
    """
    family = FEATURE_BY_NAME[churn_driver].family if churn_driver else None
    driver_play = FAMILY_PLAY.get(family, "value_review")
    driven = f", driven most by {FAMILY_WORDS[family]}" if family else ""
    risk = f"90-day churn risk {percent(churn_p90)}"
    if at_risk:
        words = f"{band} health ({health:.0f}), " if health is not None else ""
        return driver_play, f"At risk: {words}{risk}{driven}."
    if renewal_stage in ("t_minus_180", "t_minus_120"):
        return (
            "renewal_launch",
            f"The renewal is at {code(renewal_stage)}: time to launch it ({risk}).",
        )
    healthy = health is not None and health >= cfg.healthy_score
    if healthy and (expansion_p90 >= cfg.high_growth_expansion_p90 or triggers):
        why = f"{percent(expansion_p90)} chance of expanding within 90 days"
        if triggers:
            why += "; " + "; ".join(trigger(t) for t in triggers)
        return "expansion_conversation", f"Healthy and ready to grow: {why}."
    if healthy and nps_latest is not None and nps_latest >= cfg.promoter_nps:
        return "advocacy_ask", f"Healthy and a promoter (latest NPS answer {nps_latest:.0f} of 10)."
    if health is not None and health < cfg.healthy_score:
        return driver_play, f"{str(band).capitalize()} health ({health:.0f}), {risk}{driven}."
    state = f"{band} health ({health:.0f})" if health is not None else "no health score"
    return "value_review", f"Keep the value visible: {state}, {risk}."
