"""Small portfolios: a table too small for a held-out split is cross-validated, with intervals."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.test_own_data import churn_table
from training.config import TrainConfig
from training.small import fit, fold_metrics, interval
from training.train import from_table

CFG = TrainConfig.from_yaml(**{"lightgbm.max_trees": 30, "shap_sample": 50, "cv_repeats": 2})


def _auc(result) -> tuple[float, float, float]:
    r = next(r for r in result.evaluation if r["predictor"] == "model")
    return r["roc_auc"], r["roc_auc_low"], r["roc_auc_high"]


def test_500_and_3000_customer_tables_train_with_intervals_and_noise_is_refused(tmp_path):
    widths = {}
    for n in (500, 3000):
        path = tmp_path / f"c{n}.csv"
        churn_table(n, seed=5).to_csv(path, index=False)
        data = from_table(path, "Churn")
        result = fit(data, CFG)
        auc, low, high = _auc(result)
        assert 0.5 < low < auc < high < 1, (n, auc, low, high)
        widths[n] = high - low
        assert result.split.as_dict()["kind"] == "cross_validation"
        assert result.bundle.metadata["cross_validation"]["Churn"]["model"]["roc_auc"]["low"] == low
        assert any("5-fold cross-validation repeated 2 times" in w for w in result.warnings)
        # the served head is fitted on every row and tells customers apart
        assert result.bundle.predict(data.frame)["p_Churn"].std() > 0.05
        oof = result.heads["Churn"].test  # each row held out once (the first repeat)
        assert len(oof) == n and oof["model"].notna().all()
    assert widths[3000] < widths[500] / 1.5  # more customers, a narrower interval

    noise = churn_table(500, seed=6)
    noise["Churn"] = np.where(np.random.default_rng(0).random(500) < 0.3, "Yes", "No")
    noise.to_csv(tmp_path / "noise.csv", index=False)
    with pytest.raises(ValueError, match=r"cross-validated ROC-AUC 0\.\d+ \(95% interval 0\.\d+-0"):
        fit(from_table(tmp_path / "noise.csv", "Churn"), CFG)


def test_fold_figures_and_the_corrected_interval():
    y = np.array([0, 0, 1, 1, 0, 1], dtype=float)
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    got = fold_metrics(y, p)
    assert got["roc_auc"] == pytest.approx(8 / 9)
    assert got["brier"] == pytest.approx(np.mean((p - y) ** 2))
    values = np.array([0.70, 0.74, 0.72, 0.76, 0.68])
    mean, low, high = interval(values, test_share=0.2)
    # (1/J + n_test/n_train) * s^2, J = 5, 0.2 / 0.8; t with 4 degrees of freedom
    se = np.sqrt((1 / 5 + 0.25) * values.var(ddof=1))
    assert mean == pytest.approx(0.72) and high - mean == pytest.approx(2.776445 * se, rel=1e-5)
    assert low == pytest.approx(2 * mean - high)


def test_grouped_folds_keep_each_entity_in_one_held_out_fold_per_repeat():
    from training.small import _fold_splits

    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(150), 2)  # two rows per customer
    y = (rng.random(300) < 0.3).astype(float)
    folds = _fold_splits(y, groups, seed=0, folds=5, repeats=2)
    assert len(folds) == 10
    for r in range(2):
        held = np.concatenate([te for _, te in folds[5 * r : 5 * r + 5]])
        assert sorted(held) == list(range(300))  # every row held out once per repeat
        for tr, te in folds[5 * r : 5 * r + 5]:
            assert not set(groups[tr]) & set(groups[te])
    assert not np.array_equal(folds[0][1], folds[5][1])  # a new shuffle per repeat


def test_a_small_table_with_dates_is_cross_validated_forward_in_time(tmp_path):
    import pandas as pd

    from training.small import time_folds

    table = churn_table(1800, seed=8)  # 150 customers at each of 12 month ends
    months = pd.date_range("2025-01-31", periods=12, freq="ME")
    table["month"] = months.strftime("%Y-%m-%d").repeat(150)
    table.to_csv(tmp_path / "t.csv", index=False)
    data = from_table(tmp_path / "t.csv", "Churn", "month", horizon=30)
    result = fit(data, CFG)
    split = result.split.as_dict()
    assert (split["kind"], split["time"], split["gap_days"], split["repeats"]) == (
        "cross_validation", "month", 30, 1
    )  # fmt: skip
    auc, low, high = _auc(result)
    assert 0.5 < low < auc < high < 1
    times = data.frame["month"].to_numpy()
    y = data.frame["Churn"].to_numpy(dtype=float)
    folds = time_folds(times, y, 5, 30)
    assert len(folds) == 5
    for tr, te in folds:  # each fold fits on dates a horizon or more before the held-out ones
        assert times[tr].max() <= times[te].min() - np.timedelta64(30, "D")
    held = np.concatenate([te for _, te in folds])
    assert len(held) == len(set(held)) and times[held].min() > times.min()
