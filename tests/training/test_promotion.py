from __future__ import annotations

import numpy as np
import pytest

from training.config import PromotionConfig
from training.promotion import paired_comparison


def _world(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = 1 / (1 + np.exp(-rng.normal(-2.2, 1.2, n)))
    y = (rng.random(n) < truth).astype(float)
    return rng, truth, y


def _by_metric(rows):
    return {r["metric"]: r for r in rows}


def test_an_equal_challenger_is_non_inferior_with_a_zero_interval():
    _, truth, y = _world()
    rows = _by_metric(paired_comparison(y, truth, truth.copy(), PromotionConfig()))
    for m in ("roc_auc", "log_loss"):
        assert rows[m]["difference"] == 0 and rows[m]["low"] == 0 and rows[m]["high"] == 0
        assert rows[m]["ok"]


def test_a_clearly_worse_challenger_is_refused_on_both_metrics():
    rng, truth, y = _world()
    noisy = 1 / (1 + np.exp(-(np.log(truth / (1 - truth)) + rng.normal(0, 1.5, len(y)))))
    rows = _by_metric(paired_comparison(y, noisy, truth, PromotionConfig()))
    auc, ll = rows["roc_auc"], rows["log_loss"]
    assert auc["difference"] < -0.03 and auc["high"] < 0 and not auc["ok"]
    assert ll["difference"] > 0 and ll["low"] > 0 and not ll["ok"]
    assert auc["low"] < auc["difference"] < auc["high"]


def test_pairing_makes_a_small_real_difference_visible():
    """A tiny, consistent loss has a narrow paired interval; unpaired ones would straddle 0."""
    rng, truth, y = _world(10000, 1)
    logit = np.log(truth / (1 - truth))
    slightly = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.35, len(y)))))
    rows = _by_metric(
        paired_comparison(y, slightly, truth, PromotionConfig(roc_auc_margin=0.0, resamples=300))
    )
    auc = rows["roc_auc"]
    assert -0.02 < auc["difference"] < 0 and auc["high"] < 0  # significant, though small
    assert auc["high"] - auc["low"] < 0.01
    # the same loss within a margin of 0.02 is non-inferior
    wide = _by_metric(
        paired_comparison(y, slightly, truth, PromotionConfig(roc_auc_margin=0.02, resamples=300))
    )
    assert wide["roc_auc"]["ok"]


def test_log_loss_margin_is_a_share_of_the_champions():
    _, truth, y = _world()
    rows = _by_metric(paired_comparison(y, truth, truth, PromotionConfig(log_loss_margin=0.02)))
    assert rows["log_loss"]["margin"] == pytest.approx(0.02 * rows["log_loss"]["champion"])
