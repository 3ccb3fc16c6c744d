"""Renewal risk and the coherence of renewal likelihood with churn risk (issue 29).

Pure functions on the record's own columns. "Renewal risk" means one thing (docs/scoring.md):
the risk that the next renewal, falling within ``RENEWAL_WINDOW_DAYS``, is lost, read from
the renewal likelihood. For a renewal inside the churn head's horizon, 1 - renewal likelihood
and the churn risk estimate the same event; when they are ``coherence_points`` or more apart,
the record carries a sentence that says why (the two models' own leading reasons).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from features.catalogue import HEADLINE_HORIZON, RENEWAL_LABEL, RENEWAL_WINDOW_DAYS
from features.words import coherence_sentence, lead_words
from scoring.plays import ScoringConfig


def renewal_risk_level(
    days_to_renewal: ArrayLike, p_renewal: ArrayLike, p_churn: ArrayLike, cfg: ScoringConfig
) -> np.ndarray:
    """High / medium / low for a renewal within the window; None otherwise.

    High: renewal likelihood below ``renewal_risk_high`` (without a likelihood: the headline
    churn risk at ``high_churn_p90`` or more); medium: below ``renewal_risk_medium``.
    """
    days = np.asarray(days_to_renewal, dtype="float64")
    pr = np.asarray(p_renewal, dtype="float64")
    pc = np.asarray(p_churn, dtype="float64")
    inside = (days > 0) & (days <= RENEWAL_WINDOW_DAYS)
    lost = np.where(np.isnan(pr), np.where(pc >= cfg.high_churn_p90, 0.0, 1.0), pr)
    level = np.where(
        lost < cfg.renewal_risk_high,
        "high",
        np.where(lost < cfg.renewal_risk_medium, "medium", "low"),
    ).astype(object)
    level[~inside] = None
    return level


def disagree(
    days_to_renewal: ArrayLike,
    p_renewal: ArrayLike,
    p_churn: ArrayLike,
    renewal_stage: ArrayLike,
    cfg: ScoringConfig,
) -> np.ndarray:
    """Whether a renewal inside the headline horizon has the two estimates too far apart.

    A monthly rolling contract is left out: its churn horizon holds several renewals, the
    renewal likelihood only the next, so the two do not estimate one event.
    """
    days = np.asarray(days_to_renewal, dtype="float64")
    gap = np.abs(1 - np.asarray(p_renewal, dtype="float64") - np.asarray(p_churn, dtype="float64"))
    one_event = np.asarray(renewal_stage, dtype=object) != MONTHLY_STAGE
    return (days > 0) & (days <= HEADLINE_HORIZON) & one_event & (gap > cfg.coherence_points)


MONTHLY_STAGE = "monthly_rolling"  # the renewal_stage of a monthly plan (features.catalogue)


def _lead(reasons: list[dict], label: str) -> str:
    """The most risk-raising family of one head, in words (its evidence's effect included)."""
    up = [r for r in reasons if r["effect"] > 0]
    return lead_words(label, up[0]["title"], up[0]["effect"]) if up else lead_words(label)


def coherence_notes(
    days_to_renewal,
    p_renewal,
    p_churn,
    renewal_stages,
    renewal_dates,
    churn_reasons: list[list[dict]],
    renewal_reasons: list[list[dict]],
    cfg: ScoringConfig,
) -> list[str | None]:
    """Per row, the stated reason where renewal likelihood and churn risk disagree, else None."""
    far = disagree(days_to_renewal, p_renewal, p_churn, renewal_stages, cfg)
    out: list[str | None] = [None] * len(far)
    for i in np.flatnonzero(far):
        out[i] = coherence_sentence(
            float(p_renewal[i]),
            float(p_churn[i]),
            renewal_dates[i],
            HEADLINE_HORIZON,
            _lead(churn_reasons[i], f"churn_{HEADLINE_HORIZON}d"),
            _lead(renewal_reasons[i], RENEWAL_LABEL),
        )
    return out
