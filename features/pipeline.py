"""``radar features``: raw tables in, point-in-time snapshot table and manifest out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.activity import activity_accounts
from features.catalogue import (
    FEATURE_VERSION,
    KEY_COLUMNS,
    LABELS,
    TEXT_FEATURES,
    features_for,
)
from features.config import FeatureConfig
from features.context import account_context, uplift_by_date
from features.contract import Dataset
from features.engine import SPEND, compute
from features.health import month_before, rule_based
from features.io import file_sha256
from features.plans import with_tiers_and_terms
from features.raw import find_table_file
from features.schema import TABLES
from features.snapshots import (
    ACTIVITY_LOGS,
    active_snapshots,
    as_of_dates,
    data_end,
    history_start,
    labels,
)
from features.sources import describe, open_data
from features.store import write_store
from features.text import has_text, topic_reader

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]


@dataclass
class FeatureRun:
    """What :func:`build_snapshots` produced: the snapshot rows and the accounts' context."""

    snapshots: pd.DataFrame
    context: pd.DataFrame
    manifest: dict = field(default_factory=dict)


def mask_unknown_history(
    df: pd.DataFrame, start: pd.Timestamp, product_features: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Blank (NaN) activity features whose window starts before the logs do.

    A 90-day count at a date 60 days into the data is not a 90-day count: it is unknown.
    """
    out = df.copy()
    for f in features_for(product_features):
        if f.window is None or f.categorical or not set(f.source) & set(ACTIVITY_LOGS):
            continue
        early = (out["as_of"] - pd.Timedelta(days=f.window - 1)) < start
        out.loc[early, f.name] = np.nan
    return out


def fingerprint(data_dir: Path | str) -> dict[str, str]:
    """SHA-256 of each input table file, by table name.

    None for a URI or a database: the files are not on this machine's disk.
    """
    if "://" in str(data_dir):
        return {}
    data_dir = Path(data_dir)
    out = {}
    for name in TABLES:
        path = find_table_file(data_dir, name)
        if path is not None:
            out[name] = file_sha256(path)
    return out


def unavailable_features(
    ds: Dataset, product_features: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Features that cannot be computed, by the absent optional table they need."""
    out: dict[str, list[str]] = {}
    absent = set(ds.report.missing_optional)  # includes empty stand-ins (contract.STAND_IN)
    for f in features_for(product_features):
        for src in f.source:
            if not ds.has(src) or src in absent:
                out.setdefault(src, []).append(f.name)
    return out


def text_present(ds: Dataset) -> bool:
    """Whether any ticket subject or body, or NPS comment, holds text."""
    return has_text(
        ds["support_tickets"] if ds.has("support_tickets") else None,
        ds["nps_responses"] if ds.has("nps_responses") else None,
    )


def features_without_values(
    table: pd.DataFrame, ds: Dataset, product_features: tuple[str, ...] = ()
) -> list[str]:
    """Features missing in every snapshot though their tables are there (e.g. empty seats).

    The tables exist, so :func:`unavailable_features` does not name them; the columns they
    read are empty, so the model sees them missing everywhere all the same.
    """
    absent = {n for names in unavailable_features(ds, product_features).values() for n in names}
    return [
        f.name
        for f in features_for(product_features)
        if f.name in table and f.name not in absent and table[f.name].isna().all()
    ]


def has_contracts(ds: Dataset) -> bool:
    """Whether the dataset has any subscription rows."""
    return ds.has("subscriptions") and not ds["subscriptions"].empty


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
    with_labels: bool = True,
) -> FeatureRun:
    """Compute the snapshot table (features, labels, health) and context for a dataset.

    The as-of dates are ``dates`` when given, else those of the configuration. The health
    change needs each account's score a calendar month earlier: those dates are computed too
    (most are among the monthly dates already) and left out of the result.
    """
    step = progress or (lambda *_: None)
    if cfg.activity_churn_days is None and not has_contracts(ds):
        raise ValueError(
            "no subscriptions table: churn and expansion labels come from contract rows. "
            "For accounts with activity only, label churn by inactivity: "
            "--activity-churn-days N (or activity_churn_days: N in the features config), "
            "churn being N days without any activity"
        )
    ds = with_tiers_and_terms(ds, cfg.plan_tiers)
    end = data_end(ds, cfg)
    start = history_start(ds, cfg)
    dates = as_of_dates(ds, cfg) if dates is None else pd.DatetimeIndex(dates)
    dates = dates.astype("datetime64[s]")
    needed = dates.union(pd.DatetimeIndex(month_before(dates)).astype("datetime64[s]"))
    snaps = active_snapshots(ds, needed, cfg)
    step("features", 1, 4)
    feats, chosen = compute(ds, snaps, cfg)
    # The choices are part of the configuration: scoring with it builds the same columns.
    spend = (
        cfg.activity_churn_days is not None if cfg.spend_features is None else cfg.spend_features
    )
    text = text_present(ds) if cfg.text_features is None else cfg.text_features
    if not text_present(ds):
        log.info(
            "no ticket or survey text (support_tickets.subject/body, nps_responses.comment): "
            "the text features are absent"
        )
    cfg = cfg.model_copy(
        update={"product_features": chosen, "spend_features": spend, "text_features": text}
    )
    if not spend:
        feats[list(SPEND)] = np.nan
    feats = mask_unknown_history(feats, start, chosen)
    for names in unavailable_features(ds, chosen).values():  # absent table: missing
        feats[names] = np.nan
    step("features", 2, 4)
    rules = rule_based(feats, cfg.health_scheme(), cfg.alerts)
    keep = feats["as_of"].isin(dates).to_numpy()
    feats, rules = feats[keep].reset_index(drop=True), rules[keep].reset_index(drop=True)
    parts = [feats]
    if with_labels:
        parts.append(labels(ds, feats[[*KEY_COLUMNS, "days_to_renewal"]], end, cfg)[list(LABELS)])
    step("features", 3, 4)
    table = pd.concat([*parts, rules], axis=1)
    step("features", 4, 4)
    # A store's build gets its manifest; the scoring path (no labels) needs no fingerprints.
    manifest = manifest_of(ds, cfg, table) if with_labels else {}
    return FeatureRun(table, account_context(ds), manifest)


