from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.catalogue import FEATURES
from features.words import FAMILY_WORDS, PLAYS, alert_words
from scoring.plays import (
    Leading,
    ScoringConfig,
    customer_type,
    growth_tier,
    recommend,
    value_tier,
    within_capacity,
)

CFG = ScoringConfig()
FAMILIES = ("usage", "engagement", "relationship", "support", "commercial")
ALERTS = (
    "champion_lost",
    "sponsor_lost",
    "unresolved_critical",
    "usage_collapse",
    "engagement_drop",
    "health_below_40",
    "payment_delay",
    "health_drop",
)
STAGES = [
    "not_in_cycle",
    "t_minus_180",
    "t_minus_120",
    "t_minus_90",
    "t_minus_30",
    "monthly_rolling",
]


def play(**kw):
    base = dict(
        health=60.0,
        band="yellow",
        at_risk=False,
        churn_p90=0.05,
        expansion_p90=0.05,
        renewal_stage="not_in_cycle",
        alerts=[],
        triggers=[],
        nps_latest=None,
        leading=None,
        cfg=CFG,
    )
    return recommend(**(base | kw))


def lead(family: str, effect: float = 0.08, feature: str | None = None) -> Leading:
    return Leading(
        family, effect, "share of purchased seats active each week: 13% (typical 58%)", feature
    )


@pytest.mark.parametrize(
    "account, expected",
    [
        (dict(health=30, band="red", at_risk=True, leading=lead("usage")), "usage_recovery"),
        (dict(health=30, at_risk=True, leading=lead("relationship")), "executive_outreach"),
        (dict(health=55, at_risk=True, leading=lead("support")), "support_escalation"),
        (dict(health=55, at_risk=True, leading=lead("engagement")), "engagement_revival"),
        (dict(health=55, at_risk=True, leading=lead("commercial")), "value_review"),
        (dict(health=55, at_risk=True, leading=lead("usage", 0.001)), "value_review"),
        # A lost champion comes before anything else, the calendar and expansion included.
        (
            dict(health=90, band="green", alerts=["champion_lost"], expansion_p90=0.8),
            "executive_outreach",
        ),
        (
            dict(health=20, at_risk=True, alerts=["usage_collapse"], leading=lead("support")),
            "usage_recovery",
        ),
        (dict(health=80, band="green", renewal_stage="t_minus_120"), "renewal_launch"),
        (dict(health=80, band="green", renewal_stage="t_minus_60"), "negotiation_prep"),
        # Timing decides when, never why: an at-risk account at T-120 gets its reason's play.
        (
            dict(health=30, at_risk=True, renewal_stage="t_minus_120", leading=lead("usage")),
            "usage_recovery",
        ),
        (dict(health=85, band="green", expansion_p90=0.45), "expansion_conversation"),
        (dict(health=85, band="green", triggers=["seats_over_80"]), "expansion_conversation"),
        (
            dict(
                health=85, band="green", triggers=["seats_over_80"], alerts=["unresolved_critical"]
            ),
            "support_escalation",
        ),
        (dict(health=85, band="green", nps_latest=10.0), "advocacy_ask"),
        (dict(health=55, leading=lead("engagement")), "engagement_revival"),
        # Usage that never took hold is an adoption problem; a fall is the 7-day sprint's.
        (
            dict(health=30, at_risk=True, leading=lead("usage", feature="seat_utilisation")),
            "adoption_plan",
        ),
        (
            dict(health=30, at_risk=True, leading=lead("usage", feature="usage_trend_30d")),
            "usage_recovery",
        ),
        (dict(health=None, band=None), "value_review"),
    ],
)
def test_play_follows_the_priority_table(account, expected):
    chosen, reason = play(**account)
    assert chosen == expected
    assert reason.endswith(".") and len(reason) < 300


