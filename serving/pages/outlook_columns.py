"""The portfolio page's forecast columns: health now -> expected, its band, and a note when absent.

Pure functions on the scored portfolio frame (:meth:`serving.pages.views.Views.portfolio`).
The forecast shown is the longest health forecast of the catalogue (the brief's horizon).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import HEALTH_FORECASTS, horizon_days
from features.config import Band
from features.health import band_of
from features.words import health_outlook

# The forecast the portfolio shows, and the columns it adds for the page.
FORECAST = max(HEALTH_FORECASTS, key=horizon_days)
FORECAST_DAYS = horizon_days(FORECAST)
OUTLOOK, FORECAST_BAND = "health_outlook", "forecast_band"


def forecast_band(expected: np.ndarray, bands: tuple[Band, ...]) -> np.ndarray:
    """The health band (the scheme's names) the expected score falls in; None when missing."""
    return band_of(expected, bands)


def with_forecast_columns(df: pd.DataFrame, bands: tuple[Band, ...]) -> pd.DataFrame:
    """``df`` with the forecast's columns; a model without forecasts gets them empty.

    ``FORECAST`` (NaN when absent, so sorting by it never fails), ``health_outlook`` ("70 → 58
    (45-69)" or None) and ``forecast_band`` (green / yellow / red of the expected score).
    """
    out = df.copy()
    for c in (FORECAST, f"{FORECAST}_low", f"{FORECAST}_high"):
        if c not in out:
            out[c] = np.nan
    health = out.get("health_score", pd.Series(np.nan, index=out.index))
    out[OUTLOOK] = [
        health_outlook(*v)
        for v in zip(
            health.tolist(),
            out[FORECAST].tolist(),
            out[f"{FORECAST}_low"].tolist(),
            out[f"{FORECAST}_high"].tolist(),
            strict=True,
        )
    ]
    out[FORECAST_BAND] = forecast_band(out[FORECAST].to_numpy(dtype="float64"), bands)
    return out


def forecast_note(df: pd.DataFrame, has_forecasts: bool) -> str | None:
    """One note when the portfolio shows no forecast at all; None when some account has one."""
    if not has_forecasts:
        return (
            f"No health forecast: the model was trained without one, so the {FORECAST_DAYS}-day "
            "column shows a dash (retrain to add it)."
        )
    if len(df) and df[OUTLOOK].isna().all():
        return f"No account has a {FORECAST_DAYS}-day health forecast (none has a health score)."
    return None
