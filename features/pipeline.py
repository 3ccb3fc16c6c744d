"""``radar features``: raw tables in, point-in-time snapshot table and manifest out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalogue import FEATURE_VERSION, FEATURES, KEY_COLUMNS, LABELS
from features.config import FeatureConfig
from features.contract import Dataset, find_table_file, load_dataset
from features.engine import compute_features
from features.health import rule_based
from features.io import atomic_file, file_sha256
from features.plans import with_tiers_and_terms
from features.schema import TABLES
from features.snapshots import (
    ACTIVITY_LOGS,
    active_snapshots,
    as_of_dates,
    data_end,
    history_start,
    labels,
)

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]
SNAPSHOTS_FILE = "snapshots.parquet"
MANIFEST_FILE = "manifest.json"


@dataclass
class FeatureRun:
    """What :func:`build_snapshots` produced."""

    snapshots: pd.DataFrame
    manifest: dict


def mask_unknown_history(df: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """Blank (NaN) activity features whose window starts before the logs do.

    A 90-day count at a date 60 days into the data is not a 90-day count: it is unknown.
    """
    out = df.copy()
    for f in FEATURES:
        if f.window is None or f.categorical or not set(f.source) & set(ACTIVITY_LOGS):
            continue
        early = (out["as_of"] - pd.Timedelta(days=f.window - 1)) < start
        out.loc[early, f.name] = np.nan
    return out


def fingerprint(data_dir: Path) -> dict[str, str]:
    """SHA-256 of each input table file, by table name."""
    out = {}
    for name in TABLES:
        path = find_table_file(data_dir, name)
        if path is not None:
            out[name] = file_sha256(path)
    return out


def unavailable_features(ds: Dataset) -> dict[str, list[str]]:
    """Features that cannot be computed, by the absent optional table they need."""
    out: dict[str, list[str]] = {}
    absent = set(ds.report.missing_optional)  # includes empty stand-ins (contract.STAND_IN)
    for f in FEATURES:
        for src in f.source:
            if not ds.has(src) or src in absent:
                out.setdefault(src, []).append(f.name)
    return out


def constant_labels(table: pd.DataFrame) -> dict[str, str]:
    """Labels no model can learn from these snapshots, with the reason, by label."""
    out = {}
    for c in LABELS:
        known = table[c].dropna()
        if known.empty:
            out[c] = "no known value (every label window reaches past the end of the data)"
        elif known.nunique() == 1:
            out[c] = f"every known value is {int(known.iloc[0])}"
    return out


def build_snapshots(
    ds: Dataset,
    cfg: FeatureConfig,
    progress: ProgressFn | None = None,
    dates: pd.DatetimeIndex | None = None,
) -> FeatureRun:
    """Compute the snapshot table (features, labels, health) for a loaded dataset.

    The as-of dates are ``dates`` when given (scoring), else those of the configuration.
    """
    step = progress or (lambda *_: None)
    ds = with_tiers_and_terms(ds, cfg.plan_tiers)
    end = data_end(ds, cfg)
    start = history_start(ds, cfg)
    dates = as_of_dates(ds, cfg) if dates is None else dates.astype("datetime64[s]")
    snaps = active_snapshots(ds, dates)
    step("features", 1, 4)
    feats = mask_unknown_history(compute_features(ds, snaps, cfg), start)
    for names in unavailable_features(ds).values():  # an absent table's features: missing
        feats[names] = np.nan
    step("features", 2, 4)
    lab = labels(ds, feats[list(KEY_COLUMNS)], end)
    scheme = cfg.health_scheme()
    rules = rule_based(feats, scheme, cfg.alerts)
    step("features", 3, 4)
    table = pd.concat([feats, lab[list(LABELS)], rules], axis=1)
    manifest = {
        "feature_version": FEATURE_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.model_dump(mode="json"),
        "health_scheme": scheme.model_dump(mode="json"),
        "input": {
            "directory": str(ds.source),
            "fingerprint": fingerprint(ds.source),
            "rows": {n: ds.rows(n) for n in ds.tables},
        },
        "history_start": str(start.date()),
        "data_end": str(end.date()),
        "as_of_dates": [str(d.date()) for d in dates],
        "rows": int(len(table)),
        "rows_per_as_of": {str(k.date()): int(v) for k, v in table.groupby("as_of").size().items()},
        "features": [f.name for f in FEATURES],
        "labels": list(LABELS),
        "label_rates": {
            c: (None if table[c].notna().sum() == 0 else float(table[c].mean())) for c in LABELS
        },
        "constant_labels": constant_labels(table),
        "missing_optional_tables": ds.report.missing_optional,
        "not_computed": unavailable_features(ds),
        "warnings": [str(w) for w in ds.report.warnings],
    }
    step("features", 4, 4)
    return FeatureRun(table, manifest)


def run_features(
    data_dir: str | Path,
    out_dir: str | Path,
    cfg: FeatureConfig,
    progress: ProgressFn | None = None,
) -> FeatureRun:
    """Validate ``data_dir``, build snapshots and write them with their manifest to ``out_dir``.

    Nothing is written when validation fails; files appear whole or not at all.
    """
    ds = load_dataset(data_dir)
    run = build_snapshots(ds, cfg, progress)
    out = Path(out_dir)
    with atomic_file(out / SNAPSHOTS_FILE) as tmp:
        run.snapshots.to_parquet(tmp, index=False)
    with atomic_file(out / MANIFEST_FILE) as tmp:
        tmp.write_text(json.dumps(run.manifest, indent=2))
    log.info("wrote %d snapshots to %s", len(run.snapshots), out)
    return run
