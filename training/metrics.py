"""Evaluation metrics for a binary head: ranking, calibration, and an operating point."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
)

ECE_BINS = 10
METRICS = (
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "lift_top_decile",
    "recall_top_decile",
    "precision",
    "recall",
    "f1",
)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |observed rate - mean probability| over equal-count bins, weighted by bin size.

    Equal-count bins (rather than equal-width) because churn probabilities crowd near zero:
    equal-width bins would put almost every account in the first one and hide miscalibration.
    """
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            total += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return total / len(y)


def top_share_mask(p: np.ndarray, share: float) -> np.ndarray:
    """The ``share`` of rows with the highest probability (ties broken by position)."""
    k = max(1, int(round(share * len(p))))
    mask = np.zeros(len(p), dtype=bool)
    mask[np.argsort(-p, kind="stable")[:k]] = True
    return mask


def f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability threshold that maximises F1 (chosen on the validation window)."""
    if y.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[np.argmax(f1[:-1])])


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | None]:
    """Every metric of :data:`METRICS` plus counts; ranking metrics are None for one class."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    n, positives = len(y), float(y.sum())
    out: dict[str, float | None] = {"n": float(n), "positives": positives}
    if n == 0:
        return out | dict.fromkeys(METRICS)
    base = positives / n
    both = 0 < positives < n
    top = top_share_mask(p, 0.1)
    flagged = p >= threshold
    # At the threshold chosen on validation; 0 (not a warning) where nothing is flagged.
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, flagged.astype(float), average="binary", pos_label=1.0, zero_division=0.0
    )
    out.update(
        base_rate=base,
        roc_auc=float(roc_auc_score(y, p)) if both else None,
        pr_auc=float(average_precision_score(y, p)) if both else None,
        log_loss=float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        brier=float(brier_score_loss(y, p)),
        ece=float(expected_calibration_error(y, p)),
        lift_top_decile=float(y[top].mean() / base) if base > 0 else None,
        recall_top_decile=float(y[top].sum() / positives) if positives else None,
        threshold=float(threshold),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
    )
    return out


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS):
    """Mean probability and observed rate per equal-count bin (for the calibration plot)."""
    order = np.argsort(p, kind="stable")
    chunks = [c for c in np.array_split(order, bins) if len(c)]
    return (
        np.array([p[c].mean() for c in chunks]),
        np.array([y[c].mean() for c in chunks]),
    )


def decile_lift(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Observed rate in each probability decile (highest first) divided by the base rate."""
    order = np.argsort(-p, kind="stable")
    base = y.mean() if y.mean() > 0 else 1.0
    return np.array([y[c].mean() / base for c in np.array_split(order, 10)])
