"""The forecasts: labels, the conformal interval, the trained forecasts and their records."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from features.catalogue import FORECAST_DROP_ALERT, HEALTH_FORECASTS, SATISFACTION_HEADS
from features.outlook import detractor_label, health_ahead, low_csat_label
from scoring.outlook import (
    falls_before_renewal,
    outlook_sentence,
    shown_forecasts,
    with_forecast_alert,
)
from training.forecast import NAIVE, conformal_half_width, satisfaction_labels
from training.forecasts import with_forecasts
from training.model import ModelBundle

END = pd.Timestamp("2025-12-31")


def _keys(*rows):
    return pd.DataFrame(
        {"account_id": [a for a, _ in rows], "as_of": pd.to_datetime([t for _, t in rows])}
    )


def test_health_ahead_is_the_same_accounts_snapshot_about_h_days_on():
    frame = pd.DataFrame(
        {
            "account_id": ["a", "a", "a", "a", "b"],
            "as_of": pd.to_datetime(
                ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-01-31"]
            ),
            "health_score": [70.0, 60.0, np.nan, 40.0, 90.0],
        }
    )
    in30, in90 = health_ahead(frame, 30), health_ahead(frame, 90)
    # 31 Jan + 30 days = 2 Mar: the 28 Feb snapshot; a missing score stays missing
    assert in30.iloc[0] == 60.0 and np.isnan(in30.iloc[1]) and in30.iloc[2] == 40.0
    assert np.isnan(in30.iloc[3]) and np.isnan(in30.iloc[4])  # the last one; b has no later
    assert in90.iloc[0] == 40.0 and in90.isna().iloc[1:].all()


def test_satisfaction_labels_read_the_next_answer_in_the_window():
    nps = pd.DataFrame(
        {
            "account_id": ["a", "a", "a", "b"],
            "date": pd.to_datetime(["2025-02-10", "2025-02-10", "2025-06-01", "2025-11-01"]),
            "score": [9, 5, 10, 8],
        }
    )
    keys = _keys(("a", "2025-01-31"), ("a", "2025-02-28"), ("b", "2025-01-31"), ("b", "2025-10-31"))
    d = detractor_label(nps, keys, END)
    # a on 31 Jan: two answers the same day, the worse counts; 28 Feb: the next one is past
    # 90 days (1 Jun): unknown; b in January: nothing within 90 days; b in October: the
    # window reaches past the end of the data: unknown, never 0
    assert d.iloc[0] == 1.0
    assert d.iloc[1:].isna().all()
    tickets = pd.DataFrame(
        {
            "account_id": ["a", "a", "b"],
            "resolved_date": pd.to_datetime(["2025-02-05", "2025-02-20", "2025-03-01"]),
            "csat": [np.nan, 2.0, 4.0],  # the unrated one is skipped
        }
    )
    c = low_csat_label(tickets, keys, END)
    assert c.iloc[0] == 1.0 and c.iloc[2] == 0.0 and np.isnan(c.iloc[1])
    assert low_csat_label(tickets.drop(columns="csat"), keys, END).isna().all()


def test_conformal_half_width_has_the_finite_sample_correction():
    r = np.arange(1.0, 11.0)  # |errors| 1..10: ceil(11 * 0.9) = 10th smallest
    assert conformal_half_width(r, 0.9) == 10.0
    assert conformal_half_width(-r, 0.5) == 6.0  # ceil(5.5) = 6th
    assert np.isnan(conformal_half_width(np.array([]), 0.9))


def test_a_healthy_account_forecast_to_fall_before_renewal_is_flagged_with_numbers():
    health = np.array([80.0, 80.0, 60.0, 80.0, np.nan])
    fc = {
        "forecast_health_30d": np.array([75.0, 65.0, 50.0, 72.0, np.nan]),
        "forecast_health_90d": np.array([62.0, 70.0, 40.0, 60.0, np.nan]),
    }
    for name in list(fc):
        fc[f"{name}_low"], fc[f"{name}_high"] = fc[name] - 12, fc[name] + 10
    days = np.array([120.0, 45.0, 120.0, 20.0, 200.0])
    flag, words = falls_before_renewal(health, fc, days)
    assert flag.tolist() == [True, True, False, False, False]
    assert words[0] == (
        "Health 80 now, 62 expected in 90 days (50-72), under 70 before the renewal in 120 days"
    )
    assert words[1].startswith("Health 80 now, 65 expected in 30 days (53-75)")
    assert words[2] is None and words[4] is None
    # Just under the healthy line: never written as the line itself ("70 expected").
    just = {"forecast_health_90d": np.array([69.6])}
    just |= {"forecast_health_90d_low": np.array([42.0]), "forecast_health_90d_high": [97.0]}
    _, said = falls_before_renewal(np.array([72.0]), just, np.array([228.0]))
    assert said[0].startswith("Health 72 now, 69.6 expected in 90 days (42-97)")


def test_without_nps_the_detractor_head_is_skipped_with_one_note(trained, long_data, tmp_path):
    data, _ = trained
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("accounts", "contacts", "support_tickets"):
        shutil.copy(long_data / f"{name}.parquet", raw)
    source = data.source | {"raw_data": str(raw)}
    # the same rows, fewer raw tables
    labels, notes = satisfaction_labels(dataclasses.replace(data, source=source))
    assert list(labels) == ["low_csat"]
    assert notes == ["nps_detractor: skipped, the data has no nps_responses table"]
    assert set(labels["low_csat"].dropna().unique()) == {0.0, 1.0}
    assert labels["low_csat"].isna().any()  # unknown stays unknown


@pytest.mark.slow
def test_trained_forecasts_cover_score_and_travel_with_the_bundle(trained, tmp_path):
    data, result = trained
    fr = result.forecasts
    assert fr is not None and set(fr.forecasts.health) == set(HEALTH_FORECASTS)
    assert set(fr.forecasts.satisfaction) == set(SATISFACTION_HEADS)
    by = {(r.get("forecast") or r["head"], r["predictor"]): r for r in fr.evaluation}
    for name in HEALTH_FORECASTS:
        model, naive = by[(name, "model")], by[(name, NAIVE)]
        assert 0.8 <= model["coverage"] <= 0.97, model
        assert model["mae"] < naive["mae"]
    for name in SATISFACTION_HEADS:
        assert by[(name, "model")]["roc_auc"] > 0.6
        assert by[(name, "model")]["ece"] < 0.08

    d = result.bundle.save(tmp_path / "bundle")
    loaded = with_forecasts(ModelBundle.load(d), d)
    rows = data.frame[data.frame["as_of"] == data.frame["as_of"].max()].head(50).copy()
    rows.loc[rows.index[0], "health_score"] = np.nan
    got, want = loaded.forecasts.predict(rows), result.bundle.forecasts.predict(rows)
    pd.testing.assert_frame_equal(got, want)
    assert got.iloc[0][list(HEALTH_FORECASTS)].isna().all()  # no score today, no forecast
    ok = got.iloc[1:]
    for name in HEALTH_FORECASTS:
        assert (ok[f"{name}_low"] <= ok[name]).all() and (ok[name] <= ok[f"{name}_high"]).all()
    assert ok[[f"p_{h}" for h in SATISFACTION_HEADS]].stack().between(0, 1).all()


def test_the_outlook_sentence_quotes_the_record_and_leaves_absent_out():
    record = {
        "health_score": 70.2,
        "forecast_health_30d": 66.0,
        "forecast_health_30d_low": 50.0,
        "forecast_health_30d_high": 80.0,
        "forecast_health_90d": 58.4,
        "forecast_health_90d_low": 45.0,
        "forecast_health_90d_high": 69.0,
        "p_nps_detractor": 0.384,
        "p_low_csat": float("nan"),  # no ticket ratings: absent, never 0%
    }
    assert outlook_sentence(record) == (
        "Health 70 now, 58 expected in 90 days (45-69); chance of next NPS answer a "
        "detractor (0-6): 38%"
    )
    assert shown_forecasts(record)["satisfaction"] == {"nps_detractor": "p_nps_detractor"}
    assert outlook_sentence({"health_score": 70.0}) is None
    alerts = with_forecast_alert([["usage_decline"], []], np.array([True, False]))
    assert alerts == [["usage_decline", FORECAST_DROP_ALERT], []]
