"""The rule-based health score, early-warning alerts, expansion triggers and renewal risk.

All of it is computed per snapshot from the catalogue features, as ``domain.md`` describes
the seeds' rules. The scheme (weights, metric thresholds, bands) comes from configuration.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import (
    HEALTHY_SCORE,
    OPS,
    POOR_SCORE,
    AlertThresholds,
    Condition,
    FeatureConfig,
    HealthScheme,
    Metric,
)

HEALTH_COLUMNS = ("health_score", "health_band", "health_coverage", "health_change")
# The account's health score one calendar month before the snapshot (the base of the change).
PREVIOUS_HEALTH = "month_ago_health_score"


def _conditions(df: pd.DataFrame, conds: tuple[Condition, ...]) -> np.ndarray:
    ok = np.ones(len(df), dtype=bool)
    for c in conds:
        ok &= OPS[c.op](df[c.feature].astype(float).to_numpy(), c.value)
    return ok


def metric_score(df: pd.DataFrame, metric: Metric, scores: tuple[float, float, float]) -> pd.Series:
    """Score of one metric per row: red, yellow or green; NaN when an input is missing."""
    inputs = {c.feature for c in metric.green + metric.red}
    missing = df[list(inputs)].isna().any(axis=1).to_numpy()
    red, yellow, green = scores
    value = np.where(
        _conditions(df, metric.red), red, np.where(_conditions(df, metric.green), green, yellow)
    )
    return pd.Series(np.where(missing, np.nan, value), index=df.index)


def health_scores(df: pd.DataFrame, scheme: HealthScheme) -> pd.DataFrame:
    """Health score, band, coverage and one sub-score column per component.

    A metric with missing inputs is left out of its component; a component with no metric
    left is left out and the remaining weights are rescaled. ``health_coverage`` is the share
    of the total weight that had data, so a score built on little evidence is visible.
    """
    out = pd.DataFrame(index=df.index)
    weighted = np.zeros(len(df))
    covered = np.zeros(len(df))
    total = sum(c.weight for c in scheme.components.values())
    for name, comp in scheme.components.items():
        metrics = pd.concat(
            [metric_score(df, m, scheme.metric_scores) for m in comp.metrics], axis=1
        )
        sub = metrics.mean(axis=1, skipna=True)
        out[f"health_{name}"] = sub
        has = sub.notna().to_numpy()
        weighted += np.where(has, sub.fillna(0).to_numpy() * comp.weight, 0.0)
        covered += np.where(has, comp.weight, 0.0)
    score = np.where(covered > 0, weighted / np.where(covered > 0, covered, 1), np.nan)
    out["health_score"] = np.round(score, 2)
    out["health_coverage"] = covered / total
    out["health_band"] = pd.Series(band_of(score, scheme.bands), index=df.index, dtype="str")
    return out


def band_of(score: np.ndarray, bands) -> np.ndarray:
    """The band (the scheme's names; ``bands`` ordered by ``min``) of each score.

    None where the score is missing. Today's score and a forecast one use the same cut-offs.
    """
    mins = np.array([b.min for b in bands])
    names = np.array([b.name for b in bands], dtype=object)
    s = np.asarray(score, dtype="float64")
    idx = np.clip(np.searchsorted(mins, np.nan_to_num(s, nan=-1), side="right") - 1, 0, None)
    return np.where(np.isnan(s), None, names[idx])


def month_before(as_of: pd.Series | pd.DatetimeIndex) -> pd.Series | pd.DatetimeIndex:
    """One calendar month back; a month end goes to the previous month end (31 Mar -> 28 Feb).

    The one definition of "a month ago" for the health change, whatever the snapshot frequency.
    """
    day = pd.Timedelta(days=1)
    return (pd.to_datetime(as_of) + day - pd.DateOffset(months=1)) - day


def month_ago_value(df: pd.DataFrame, column: str) -> pd.Series:
    """The account's ``column`` at the snapshot one calendar month before (NaN if none)."""
    keys = pd.DataFrame(
        {
            "account_id": df["account_id"].to_numpy(),
            "as_of": pd.to_datetime(month_before(df["as_of"])).to_numpy().astype("datetime64[s]"),
        }
    )
    ref = df[["account_id", "as_of", column]].assign(
        as_of=pd.to_datetime(df["as_of"]).to_numpy().astype("datetime64[s]")
    )
    merged = keys.merge(ref, on=["account_id", "as_of"], how="left")
    return pd.Series(merged[column].to_numpy(), index=df.index)


def alerts(df: pd.DataFrame, t: AlertThresholds, prev: pd.Series) -> pd.DataFrame:
    """Early-warning alerts (seed 001 signs, seed 002 thresholds) as boolean columns.

    ``prev`` is each row's health score a calendar month before.
    """
    score = df["health_score"]
    a = pd.DataFrame(index=df.index)

    def crossed(level: float) -> pd.Series:
        return (prev >= level) & (score < level)

    a["alert_health_below_70"] = crossed(HEALTHY_SCORE)
    a["alert_health_below_40"] = crossed(POOR_SCORE)
    # A drop only: a rise is good news, shown as such, never an alert.
    a["alert_health_drop"] = (prev - score) > t.health_change_points
    a["alert_usage_decline"] = df["usage_trend_30d"] < -t.usage_decline
    a["alert_usage_collapse"] = df["usage_trend_30d"] < -t.usage_collapse
    a["alert_engagement_drop"] = df["engagement_trend_90d"] < -t.engagement_drop
    a["alert_support_spike"] = df["ticket_spike_ratio"] >= t.support_spike
    a["alert_satisfaction_drop"] = df["nps_trend_180d"] <= -t.satisfaction_drop_points
    a["alert_negative_nps"] = df["nps_180d"] < 0
    a["alert_sponsor_lost"] = df["sponsor_lost_90d"] > 0
    a["alert_champion_lost"] = df["champion_lost_90d"] > 0
    a["alert_unresolved_critical"] = (df["open_critical_tickets"] > 0) | (
        df["open_escalations"] > 0
    )
    a["alert_payment_delay"] = df["overdue_invoices"] > 0
    a["alert_no_response"] = (df["email_reply_90d"] == 0) & (df["meeting_90d"] == 0)
    # Seed 001's "negative sentiment": enough tickets read this month, most of them frustrated
    # (missing without text: never raised on data that has none).
    if "negative_ticket_share_30d" in df.columns:
        a["alert_negative_sentiment"] = (
            df["read_tickets_30d"] >= t.negative_sentiment_min_tickets
        ) & (df["negative_ticket_share_30d"] >= t.negative_sentiment_share)
    a = a.fillna(False).astype(bool)
    a["alerts_active"] = a.sum(axis=1)
    return a


def expansion_triggers(df: pd.DataFrame) -> pd.DataFrame:
    """Seed 001 expansion triggers as boolean columns."""
    su, adoption, tenure = df["seat_utilisation"], df["feature_adoption"], df["tenure_days"]
    tr = pd.DataFrame(index=df.index)
    tr["trigger_seats_over_80"] = su > 0.80
    tr["trigger_seats_75_80"] = (su >= 0.75) & (su <= 0.80)
    tr["trigger_adoption_90"] = adoption >= 0.90
    tr["trigger_strong_adoption_6_12m"] = (
        tenure.between(180, 365) & (adoption >= 0.80) & (su >= 0.70)
    )
    tr["trigger_value_proven"] = (
        (df["milestones_on_time_rate"] >= 1.0) & (df["milestones_achieved"] >= 1) & (tenure >= 180)
    )
    tr["trigger_whitespace_12m"] = (
        (tenure >= 365) & (df["health_score"] >= HEALTHY_SCORE) & (su >= 0.70)
    )
    tr = tr.fillna(False).astype(bool)
    tr["triggers_active"] = tr.sum(axis=1)
    return tr


def renewal_risk(df: pd.DataFrame) -> pd.Series:
    """Seed 003 renewal risk: high below 70 health or on a red flag, medium to 85, else low."""
    flag = (
        (df["usage_decline_20"] == 1)
        | (df["stakeholders_lost_90d"] > 0)
        | (df["overdue_invoices"] > 0)
    ).fillna(False)
    score = df["health_score"]
    risk = np.select(
        [score.isna(), (score < HEALTHY_SCORE) | flag, score <= 85], [None, "high", "medium"], "low"
    )
    return pd.Series(risk, index=df.index, dtype="str")


def rule_based(df: pd.DataFrame, scheme: HealthScheme, thresholds: AlertThresholds) -> pd.DataFrame:
    """Health score with components, its change, alerts, triggers and renewal risk.

    The change is against the score a calendar month before: the rows' own
    ``PREVIOUS_HEALTH`` when they carry it (store rows, what-if changes), else the same
    account's row dated a month earlier in ``df`` (missing when there is none).
    """
    h = health_scores(df, scheme)
    if PREVIOUS_HEALTH in df:
        prev = df[PREVIOUS_HEALTH].astype("float64")
    else:
        both = pd.concat([df[["account_id", "as_of"]], h], axis=1)
        prev = month_ago_value(both, "health_score")
    h["health_change"] = h["health_score"] - prev
    h[PREVIOUS_HEALTH] = prev
    full = pd.concat([df.drop(columns=[c for c in h if c in df]), h], axis=1)
    return pd.concat([h, alerts(full, thresholds, prev), expansion_triggers(full)], axis=1).assign(
        renewal_risk=renewal_risk(full)
    )


def with_rules(features: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """``account_id``, ``as_of`` and feature columns, with the rule-based columns added.

    The health change is as in :func:`rule_based`.
    """
    rules = rule_based(features, cfg.health_scheme(), cfg.alerts)
    return pd.concat([features.drop(columns=[c for c in rules if c in features]), rules], axis=1)
