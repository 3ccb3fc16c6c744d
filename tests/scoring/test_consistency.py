"""Issue 29's findings, each reproduced on a small record and now passing (pure functions).

The checker over a whole generated portfolio, and over a record edited to contradict itself,
is in test_records.py (it needs the trained model).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from features.words import PLAYS, SPREAD, reason_sentence, timing_sentence
from scoring.coherence import coherence_notes, renewal_risk_level
from scoring.plays import ScoringConfig, customer_type, growth_reasons, growth_tier
from scoring.records import _disagreement
from tests.scoring.test_plays import play as plays_play

CFG = ScoringConfig()


def play(**kw):
    """test_plays' builder with a healthy, established, mid-tier account as the default."""
    healthy = dict(health=85.0, band="green", churn_p90=0.02)
    return plays_play(**(healthy | dict(tenure_days=400.0, plan_tier="professional") | kw))


def test_onboarding_accounts_get_the_onboarding_plan_not_expansion_or_a_recovery_sprint():
    # Found: 9 and 26 days a customer -> "Expansion conversation"; 6% seats -> a 7-day sprint.
    for tenure in (9.0, 26.0):
        got, why = play(tenure_days=tenure, expansion_p90=0.8, triggers=["seats_over_80"])
        assert got == "onboarding_plan" and f"({tenure:.0f} days a customer)" in why
    got, _ = play(tenure_days=26.0, health=30, band="red", at_risk=True, alerts=["usage_collapse"])
    assert got == "onboarding_plan"
    # A lost champion during onboarding is still executive outreach (configured).
    assert play(tenure_days=26.0, alerts=["champion_lost"])[0] == "executive_outreach"
    assert play(tenure_days=90.0, expansion_p90=0.8)[0] == "expansion_conversation"


@given(
    tenure=st.floats(0, 2000),
    tier=st.sampled_from(["starter", "professional", "enterprise", None]),
    health=st.floats(0, 100),
    churn=st.floats(0, 1),
    expansion=st.floats(0, 1),
    alerts=st.lists(st.sampled_from(["champion_lost", "usage_collapse", "engagement_drop"])),
    stage=st.sampled_from(["not_in_cycle", "t_minus_120", "t_minus_60", "monthly_rolling"]),
)
def test_no_play_outside_its_lifecycle_and_tier(
    tenure, tier, health, churn, expansion, alerts, stage
):
    got, why = play(
        tenure_days=tenure,
        plan_tier=tier,
        health=health,
        at_risk=health < 40 or churn >= 0.2,
        churn_p90=churn,
        expansion_p90=expansion,
        alerts=alerts,
        renewal_stage=stage,
        expected_expansion=1000.0,
    )
    if tenure < CFG.onboarding_days:
        assert got in ("onboarding_plan", *CFG.onboarding_alert_plays)
    if tier == "enterprise":
        assert got != "expansion_conversation"
    if got.startswith("expansion"):
        assert health >= CFG.healthy_score and "$1,000 expected expansion ARR" in why


def test_the_top_tier_is_offered_seats_add_ons_or_multi_year_never_a_higher_tier():
    # Found: 56 enterprise-tier accounts offered "a higher tier".
    got, why = play(plan_tier="enterprise", expansion_p90=0.71, expected_expansion=324_899.8)
    assert got == "expansion_addons" and "higher tier" not in PLAYS[got]
    assert "71% chance of expanding within 90 days ($324,900 expected expansion ARR)" in why
    assert play(expansion_p90=0.71)[0] == "expansion_conversation"


def test_the_renewal_motion_and_the_value_review_cite_a_likely_expansion():
    # Found: A000138 at 79% -> a renewal play that never mentions expansion.
    got, why = play(renewal_stage="t_minus_30", expansion_p90=0.79, expected_expansion=22_445)
    assert got == "negotiation_prep" and "79% chance" in why and "$22,445" in why
    # A001044: yellow health, 71% chance -> value review that now says what waits for value.
    got, why = play(health=57, band="yellow", expansion_p90=0.71, expected_expansion=324_900)
    assert got == "value_review" and "Expansion follows value: 71% chance" in why


