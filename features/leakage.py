"""Leakage checks: nothing dated after T may change a snapshot taken at T.

The feature tests run :func:`leak_check` as a property over random dates and seeds; data
scientists run it in the exploration notebook on their own data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import HORIZONS, LABELS, RENEWAL_LABEL
from features.config import FeatureConfig
from features.contract import Dataset
from features.pipeline import build_snapshots
from features.snapshots import as_of_dates

# Per table, the date that says when a row became known.
KNOWN_FROM = {
    "usage": "date",
    "weekly_active_users": "week_start",
    "engagement": "date",
    "nps_responses": "date",
    "support_tickets": "created_date",
    "invoices": "due_date",
    "subscriptions": "start_date",
    "contacts": "start_date",
    "milestones": "created_date",
}
# Facts that become known later on rows known earlier: resolutions, departures, payments.
# (A subscription's end_date is the term end as signed: known when the row starts.)
LATER_FACTS = (
    ("support_tickets", "resolved_date"),
    ("contacts", "end_date"),
    ("invoices", "paid_date"),
    ("milestones", "achieved_date"),
)


def rewrite_after(ds: Dataset, at: pd.Timestamp, rng: np.random.Generator) -> Dataset:
    """A copy of ``ds`` where everything dated after ``at`` is altered or deleted at random."""
    t = {k: v.copy() for k, v in ds.tables.items()}
    for name, col in KNOWN_FROM.items():
        if name not in t:
            continue
        df = t[name]
        after = df[col] > at
        if rng.random() < 0.5:
            t[name] = df[~after].reset_index(drop=True)  # delete
        else:  # alter: shift later rows further, scramble their numbers
            df.loc[after, col] = df.loc[after, col] + pd.Timedelta(days=int(rng.integers(1, 40)))
            for c in df.select_dtypes("number").columns:
                df.loc[after, c] = rng.integers(0, 10, int(after.sum()))
    for name, col in LATER_FACTS:
        if name not in t:
            continue
        df = t[name]
        late = df[col] > at
        shifted = df.loc[late, col] + pd.Timedelta(days=17)
        df.loc[late, col] = pd.NaT if rng.random() < 0.5 else shifted
    if "support_tickets" in t:
        tickets = t["support_tickets"]
        tickets.loc[tickets["resolved_date"] > at, "csat"] = 1
    return Dataset(tables=t, report=ds.report, source=ds.source)


def differences(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    """Per column, how many rows differ between ``a`` and ``b`` (NaN equals NaN)."""
    out = {}
    for col in columns:
        x, y = a[col], b[col]
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            x, y = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            same = np.isclose(x, y, rtol=1e-9, atol=1e-9) | (np.isnan(x) & np.isnan(y))
        else:
            same = (x.astype(str) == y.astype(str)).to_numpy() | (x.isna() & y.isna()).to_numpy()
        if (~same).any():
            out[col] = int((~same).sum())
    return out


def _pinned(ds: Dataset, at: pd.Timestamp, cfg: FeatureConfig | None) -> FeatureConfig:
    """``cfg`` with snapshots up to ``at`` and the data's end fixed (rewriting cannot move it)."""
    cfg = cfg or FeatureConfig()
    dates = as_of_dates(ds, cfg)
    return cfg.model_copy(update={"end": at.date(), "data_end": dates[-1].date()})


def leak_check(
    ds: Dataset, at: pd.Timestamp, seed: int = 0, cfg: FeatureConfig | None = None
) -> dict[str, int]:
    """Columns of the snapshots at ``at`` that change when data after ``at`` is rewritten.

    Empty means no leak: every feature, the health score and its alerts at ``at`` are the
    same with the later data deleted or scrambled (labels look ahead by design: left out).
    ``cfg`` is the feature configuration (e.g. with ``activity_churn_days``).
    """
    pinned = _pinned(ds, at, cfg)
    before = build_snapshots(ds, pinned).snapshots.reset_index(drop=True)
    after = build_snapshots(rewrite_after(ds, at, np.random.default_rng(seed)), pinned)
    after_rows = after.snapshots.reset_index(drop=True)
    if len(before) != len(after_rows):
        return {"(rows)": abs(len(before) - len(after_rows))}
    return differences(before, after_rows, [c for c in before.columns if c not in LABELS])


def label_leak_check(
    ds: Dataset, at: pd.Timestamp, seed: int = 0, cfg: FeatureConfig | None = None
) -> dict[str, int]:
    """Churn and expansion labels at ``at`` that change when data after their horizon changes.

    A label at T looks at most ``max(HORIZONS)`` days ahead: rewriting everything dated after
    T + 90 days must leave the 30- and 90-day labels of the snapshots at T as they were (the
    renewal label looks up to 180 days ahead and is left out).
    """
    pinned = _pinned(ds, at, cfg)
    cut = at + pd.Timedelta(days=max(HORIZONS))
    before = build_snapshots(ds, pinned).snapshots
    after = build_snapshots(rewrite_after(ds, cut, np.random.default_rng(seed)), pinned).snapshots
    before = before[before["as_of"] == at].reset_index(drop=True)
    after = after[after["as_of"] == at].reset_index(drop=True)
    if len(before) != len(after):
        return {"(rows)": abs(len(before) - len(after))}
    return differences(before, after, [c for c in LABELS if c != RENEWAL_LABEL])
