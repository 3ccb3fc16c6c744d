"""Population stability index: how far a feature's distribution moved from a reference."""

from __future__ import annotations

import numpy as np
import pandas as pd

FLOOR = 1e-4  # share given to an empty bin, so the logarithm stays finite


def psi_from_shares(reference: np.ndarray, current: np.ndarray) -> float:
    """sum((c - r) * ln(c / r)) over bins, shares floored at :data:`FLOOR`."""
    r = np.maximum(np.asarray(reference, dtype=float), FLOOR)
    c = np.maximum(np.asarray(current, dtype=float), FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference``.

    Numbers: bins at the reference's quantiles (ties merged), the outer bins open-ended.
    Text and categories: one bin per value. Over known values only: a window-based feature is
    missing where its window starts before the data does (early training snapshots), which
    would read as drift; a rise in missing values is reported apart (:func:`psi_table`).
    """
    ref_missing, cur_missing = reference.isna(), current.isna()
    numeric = pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference)
    if numeric:
        r = reference[~ref_missing].to_numpy(dtype=float)
        c = current[~cur_missing].to_numpy(dtype=float)
        if len(r) == 0:
            edges = np.array([])
        else:
            edges = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)[1:-1]))
        r_counts = np.bincount(np.searchsorted(edges, r, side="right"), minlength=len(edges) + 1)
        c_counts = np.bincount(np.searchsorted(edges, c, side="right"), minlength=len(edges) + 1)
    else:
        levels = pd.Index(pd.concat([reference, current]).dropna().astype(str).unique())
        r_counts = np.bincount(
            levels.get_indexer(reference[~ref_missing].astype(str)), minlength=len(levels)
        )
        c_counts = np.bincount(
            levels.get_indexer(current[~cur_missing].astype(str)), minlength=len(levels)
        )
    if r_counts.sum() == 0 or c_counts.sum() == 0:
        return float("nan")
    return psi_from_shares(r_counts / r_counts.sum(), c_counts / c_counts.sum())


def psi_table(reference: pd.DataFrame, current: pd.DataFrame, columns, bins: int = 10):
    """PSI per column, largest first, with reference and current means and missing shares."""
    rows = []
    for col in columns:
        if col not in reference or col not in current:
            continue
        r, c = reference[col], current[col]
        num = pd.api.types.is_numeric_dtype(r) and not pd.api.types.is_bool_dtype(r)
        rows.append(
            {
                "feature": col,
                "psi": psi(r, c, bins),
                "reference_mean": float(r.mean()) if num else None,
                "current_mean": float(c.mean()) if num else None,
                "reference_missing": float(r.isna().mean()),
                "current_missing": float(c.isna().mean()),
            }
        )
    return pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)
