from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.config import MonitorConfig
from monitoring.drift import psi, psi_table
from monitoring.report import verdict


def test_psi_is_near_zero_for_the_same_population_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    ref = pd.Series(rng.normal(size=20000))
    assert psi(ref, pd.Series(rng.normal(size=20000))) < 0.01
    moved = psi(ref, pd.Series(rng.normal(0.5, 1, size=20000)))
    far = psi(ref, pd.Series(rng.normal(1.0, 1, size=20000)))
    # for a normal mean shift d, PSI ~ d^2 (the symmetric KL divergence), less the binning loss
    assert 0.18 < moved < 0.27 and 0.75 < far < 1.05


def test_psi_on_categories_and_missing_values_reported_apart():
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    assert psi(ref, ref.copy()) == pytest.approx(0.0)
    assert psi(ref, pd.Series(["a"] * 90 + ["b"] * 10)) > 0.5
    # early training rows miss a 180-day window: known values are what is compared
    r = pd.DataFrame({"x": [np.nan] * 50 + list(range(50))})
    c = pd.DataFrame({"x": list(range(50)) * 2})
    t = psi_table(r, c, ["x"])
    assert t.loc[0, "psi"] == pytest.approx(0.0, abs=1e-9)
    assert (t.loc[0, "reference_missing"], t.loc[0, "current_missing"]) == (0.5, 0.0)


def _realised(ratio: float, events: float = 100.0, n: int = 2000):
    predicted = events * ratio
    p = predicted / n
    z = (events - predicted) / np.sqrt(n * p * (1 - p))
    return {
        "churn_90d": {
            "recent": {
                "from": "2026-04-30",
                "to": "2026-06-30",
                "n": n,
                "predicted_events": predicted,
                "observed_events": events,
                "ratio": ratio,
                "z": z,
            }
        }
    }


def _drift(**psis):
    features = [
        {"feature": k, "psi": v, "reference_missing": 0.0, "current_missing": 0.0}
        for k, v in psis.items()
    ]
    return {"features": features, "scores": {"churn_90d": 0.02}}


def test_verdict_levels_and_reasons():
    cfg = MonitorConfig()
    assert verdict(_realised(1.02), _drift(seat_utilisation=0.03), cfg) == ("ok", [])
    level, reasons = verdict(_realised(0.6), _drift(seat_utilisation=0.4), cfg)
    assert level == "retrain"
    assert {r["kind"] for r in reasons} == {"calibration", "feature_drift"}
    text = next(r["text"] for r in reasons if r["kind"] == "calibration")
    assert "under-predicts by 40%" in text and "radar train" in text
    # a gap of 20% is a watch; tenure grows by construction and is never a reason
    level, reasons = verdict(_realised(0.8, events=400, n=8000), _drift(tenure_days=2.0), cfg)
    assert level == "watch" and [r["kind"] for r in reasons] == ["calibration"]
    # too few events to judge: no calibration reason, however far the ratio
    assert verdict(_realised(0.5, events=8, n=300), _drift(), cfg) == ("ok", [])
