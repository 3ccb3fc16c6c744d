"""The forecasts in ``radar monitor``: satisfaction outcomes and the health forecasts' accuracy.

Satisfaction heads join the realised-vs-predicted section like the classification heads (their
outcomes from the NPS answers and ticket ratings, as training reads them). The health forecast
is checked against the health score logged for the same account about its horizon later: MAE
beside "the same as today", and the share of scores inside the interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import (
    HEALTH_FORECASTS,
    SATISFACTION_HEADS,
    SATISFACTION_SOURCE,
    horizon_days,
)
from features.outlook import SATISFACTION_LABELS, health_ahead


def satisfaction_heads(predictions: pd.DataFrame) -> list[str]:
    """The satisfaction heads the log has probabilities of."""
    return [h for h in SATISFACTION_HEADS if f"p_{h}" in predictions]


def satisfaction_outcomes(
    ds, predictions: pd.DataFrame, end: pd.Timestamp, heads: list[str]
) -> pd.DataFrame:
    """Per logged prediction, each head's outcome (null while unknown or without the table)."""
    keys = predictions[["account_id", "as_of"]].reset_index(drop=True)
    out = pd.DataFrame(index=keys.index)
    for h in heads:
        table = SATISFACTION_SOURCE[h]
        has = ds.has(table) and not ds[table].empty
        out[h] = SATISFACTION_LABELS[h](ds[table], keys, end) if has else np.nan
    return out


def health_forecast_accuracy(predictions: pd.DataFrame) -> dict:
    """Per health forecast in the log: matured rows, MAE, the naive MAE and the coverage.

    The outcome is the health score logged for the same account about ``h`` days later
    (:func:`features.outlook.health_ahead`); rows without one have not matured.
    """
    out = {}
    if "health_score" not in predictions:
        return out
    for name in HEALTH_FORECASTS:
        if name not in predictions or predictions[name].isna().all():
            continue
        actual = health_ahead(predictions, horizon_days(name))
        now = predictions["health_score"].astype("float64")
        mid = predictions[name].astype("float64")
        ok = actual.notna() & mid.notna() & now.notna()
        if not ok.any():
            out[name] = {"matured": 0}
            continue
        a, m = actual[ok], mid[ok]
        lo, hi = predictions.loc[ok, f"{name}_low"], predictions.loc[ok, f"{name}_high"]
        out[name] = {
            "matured": int(ok.sum()),
            "mae": float((a - m).abs().mean()),
            "mae_same_as_today": float((a - now[ok]).abs().mean()),
            "coverage": float(((a >= lo) & (a <= hi)).mean()),
        }
    return out
