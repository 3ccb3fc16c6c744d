"""Bootstrap intervals for the evaluation metrics, paired across predictors of the same rows.

Rows are resampled with replacement; every predictor is scored on the same resamples, so
differences between two predictors keep their pairing (a paired bootstrap). The metrics are
computed for a block of resamples at once on sorted arrays, with the same definitions as
:mod:`training.metrics` (checked against it in the tests): ROC-AUC with tied scores counted
half, average precision as scikit-learn defines it, log loss, the expected calibration error
over equal-count bins and the lift in the top decile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from training.metrics import ECE_BINS

INTERVAL_METRICS = ("roc_auc", "pr_auc", "log_loss", "ece", "lift_top_decile")
BLOCK_CELLS = 4_000_000  # resamples x rows held at once (~32 MB per float array)


@dataclass(frozen=True)
class Interval:
    """A point estimate with the bounds of its bootstrap interval."""

    value: float
    low: float
    high: float

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low


def _blocks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of ``resamples`` bootstrap samples, a block of samples at a time."""
    rng = np.random.default_rng(seed)
    size = max(1, BLOCK_CELLS // max(n, 1))
    done = 0
    while done < resamples:
        b = min(size, resamples - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


def _tie_bounds(ps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position of each (ascending) row: first and last index of its tie group."""
    b, n = ps.shape
    pos = np.broadcast_to(np.arange(n), (b, n))
    new = np.ones((b, n), dtype=bool)
    new[:, 1:] = ps[:, 1:] != ps[:, :-1]
    first = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
    end = np.ones((b, n), dtype=bool)
    end[:, :-1] = new[:, 1:]
    last = np.minimum.accumulate(np.where(end, pos, n)[:, ::-1], axis=1)[:, ::-1]
    return first, last


def sorted_metrics(ys: np.ndarray, ps: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Metrics of each row of ``ys``/``ps`` (shape resamples x rows, sorted by ``ps`` ascending).

    Ranking metrics are NaN for a resample with one class only.
    """
    b, n = ys.shape
    positives = ys.sum(axis=1)
    both = (positives > 0) & (positives < n)
    out: dict[str, np.ndarray] = {}
    if {"roc_auc", "pr_auc"} & set(names):
        first, last = _tie_bounds(ps)
    with np.errstate(divide="ignore", invalid="ignore"):
        if "roc_auc" in names:
            ranks = (first + last) / 2.0 + 1.0  # tied scores share their average rank
            u = (ranks * ys).sum(axis=1) - positives * (positives + 1) / 2.0
            out["roc_auc"] = np.where(both, u / (positives * (n - positives)), np.nan)
        if "pr_auc" in names:
            # precision at each tie group's threshold: positives and rows scoring >= it
            above = np.cumsum(ys[:, ::-1], axis=1)[:, ::-1]
            precision = np.take_along_axis(above, first, axis=1) / (n - first)
            out["pr_auc"] = np.where(both, (ys * precision).sum(axis=1) / positives, np.nan)
        if "log_loss" in names:
            q = np.clip(ps, 1e-15, 1 - 1e-15)
            out["log_loss"] = -(ys * np.log(q) + (1 - ys) * np.log1p(-q)).mean(axis=1)
        if "ece" in names:
            sizes = np.array([len(c) for c in np.array_split(np.arange(n), ECE_BINS) if len(c)])
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            rate = np.add.reduceat(ys, starts, axis=1) / sizes
            mean_p = np.add.reduceat(ps, starts, axis=1) / sizes
            out["ece"] = (sizes * np.abs(rate - mean_p)).sum(axis=1) / n
        if "lift_top_decile" in names:
            k = max(1, int(round(0.1 * n)))
            base = positives / n
            out["lift_top_decile"] = np.where(
                positives > 0, ys[:, n - k :].mean(axis=1) / base, np.nan
            )
    return out


def bootstrap(
    y: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    names: Sequence[str] = INTERVAL_METRICS,
    resamples: int = 200,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Each metric of each predictor on the same ``resamples`` bootstrap samples of the rows.

    Returns ``{predictor: {metric: array of resamples}}``; index ``i`` of every array is the
    same resample, so differences between predictors are paired.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    order = {
        k: np.argsort(np.asarray(p, dtype=float), kind="stable") for k, p in predictions.items()
    }
    rank = {}
    for k, o in order.items():
        r = np.empty(n, dtype=np.int64)
        r[o] = np.arange(n)
        rank[k] = r
    sorted_y = {k: y[o] for k, o in order.items()}
    sorted_p = {k: np.asarray(predictions[k], dtype=float)[o] for k, o in order.items()}
    parts: dict[str, dict[str, list[np.ndarray]]] = {k: {m: [] for m in names} for k in predictions}
    for idx in _blocks(n, resamples, seed):
        for k in predictions:
            # a resample's rows in this predictor's score order: sort their ranks
            s = np.sort(rank[k][idx], axis=1)
            values = sorted_metrics(sorted_y[k][s], sorted_p[k][s], names)
            for m in names:
                parts[k][m].append(values[m])
    return {k: {m: np.concatenate(v) for m, v in d.items()} for k, d in parts.items()}


def interval(value: float | None, replicates: np.ndarray, confidence: float = 0.95) -> Interval:
    """``value`` with the percentile interval of its bootstrap ``replicates``."""
    alpha = (1 - confidence) / 2
    finite = replicates[np.isfinite(replicates)]
    if value is None or not len(finite):
        nan = float("nan")
        return Interval(nan if value is None else float(value), nan, nan)
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return Interval(float(value), float(low), float(high))
