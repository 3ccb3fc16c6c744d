"""The rule-based health score pinned to values worked out by hand from the seed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalogue import FEATURE_NAMES
from features.config import AlertThresholds, FeatureConfig, HealthScheme
from features.health import health_scores, rule_based


def accounts(**columns) -> pd.DataFrame:
    """Hand-built snapshots: every feature NaN except those given."""
    n = len(next(iter(columns.values())))
    df = pd.DataFrame({name: np.full(n, np.nan) for name in FEATURE_NAMES})
    for k, v in columns.items():
        df[k] = v
    df.insert(0, "account_id", [f"A{i}" for i in range(n)])
    df.insert(1, "as_of", pd.Timestamp("2025-06-30"))
    return df


HEALTHY = dict(  # every seed 001 metric green
    seat_utilisation=[0.75],
    feature_adoption=[0.85],
    usage_trend_90d=[0.10],
    milestones_on_time_rate=[1.0],
    milestones_overdue=[0],
    executive_engagement=[2],
    active_stakeholders=[6],
    nps_180d=[60],
    critical_tickets_90d=[0],
    ticket_spike_ratio=[1.0],
    open_critical_tickets=[0],
    escalations_90d=[0],
    open_escalations=[0],
)


def test_seed001_all_green_scores_100():
    h = health_scores(accounts(**HEALTHY), HealthScheme.load("seed001"))
    assert h.loc[0, "health_score"] == 100 and h.loc[0, "health_band"] == "green"
    assert h.loc[0, "health_coverage"] == 1.0


def test_seed001_mixed_account_by_hand():
    # usage: licences 0.75 green 100, adoption 0.5 yellow 50, trend -30% red 0 -> 50
    # business: milestones all on time, none overdue -> green 100
    # relationship: sponsor engaged 100, 3 stakeholders yellow 50, NPS 60 green 100 -> 83.33
    # support: no critical and no spike 100; one escalation, resolved: yellow 50 -> 75
    # score = 0.4*50 + 0.3*100 + 0.2*83.333 + 0.1*75 = 74.17 -> green (70-100)
    df = accounts(
        **{
            **HEALTHY,
            "feature_adoption": [0.5],
            "usage_trend_90d": [-0.3],
            "active_stakeholders": [3],
            "escalations_90d": [1],
        }
    )
    h = health_scores(df, HealthScheme.load("seed001")).iloc[0]
    assert h["health_usage"] == 50 and h["health_business_outcomes"] == 100
    assert h["health_relationship"] == pytest.approx(83.333, abs=1e-3)
    assert h["health_support"] == 75
    assert h["health_score"] == pytest.approx(74.17) and h["health_band"] == "green"


def test_seed001_missing_component_spreads_its_weight():
    # No milestones data: business outcomes (30%) is left out, the rest rescaled to 70%.
    # usage red 0 (licences 0.3 red, adoption 0.3 red, trend -0.25 red);
    # relationship: no sponsor 0, one stakeholder 0, NPS -10 red 0 -> 0;
    # support: unresolved critical red 0, two open escalations red 0 -> 0. Score 0, red.
    df = accounts(
        seat_utilisation=[0.3],
        feature_adoption=[0.3],
        usage_trend_90d=[-0.25],
        executive_engagement=[0],
        active_stakeholders=[1],
        nps_180d=[-10],
        critical_tickets_90d=[2],
        ticket_spike_ratio=[3.0],
        open_critical_tickets=[1],
        escalations_90d=[3],
        open_escalations=[2],
    )
    h = health_scores(df, HealthScheme.load("seed001")).iloc[0]
    assert np.isnan(h["health_business_outcomes"])
    assert h["health_score"] == 0 and h["health_band"] == "red"
    assert h["health_coverage"] == pytest.approx(0.7)
    # Yellow usage only: (0.4*50 + 0.2*0 + 0.1*0) / 0.7 = 28.57
    df2 = df.assign(seat_utilisation=0.5, feature_adoption=0.5, usage_trend_90d=0.0)
    assert health_scores(df2, HealthScheme.load("seed001"))["health_score"].iloc[0] == (
        pytest.approx(28.57)
    )


def test_seed002_five_bands():
    df = accounts(
        **{
            **HEALTHY,
            "events_trend_90d": [0.1],
            "training_180d": [0],
            "community_post_90d": [1],
            "email_reply_30d": [3],
            "arr_change_365d": [0.1],
            "overdue_invoices": [0],
            "payment_days_late_180d": [2],
        }
    )
    h = health_scores(df, HealthScheme.load("seed002")).iloc[0]
    # usage 100; engagement: spike 1.0 green, training 0 red, community 1 yellow, email green
    # -> (100 + 0 + 50 + 100) / 4 = 62.5; business 100; relationship 100.
    # score = 0.30*100 + 0.25*62.5 + 0.25*100 + 0.20*100 = 90.625 -> thriving
    assert h["health_engagement"] == 62.5
    assert h["health_score"] == pytest.approx(90.625, abs=0.01) and h["health_band"] == "thriving"


def test_alerts_and_triggers():
    df = pd.concat([accounts(**HEALTHY), accounts(**HEALTHY)], ignore_index=True)
    df["account_id"] = "A0"
    df["as_of"] = [pd.Timestamp("2025-05-31"), pd.Timestamp("2025-06-30")]
    df.loc[1, ["feature_adoption", "usage_trend_90d", "seat_utilisation"]] = [0.3, -0.4, 0.85]
    df.loc[1, ["usage_trend_30d", "usage_decline_20", "sponsor_lost_90d", "tenure_days"]] = [
        -0.55,
        1,
        1,
        400,
    ]
    out = rule_based(df, HealthScheme.load("seed001"), AlertThresholds())
    first, second = out.iloc[0], out.iloc[1]
    assert second["health_change"] == pytest.approx(-26.67, abs=0.01)
    assert second["alert_health_drop"] and not first["alert_health_drop"]
    assert second["alert_usage_collapse"] and second["alert_usage_decline"]
    assert second["alert_sponsor_lost"] and second["trigger_seats_over_80"]
    assert not first["trigger_seats_over_80"] and first["trigger_seats_75_80"]
    assert second["renewal_risk"] == "high"  # usage decline is a red flag (seed 003)
    assert second["alerts_active"] == out.filter(like="alert_").iloc[1, :-1].sum()


def test_scheme_from_yaml_and_bad_schemes(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ncomponents:\n  usage:\n    weight: 1\n    metrics:\n"
        "      - {name: seats, green: [{feature: seat_utilisation, op: '>', value: 0.5}],"
        " red: [{feature: seat_utilisation, op: '<', value: 0.2}]}\n"
        "bands: [{name: low, min: 0}, {name: high, min: 50}]\n"
    )
    assert FeatureConfig(health=str(path)).health_scheme().name == "mine"
    path.write_text(path.read_text().replace("seat_utilisation", "seat_util"))
    with pytest.raises(ValueError, match="unknown feature 'seat_util'"):
        HealthScheme.load(path)
