"""The portfolio's forecast columns (pure parts): the cell, the band, the note when absent."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import FeatureConfig
from serving.pages.outlook_columns import forecast_note, with_forecast_columns
from serving.pages.ui import Query, choices, select

BANDS = FeatureConfig().health_scheme().bands


def plain(values: pd.Series) -> list:
    """Missing as None (pandas reads a missing string as NaN)."""
    return [None if pd.isna(v) else v for v in values]


def test_health_now_to_expected_with_its_interval_band_and_sort():
    df = pd.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "health_score": [70.4, np.nan, 88.0],
            "forecast_health_90d": [57.6, np.nan, 81.0],
            "forecast_health_90d_low": [45.0, np.nan, 70.2],
            "forecast_health_90d_high": [69.0, np.nan, 92.0],
            "needs_action": [True, True, True],
        }
    )
    out = with_forecast_columns(df, BANDS)
    assert plain(out["health_outlook"]) == ["70 \u2192 58 (45-69)", None, "88 \u2192 81 (70-92)"]
    assert plain(out["forecast_band"]) == ["yellow", None, "green"]
    assert forecast_note(out, True) is None
    rows = select(out, Query.parse({"view": "all", "sort": "forecast_health_90d"}))
    assert rows["account_id"].tolist() == ["A", "C", "B"]  # lowest expected first, missing last
    assert choices(out)["outlook"] == ["green", "yellow"]
    picked = select(out, Query.parse({"view": "all", "outlook": "yellow"}))
    assert picked["account_id"].tolist() == ["A"]


def test_a_model_without_forecasts_shows_dashes_and_says_so_once():
    df = pd.DataFrame({"account_id": ["A", "B"], "health_score": [70.0, 50.0]})
    df["needs_action"] = True
    out = with_forecast_columns(df, BANDS)
    assert out["health_outlook"].isna().all() and out["forecast_band"].isna().all()
    note = forecast_note(out, False)
    assert note is not None and "trained without one" in note
    rows = select(out, Query.parse({"view": "all", "sort": "forecast_health_90d"}))
    assert rows["account_id"].tolist() == ["A", "B"]  # sorting by it never fails
    assert choices(out)["outlook"] == []