def test_reasons_name_the_signal_that_chose_the_play():
    _, reason = play(health=30, band="red", at_risk=True, churn_p90=0.42, leading=lead("usage"))
    assert reason == (
        "At risk (90-day churn risk 42%): product usage adds 8 points; share of purchased seats "
        "active each week: 13% (typical 58%)."
    )
    _, reason = play(health=80, alerts=["champion_lost"], renewal_stage="t_minus_30")
    assert reason.startswith("The champion left in the last 90 days") and "T-30" in reason
    _, reason = play(health=85, band="green", expansion_p90=0.45, triggers=["seats_over_80"])
    assert "45% chance of expanding" in reason and "more than 80% of seats in use" in reason


@given(
    health=st.one_of(st.none(), st.floats(0, 100)),
    at_risk=st.booleans(),
    expansion=st.floats(0, 1),
    alerts=st.lists(st.sampled_from(ALERTS), unique=True),
    triggers=st.lists(st.sampled_from(["seats_over_80", "adoption_90", "value_proven"])),
    stage=st.sampled_from(STAGES),
    family=st.one_of(st.none(), st.sampled_from(FAMILIES)),
    effect=st.floats(0, 0.5),
    data=st.data(),
)
def test_play_rules_hold_for_any_account(
    health, at_risk, expansion, alerts, triggers, stage, family, effect, data
):
    # The leading reason's evidence is one of its family's features (or none named).
    own = sorted(f.name for f in FEATURES if f.family == family)
    feature = data.draw(st.one_of(st.none(), st.sampled_from(own))) if own else None
    chosen, reason = play(
        health=health,
        at_risk=at_risk,
        expansion_p90=expansion,
        alerts=alerts,
        triggers=triggers,
        renewal_stage=stage,
        band="x",
        leading=None if family is None else lead(family, effect, feature),
    )
    # Lost champion or sponsor: executive outreach before anything else.
    if {"champion_lost", "sponsor_lost"} & set(alerts):
        assert chosen == "executive_outreach"
    # Expansion follows value: healthy (70+), not at risk, no high-severity alert.
    if chosen == "expansion_conversation":
        assert health is not None and health >= CFG.healthy_score and not at_risk
        assert not set(alerts) & set(CFG.high_severity_alerts)
    # The calendar never chooses the play of an account at risk.
    if at_risk:
        assert chosen not in ("renewal_launch", "negotiation_prep")
    # The reason names the signal that chose it.
    first_alert = next((a for a, _ in CFG.alert_plays if a in alerts), None)
    if first_alert:
        assert reason.startswith(alert_words(first_alert))
    elif (
        family
        and effect >= CFG.leading_reason_min
        and (at_risk or (health is not None and health < CFG.healthy_score))
    ):
        expected = CFG.evidence_plays.get(feature or "", CFG.family_plays[family])
        assert chosen == expected and FAMILY_WORDS[family] in reason
    assert chosen in PLAYS


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


def test_the_worklist_keeps_each_csms_week_within_capacity():
    """Per owner (tech touch pooled) the largest ARR at risk first, missing last, never more
    than the capacity; accounts that need no action never come in to fill it."""
    df = pd.DataFrame(
        {
            "csm_owner": ["a", "a", "a", "b", None, "", "a"],
            "arr_at_risk_90d": [10.0, float("nan"), 30.0, 5.0, 7.0, 9.0, 50.0],
        },
        index=list("PQRSTUV"),
    )
    needs = pd.Series([True, True, True, True, True, True, False], index=df.index)
    got = within_capacity(df, needs, 2, "arr_at_risk_90d")
    # a: R (30) and P (10) in, Q (missing) out, V (50) needs nothing; b: S; tech touch: U, T.
    assert list(got[got].index) == ["P", "R", "S", "T", "U"]
    assert within_capacity(df, needs, 1, "arr_at_risk_90d")[["R", "U"]].all()
    assert within_capacity(df, needs, 1, "arr_at_risk_90d").sum() == 3
