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


def test_crossed_horizons_meet_at_their_average():
    p = pd.DataFrame(
        {
            "p_churn_30d": [0.2, 0.05],
            "p_churn_90d": [0.1, 0.3],
            "p_expansion_30d": [0.5, 0.1],
            "p_expansion_90d": [0.4, 0.4],
        }
    )
    out = enforce_horizon_order(p)
    assert out["p_churn_30d"].tolist() == pytest.approx([0.15, 0.05])
    assert out["p_churn_90d"].tolist() == pytest.approx([0.15, 0.3])
    assert out["p_expansion_30d"].tolist() == pytest.approx([0.45, 0.1])
    assert out["p_expansion_90d"].tolist() == pytest.approx([0.45, 0.4])
    as_dict = enforce_horizon_order({c: p[c].to_numpy() for c in p})
    assert as_dict["p_churn_90d"].tolist() == pytest.approx([0.15, 0.3])


def test_isotonic_tails_follow_the_scores_up_to_the_validation_range():
    rng = np.random.default_rng(1)
    score = rng.normal(size=20_000)
    truth = 1 / (1 + np.exp(-(1.5 * score - 2)))
    y = (rng.random(score.size) < truth).astype(float)
    cal = Calibrator.fit(score, y, "isotonic", min_block=400)
    top = score >= np.quantile(score, 0.99)
    # A flat top gives the riskiest 1% the top block's rate; the tail follows them up.
    flat = Calibrator.from_dict(cal.to_dict() | {"tail_slope": 0.0})
    assert abs(cal(score[top]).mean() - truth[top].mean()) < 0.03
    assert flat(score[top]).mean() < cal(score[top]).mean() - 0.03
    # Continuous where the tail starts, increasing, and flat past the largest validation score.
    x_last = cal.x[-1]
    assert cal(np.array([x_last]))[0] == pytest.approx(cal.y[-1])
    grid = np.linspace(x_last, score.max() + 3, 50)
    assert np.all(np.diff(cal(grid)) >= 0)
    assert cal(np.array([score.max() + 3]))[0] == pytest.approx(cal(np.array([score.max()]))[0])
    assert 1.0 < cal.tail_slope < 2.0  # the logistic fit's slope (truth 1.5)
    # Bundles written before the tails existed read as flat ones.
    old = {k: v for k, v in cal.to_dict().items() if k not in ("tail_slope", "bounds")}
    assert Calibrator.from_dict(old)(np.array([score.max()]))[0] == pytest.approx(cal.y[-1])