def test_at_risk_heads_a_reason_only_when_the_churn_risk_says_so():
    # Found: "At risk (90-day churn risk 2%)" on accounts flagged by health below 40.
    _, why = play(health=30, band="red", at_risk=True, churn_p90=0.02)
    assert why.startswith("Red health (30)") and "At risk" not in why
    _, why = play(health=30, band="red", at_risk=True, churn_p90=0.25)
    assert why.startswith("At risk")
    _, why = play(health=60, band="yellow", at_risk=True, churn_p90=0.12, top_decile=True)
    assert why.startswith("At risk")


def test_segment_and_type_follow_health_and_the_at_risk_cell():
    # Found: A001608, health 29, "Defenders (maintain)"; A000918 "At Risk (rescue) · strategic".
    growth = growth_tier([0.0], [0.0], [0.04], [0.05], CFG, health=[29.0])
    assert growth.tolist() == ["low"]
    assert growth_tier([0.0], [0.0], [0.04], [0.05], CFG, health=[60.0]).tolist() == ["medium"]
    assert customer_type(["high"], ["low"], [False]).tolist() == ["at_risk"]
    assert customer_type(["high"], ["medium"], [False]).tolist() == ["strategic"]
    # A000768, health 90 and up 10 points, is "Declining (recover)": the record says why.
    said = growth_reasons(
        [-0.226, 0.0, 0.2], [0.057, 0.0, 0.0], [0.02] * 3, [0.05] * 3, [90.5] * 3, CFG
    )
    assert said == ["ARR -23% over the last year", None, "ARR +20% over the last year"]


def test_renewal_risk_is_one_rule_for_a_renewal_in_the_window():
    # Found: "renewal risk high" on 1,017 of 1,320, A001044 among them (renewal in 484 days).
    got = renewal_risk_level(
        [484, 30, 30, 30, 30], [np.nan, 0.6, 0.85, 0.95, np.nan], [0.003, 0.3, 0.1, 0.02, 0.3], CFG
    )
    assert got.tolist() == [None, "high", "medium", "low", "high"]


def test_renewal_likelihood_and_churn_risk_apart_say_why():
    # Found: A000072 renews in 15 days: churn 28%, renewal likelihood 88%, nothing says why.
    reasons = [{"title": "Product usage", "effect": 0.034, "evidence": []}]
    notes = coherence_notes(
        np.array([15.0, 15.0, 15.0, 120.0]),
        np.array([0.88, 0.88, 0.75, 0.5]),
        np.array([0.28, 0.28, 0.28, 0.28]),
        ["t_minus_30", "monthly_rolling", "t_minus_30", "t_minus_120"],
        [np.datetime64("2026-11-15")] * 4,
        [reasons] * 4,
        [reasons] * 4,
        CFG,
    )
    assert "renewal likelihood (88%)" in notes[0] and "churn risk (28%)" in notes[0]
    assert "16 points apart" in notes[0] and "15 Nov 2026" in notes[0]
    assert notes[1:] == [None, None, None]  # monthly: three renewals; within 10 points; later


def test_a_family_without_evidence_and_a_contract_less_timing_line_say_what_they_rest_on():
    # Found: "Product usage raises ... by 14 points" with only a driver lowering it by 1.7.
    assert reason_sentence("usage", 0.14, "churn_90d", spread=True).endswith(SPREAD)
    # Found: "No contract end date on record: +6.8 points" where the effect is tenure.
    text = timing_sentence("expansion_90d", 0.068, None, None, False, lead=("tenure_days", "26"))
    assert text.startswith("No contract end date on record; the part comes from")
    assert "(26)" in text and "+6.8 points" in text


def test_the_disagreement_banner_credits_the_part_that_explains_most():
    # Found: a family worth 0.2 points credited where the renewal date explains 3.5.
    reasons = [[{"family": "usage", "effect": 0.002, "evidence": [], "title": "Product usage"}]]
    timing = {"effect": 0.035, "sentence": "Renewal on 1 Dec 2026 falls inside the next 90 days"}
    context = {"effect": 0.0, "sentence": "Account profile"}
    [text] = _disagreement(
        np.array([85.0]), np.array([0.25]), np.array([True]), reasons, {}, CFG, [(timing, context)]
    )
    assert "(Renewal on 1 Dec 2026 falls inside the next 90 days)" in text
    assert "product usage" not in text and not text.endswith(".")
