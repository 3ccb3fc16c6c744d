from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.metrics import binary_metrics, expected_calibration_error, f1_threshold
from training.model import Calibrator, enforce_horizon_order


def test_ece_by_hand():
    # two equal-count bins: probabilities 0.1 (observed 1/2) and 0.8 (observed 2/2)
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.8, 0.8])
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.5 * 0.4 + 0.5 * 0.2)
    assert expected_calibration_error(np.array([0, 1]), np.array([0.5, 0.5]), bins=1) == 0


def test_metrics_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05])
    m = binary_metrics(y, p, threshold=0.75)
    assert m["base_rate"] == 0.2
    assert m["roc_auc"] == pytest.approx(15 / 16)  # one negative (0.8) above one positive (0.7)
    assert m["lift_top_decile"] == pytest.approx(1.0 / 0.2)  # top 10% = 1 row, a positive
    assert m["recall_top_decile"] == 0.5
    assert (m["precision"], m["recall"], m["f1"]) == (0.5, 0.5, 0.5)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))


def test_single_class_has_no_ranking_metrics():
    m = binary_metrics(np.zeros(5), np.full(5, 0.1), 0.5)
    assert m["roc_auc"] is None and m["pr_auc"] is None and m["recall_top_decile"] is None
    assert m["brier"] == pytest.approx(0.01)


def test_f1_threshold_separates_perfectly_ranked_classes():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7])
    assert f1_threshold(y, p) == 0.6


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrator_is_monotone_bounded_and_round_trips(method):
    rng = np.random.default_rng(0)
    score = rng.normal(size=5000)
    y = (rng.random(5000) < 1 / (1 + np.exp(-(2 * score - 1)))).astype(float)
    cal = Calibrator.fit(score, y, method)
    grid = np.linspace(-6, 6, 200)
    p = cal(grid)
    assert np.all(np.diff(p) >= 0)
    assert p.min() >= 1e-4 and p.max() <= 1 - 1e-4
    assert np.array_equal(Calibrator.from_dict(cal.to_dict())(grid), p)
    # calibrated on its own data: the mean probability matches the observed rate
    assert cal(score).mean() == pytest.approx(y.mean(), abs=0.01)


def test_thirty_day_probability_is_capped_at_ninety_day():
    p = pd.DataFrame(
        {
            "p_churn_30d": [0.2, 0.05],
            "p_churn_90d": [0.1, 0.3],
            "p_expansion_30d": [0.5, 0.1],
            "p_expansion_90d": [0.4, 0.4],
        }
    )
    out = enforce_horizon_order(p)
    assert out["p_churn_30d"].tolist() == [0.1, 0.05]
    assert out["p_expansion_30d"].tolist() == [0.4, 0.1]
    assert out["p_churn_90d"].equals(p["p_churn_90d"])
