"""The forecasts in `radar monitor`: health forecasts against later logged scores, outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.outlook import health_forecast_accuracy, satisfaction_heads, satisfaction_outcomes
from monitoring.predictions import prediction_rows


class _Tables(dict):
    def has(self, name: str) -> bool:
        return name in self


def test_health_forecasts_are_judged_against_the_score_logged_later():
    log = pd.DataFrame(
        {
            "account_id": ["a", "a", "b", "b"],
            "as_of": pd.to_datetime(["2026-01-31", "2026-02-28"] * 2),
            "health_score": [80.0, 60.0, 50.0, 52.0],
            "forecast_health_30d": [70.0, 55.0, 51.0, 50.0],
            "forecast_health_30d_low": [65.0, 40.0, 40.0, 40.0],
            "forecast_health_30d_high": [75.0, 70.0, 60.0, 60.0],
        }
    )
    out = health_forecast_accuracy(log)
    # matured: the January rows (February's score is logged); a at 60 is outside 65-75
    assert out == {
        "forecast_health_30d": {
            "matured": 2,
            "mae": pytest.approx((10 + 1) / 2),
            "mae_same_as_today": pytest.approx((20 + 2) / 2),
            "coverage": 0.5,
        }
    }
    assert health_forecast_accuracy(log.drop(columns="health_score")) == {}


def test_satisfaction_outcomes_are_absent_without_their_table():
    log = pd.DataFrame(
        {
            "account_id": ["a", "b"],
            "as_of": pd.to_datetime(["2025-01-31"] * 2),
            "p_nps_detractor": [0.4, 0.2],
            "p_low_csat": [0.1, 0.1],
        }
    )
    heads = satisfaction_heads(log)
    assert heads == ["nps_detractor", "low_csat"]
    nps = pd.DataFrame(
        {"account_id": ["a", "b"], "date": pd.to_datetime(["2025-02-03"] * 2), "score": [3, 9]}
    )
    got = satisfaction_outcomes(_Tables(nps_responses=nps), log, pd.Timestamp("2025-12-31"), heads)
    assert got["nps_detractor"].tolist() == [1.0, 0.0]
    assert got["low_csat"].isna().all()  # no support_tickets table: unknown, never 0
    assert np.isnan(got.loc[0, "low_csat"])


def test_the_prediction_log_keeps_the_forecasts_and_leaves_absent_ones_out():
    records = pd.DataFrame(
        {
            "account_id": ["a"],
            "as_of": pd.to_datetime(["2026-01-31"]),
            "p_churn_90d": [0.1],
            "p_nps_detractor": [0.3],
            "health_score": [70.0],
            "forecast_health_90d": [58.0],
            "forecast_health_90d_low": [45.0],
            "forecast_health_90d_high": [69.0],
            "drivers_churn_90d": [[]],
        }
    )
    meta = {"model": "m v1", "scored_at": "2026-02-01T00:00:00+00:00"}
    logged = prediction_rows(records, meta)
    assert {"p_nps_detractor", "health_score", "forecast_health_90d_low"} <= set(logged)
    assert "forecast_health_30d" not in logged and "drivers_churn_90d" not in logged
