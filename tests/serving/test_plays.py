from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving.plays import ScoringConfig, customer_type, growth_tier, recommend, value_tier

CFG = ScoringConfig()


def play(**kw):
    base = dict(
        health=60.0,
        band="yellow",
        at_risk=False,
        churn_p90=0.05,
        expansion_p90=0.05,
        renewal_stage="not_in_cycle",
        triggers=[],
        nps_latest=None,
        churn_driver=None,
        cfg=CFG,
    )
    return recommend(**(base | kw))


@pytest.mark.parametrize(
    "account, expected",
    [
        (
            dict(
                health=30, band="red", at_risk=True, churn_p90=0.4, churn_driver="seat_utilisation"
            ),
            "usage_recovery",
        ),
        (
            dict(health=30, band="red", at_risk=True, churn_driver="sponsor_lost_90d"),
            "executive_outreach",
        ),
        (dict(health=55, at_risk=True, churn_driver="open_critical_tickets"), "support_escalation"),
        (dict(health=55, at_risk=True, churn_driver="email_reply_90d"), "engagement_revival"),
        (dict(health=55, at_risk=True, churn_driver="overdue_invoices"), "value_review"),
        (dict(health=80, band="green", renewal_stage="t_minus_120"), "renewal_launch"),
        (
            dict(health=80, band="green", renewal_stage="t_minus_180", expansion_p90=0.6),
            "renewal_launch",
        ),
        (dict(health=85, band="green", expansion_p90=0.45), "expansion_conversation"),
        (dict(health=85, band="green", triggers=["seats_over_80"]), "expansion_conversation"),
        (dict(health=85, band="green", nps_latest=10.0), "advocacy_ask"),
        (dict(health=55, churn_driver="webinar_90d"), "engagement_revival"),
        (dict(health=None, band=None), "value_review"),
    ],
)
def test_play_follows_the_rules(account, expected):
    chosen, reason = play(**account)
    assert chosen == expected
    assert reason.endswith(".") and len(reason) < 240


def test_reasons_say_why():
    _, reason = play(
        health=30, band="red", at_risk=True, churn_p90=0.42, churn_driver="seat_utilisation"
    )
    assert reason == (
        "At risk: red health (30), 90-day churn risk 42%, driven most by product usage."
    )
    _, reason = play(health=85, band="green", expansion_p90=0.45, triggers=["seats_over_80"])
    assert "45% chance of expanding" in reason and "more than 80% of seats in use" in reason


@given(
    health=st.one_of(st.none(), st.floats(0, 100)),
    at_risk=st.booleans(),
    expansion=st.floats(0, 1),
    triggers=st.lists(st.sampled_from(["seats_over_80", "adoption_90", "value_proven"])),
    stage=st.sampled_from(["not_in_cycle", "t_minus_90", "t_minus_120", "monthly_rolling"]),
)
def test_expansion_is_never_recommended_to_an_unhealthy_account(
    health, at_risk, expansion, triggers, stage
):
    chosen, _ = play(
        health=health,
        at_risk=at_risk,
        expansion_p90=expansion,
        triggers=triggers,
        renewal_stage=stage,
        band="x",
    )
    if at_risk or health is None or health < CFG.healthy_score:
        assert chosen != "expansion_conversation"


def test_value_growth_matrix_and_customer_type():
    df = pd.DataFrame(
        {
            "arr": [300_000, 100_000, 20_000, 300_000],
            "arr_change_365d": [0.25, 0.0, -0.1, 0.0],
            "usage_trend_90d": [0.1, 0.0, 0.0, -0.5],
        }
    )
    value = value_tier(df["arr"], CFG)
    growth = growth_tier(df["arr_change_365d"], df["usage_trend_90d"], [0.02] * 4, [0.1] * 4, CFG)
    assert value.tolist() == ["high", "medium", "low", "high"]
    assert growth.tolist() == ["high", "medium", "low", "low"]
    at_risk = [False, False, False, True]
    assert customer_type(value, growth, at_risk).tolist() == [
        "strategic",
        "satisfied_stable",
        "satisfied_stable",
        "at_risk",
    ]