def manifest_of(ds: Dataset, cfg: FeatureConfig, table: pd.DataFrame) -> dict:
    """The store's manifest for a snapshot table built from ``ds`` with ``cfg``."""
    dates = pd.DatetimeIndex(sorted(table["as_of"].unique()))
    return {
        "feature_version": FEATURE_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.model_dump(mode="json"),
        "health_scheme": cfg.health_scheme().model_dump(mode="json"),
        "input": {
            "directory": str(ds.source),
            "fingerprint": fingerprint(ds.source),
            "rows": {n: ds.rows(n) for n in ds.tables},
        },
        "history_start": str(history_start(ds, cfg).date()),
        "data_end": str(data_end(ds, cfg).date()),
        "as_of_dates": [str(d.date()) for d in dates],
        "rows": int(len(table)),
        "rows_per_as_of": {str(k.date()): int(v) for k, v in table.groupby("as_of").size().items()},
        "features": [f.name for f in features_for(cfg.product_features)],
        "product_features": list(cfg.product_features or ()),
        "labels": list(LABELS),
        "label_rates": {
            c: (None if table[c].notna().sum() == 0 else float(table[c].mean())) for c in LABELS
        },
        "expansion_uplift": uplift_by_date(ds, dates),
        "constant_labels": constant_labels(table),
        "activity_labels": activity_summary(ds, cfg, table),
        "missing_optional_tables": ds.report.missing_optional,
        "not_computed": unavailable_features(ds, cfg.product_features or ()),
        "text_features": (text := bool(cfg.text_features and text_present(ds))),
        # How topics were read: the team's labelled tickets' classifier, or the keywords.
        "text_topics": topic_reader(ds, pd.Timestamp(table["as_of"].max())) if text else None,
        # Without text the text features are said absent once (text_features), not here too.
        "no_values": [
            n
            for n in features_without_values(table, ds, cfg.product_features or ())
            if text or n not in TEXT_FEATURES
        ],
        "warnings": [str(w) for w in ds.report.warnings],
    }


def activity_summary(ds: Dataset, cfg: FeatureConfig, table: pd.DataFrame) -> dict | None:
    """How many accounts and snapshots took their labels from activity (None: not configured)."""
    if cfg.activity_churn_days is None:
        return None
    accounts = activity_accounts(ds, cfg)
    return {
        "churn_after_days": cfg.activity_churn_days,
        "expansion_rise": cfg.activity_expansion_rise,
        "accounts": int(len(accounts)),
        "snapshots": int(table["account_id"].isin(accounts).sum()),
    }


def run_features(
    data_dir: str | Path,
    out_dir: str | Path,
    cfg: FeatureConfig,
    progress: ProgressFn | None = None,
    **data_options: object,
) -> FeatureRun:
    """Validate ``data_dir``, build snapshots and write the snapshot store to ``out_dir``.

    ``data_dir`` is a directory of table files or a PostgreSQL URL (:mod:`features.sources`);
    ``data_options`` go to :func:`features.contract.load_dataset` (``now``, ``future``).

    Nothing is written when validation fails; files appear whole or not at all.
    """
    engine = {"engine": cfg.engine, "spark_master": cfg.spark_master, "spark_conf": cfg.spark_conf}
    # Validated where the engine runs: on Spark also a URI or PostgreSQL over JDBC; with
    # DuckDB a PostgreSQL source is staged.
    with open_data(data_dir, **engine, **data_options) as ds:
        run = build_snapshots(ds, cfg, progress)
    run.manifest["input"]["directory"] = describe(data_dir)
    write_store(out_dir, run.snapshots, run.context, run.manifest)
    log.info("wrote %d snapshots to %s", len(run.snapshots), out_dir)
    return run
