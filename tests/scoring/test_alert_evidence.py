"""Issue 31's surfaces (pure functions): the ticket sentence on the record, the checker's rules
for it and for the health-forecast alert, and the reason a CTA of either alert carries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from actions.config import ActionsConfig
from actions.ctas import causes
from actions.models import Cta
from actions.notify import cause_words
from features.catalogue import TEXT_TOPICS
from scoring.alert_evidence import alert_reason, forecast_drop_sentence, text_columns
from scoring.consistency import check, contradictions

BILLING_BUGS = (1 << TEXT_TOPICS.index("billing")) | (1 << TEXT_TOPICS.index("bugs"))


def _getter(columns: dict[str, list]):
    def col(name, numeric=False):
        n = len(next(iter(columns.values())))
        return np.asarray(columns.get(name, [np.nan] * n), dtype="float64")

    return col


def text_records() -> pd.DataFrame:
    """Four accounts: 3 of 5 frustrated, 0 of 2, a month without a readable ticket, no text."""
    cols = text_columns(
        _getter(
            {
                "read_tickets_30d": [5.0, 2.0, 0.0, np.nan],
                "negative_tickets_30d": [3.0, 0.0, 0.0, np.nan],
                "negative_topics_30d": [float(BILLING_BUGS), 0.0, 0.0, np.nan],
            }
        )
    )
    df = pd.DataFrame(cols)
    df["account_id"] = ["A", "B", "C", "D"]
    df["alerts"] = [["negative_sentiment"], [], [], []]
    return df


def test_the_record_quotes_the_counts_and_says_nothing_without_a_readable_ticket():
    df = text_records()
    assert [None if pd.isna(t) else t for t in df["text_evidence"]] == [
        "3 of 5 tickets this month read as frustrated: billing, bugs",
        "0 of 2 tickets this month read as frustrated",
        None,  # with text, but none this month: no "0 of 0"
        None,  # no text in the data at all
    ]
    assert df["frustrated_topics"].tolist() == [["billing", "bugs"], [], [], []]
    assert np.isnan(df["read_tickets_30d"].iloc[3])  # absent, never 0
    assert alert_reason("negative_sentiment", df.iloc[0].to_dict()) == df["text_evidence"][0]
    assert alert_reason("champion_lost", df.iloc[0].to_dict()) is None


def test_the_checker_finds_a_ticket_sentence_that_says_other_than_its_record():
    from scoring.alert_evidence import text_evidence_rule

    df = text_records()
    assert text_evidence_rule(df) == [None] * 4
    edits = {
        "text_evidence": "4 of 5 tickets this month read as frustrated: billing, bugs",
        "frustrated_topics": ["billing"],
        "read_tickets_30d": 0.0,  # "3 of 5" on a month the record says had none
    }
    for col, value in edits.items():
        bad = df.copy().astype({col: object})
        bad.at[0, col] = value
        assert text_evidence_rule(bad)[0] is not None, col
    bad = df.copy()
    bad.at[2, "text_evidence"] = "0 of 0 tickets this month read as frustrated"
    bad.at[1, "text_evidence"] = None  # 2 readable tickets, nothing said
    bad.at[3, "alerts"] = ["negative_sentiment"]  # alerted, no counts
    found = text_evidence_rule(bad)
    assert found[0] is None and all(found[1:]), found
    assert text_evidence_rule(bad.drop(columns="text_evidence")) == [None] * 4  # scored before


FORECAST = {
    "account_id": ["A", "B"],
    "health_score": [74.0, 74.0],
    "days_to_renewal": [120.0, 60.0],
    "forecast_health_30d": [72.0, 72.0],
    "forecast_health_30d_low": [60.0, 60.0],
    "forecast_health_30d_high": [84.0, 84.0],
    "forecast_health_90d": [62.4, 62.4],
    "forecast_health_90d_low": [49.0, 49.0],
    "forecast_health_90d_high": [75.2, 75.2],
}
SAID = "Health 74 now, 62 expected in 90 days (49-75), under 70 before the renewal in 120 days"


def test_the_forecast_alert_rule_and_its_cta_reason():
    df = pd.DataFrame(FORECAST)
    # A: the 90-day forecast falls before its renewal in 120 days; B renews before 90 days
    # and its 30-day forecast stays healthy.
    assert forecast_drop_sentence(df.iloc[0]) == SAID
    assert forecast_drop_sentence(df.iloc[1]) is None
    df["alerts"] = [["health_forecast_drop"], []]
    df["disagreement"] = [SAID, None]
    from scoring.alert_evidence import forecast_alert_rule

    assert forecast_alert_rule(df) == [None, None]
    bad = df.copy()
    bad.at[0, "disagreement"] = "Health 74 now, 50 expected in 90 days"
    bad.at[1, "alerts"] = ["health_forecast_drop"]
    assert all(forecast_alert_rule(bad))
    bad = df.copy()
    bad.at[0, "alerts"] = []
    assert forecast_alert_rule(bad)[0].startswith("forecast to fall")
    # The CTA opened by the alert carries the sentence as its reason, and says it.
    rec = df.assign(p_churn_90d=0.1, arr=1000.0, csm_owner="csm_1", play="value_review")
    rec["as_of"] = pd.Timestamp("2026-10-31")
    found = causes(rec.iloc[:1], ActionsConfig(), [])
    assert found["figures"][0]["reason"] == SAID
    cta = Cta(cause=found["cause"][0], figures=found["figures"][0])
    assert cause_words(cta) == SAID


def test_a_negative_sentiment_cta_says_the_counts_and_the_checker_counts_both_rules():
    df = text_records().assign(p_churn_90d=0.2, arr=5000.0, csm_owner="csm_1", play="x")
    df["as_of"] = pd.Timestamp("2026-10-31")
    found = causes(df, ActionsConfig(), [])
    row = found[found["cause"] == "alert:negative_sentiment"].iloc[0]
    assert row["figures"]["reason"] == "3 of 5 tickets this month read as frustrated: billing, bugs"
    assert cause_words(Cta(cause=row["cause"], figures=row["figures"])) == row["figures"]["reason"]
    # Other alerts keep their words (no reason of their own).
    assert cause_words(Cta(cause="alert:champion_lost", figures={})) == (
        "The champion left in the last 90 days"
    )
    # Through the checker: both rules listed, a bad sentence found under its name.
    bad = df.copy()
    bad.at[0, "text_evidence"] = "2 of 5 tickets this month read as frustrated: billing, bugs"
    rules = contradictions(_full(bad))["rule"].tolist()
    assert "text_evidence" in rules
    counts = check(_full(df))
    assert counts["text_evidence"] == 0 and counts["forecast_alert"] == 0


def _full(df: pd.DataFrame) -> pd.DataFrame:
    """Minimal figures the other rules read, so the whole checker runs on these records."""
    n = len(df)
    return df.assign(
        health_score=80.0,
        health_band="green",
        arr=5000.0,
        p_churn_90d=0.02,
        p_expansion_90d=0.05,
        churn_risk_top_decile=False,
        value_tier="low",
        growth_tier="medium",
        value_growth_segment="Basics",
        segment_strategy="automate",
        customer_type="satisfied_stable",
        renewal_risk=None,
        days_to_renewal=400.0,
        renewal_stage="not_in_cycle",
        plan_tier="professional",
        play="value_review",
        play_reason="Keep the value visible.",
        disagreement=None,
        triggers=[[] for _ in range(n)],
        tenure_days=400.0,
        arr_change_365d=0.0,
        usage_trend_90d=0.0,
    )
