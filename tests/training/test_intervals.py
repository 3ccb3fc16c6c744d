from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from training.intervals import INTERVAL_METRICS, bootstrap, interval, sorted_metrics
from training.metrics import binary_metrics


def _data(n: int, seed: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 8, size=n)
    if ties:
        p = np.round(p, 2)
    y = (rng.random(n) < p).astype(float)
    return y, p


@pytest.mark.parametrize("ties", [False, True])
def test_block_metrics_equal_the_evaluation_metrics(ties):
    """The same definitions as training.metrics (sklearn), ties in the scores included."""
    y, p = _data(3000, 1, ties)
    order = np.argsort(p, kind="stable")
    got = sorted_metrics(y[order][None], p[order][None], INTERVAL_METRICS)
    want = binary_metrics(y, p, 0.5)
    for name in ("roc_auc", "pr_auc", "log_loss", "ece"):
        assert got[name][0] == pytest.approx(want[name], abs=1e-12), name
    if not ties:  # with ties at the decile's edge, which tied rows are "top" is arbitrary
        assert got["lift_top_decile"][0] == pytest.approx(want["lift_top_decile"], abs=1e-12)


def test_resamples_are_shared_across_predictors_and_seeded():
    y, p = _data(2000, 2)
    a = bootstrap(y, {"one": p, "two": p.copy()}, resamples=120, seed=5)
    # identical predictors on the same resamples: identical figures, replicate by replicate
    for m in INTERVAL_METRICS:
        np.testing.assert_array_equal(a["one"][m], a["two"][m])
        assert len(a["one"][m]) == 120
    b = bootstrap(y, {"one": p}, resamples=120, seed=5)
    np.testing.assert_array_equal(a["one"]["roc_auc"], b["one"]["roc_auc"])
    c = bootstrap(y, {"one": p}, resamples=120, seed=6)
    assert not np.array_equal(a["one"]["roc_auc"], c["one"]["roc_auc"])


def test_auc_interval_matches_delong_standard_error():
    """The bootstrap spread of ROC-AUC agrees with DeLong's standard error on the same rows."""
    rng = np.random.default_rng(3)
    n_pos, n_neg = 300, 2700
    pos, neg = rng.normal(1.5, 1, n_pos), rng.normal(0, 1, n_neg)
    y = np.concatenate([np.ones(n_pos), np.zeros(n_neg)])
    p = 1 / (1 + np.exp(-np.concatenate([pos, neg])))
    reps = bootstrap(y, {"m": p}, names=("roc_auc",), resamples=1000, seed=0)["m"]["roc_auc"]
    auc = binary_metrics(y, p, 0.5)["roc_auc"]
    v10 = (pos[:, None] > neg[None, :]).mean(axis=1)  # no ties in continuous scores
    v01 = (pos[:, None] > neg[None, :]).mean(axis=0)
    se = np.sqrt(v10.var(ddof=1) / n_pos + v01.var(ddof=1) / n_neg)
    ci = interval(auc, reps)
    assert ci.low < auc < ci.high
    assert reps.std() == pytest.approx(se, rel=0.1)
    assert ci.width == pytest.approx(2 * norm.ppf(0.975) * se, rel=0.15)


def test_interval_of_nothing_is_empty():
    ci = interval(None, np.array([np.nan, np.nan]))
    assert np.isnan(ci.value) and np.isnan(ci.low) and np.isnan(ci.high)
