r"""Batch scoring on Spark: a snapshot table in, the records of ``radar score`` out.

Each partition of the snapshot table is scored by :func:`scoring.records.score_snapshots`
itself (through ``mapInArrow``, the Arrow form of ``mapInPandas``: the records hold nested
driver lists), with the model the driver resolved from the registry once, so that every
executor scores with the same version. The output is Parquet partitioned by segment, with
``_scores.json`` (model, as-of dates, the risk cut, the expansion uplift) beside it.

"Top decile" of churn risk is relative to the whole portfolio, which no partition sees.
The first pass scores every row as outside the top decile; the driver then computes the cut
from the first pass's 90-day churn probabilities exactly as ``radar score`` does, and the
second pass scores again only the rows at or above it (at most a tenth) with the true cut.
Every other row's record was already final. The records equal ``radar score``'s.

As a ``spark-submit`` entry point (a snapshot table written by ``radar features``)::

    spark-submit --master yarn --executor-memory 4g scoring/spark_job.py \\
        --features build/features --as-of 2026-10-31 --out build/scores \\
        --model-uri models:/renewal-radar@champion --tracking-uri http://mlflow:5000
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa

from features.config import FeatureConfig
from features.io import atomic_dir
from features.store import DEFAULT_EXPANSION_UPLIFT
from scoring import snapshot
from scoring.plays import ScoringConfig
from scoring.records import NESTED_PREFIXES, SUMMARY_INPUTS, portfolio_summary, score_snapshots
from training.registry import ScoringModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame

log = logging.getLogger(__name__)

KEYS = ["account_id", "as_of"]
PARTITION_BY = "segment"
META_FILE = "_scores.json"  # underscore: Spark and Arrow readers skip it
SUMMARY_FILE = "_summary.json"  # the portfolio summary radar score prints and writes
MISSING = "missing_inputs"  # optional input column: per row, inputs the account has no data in
SAMPLE_ROWS = (50, 2000)  # rows scored on the driver to learn the records' Arrow schema


@dataclass
class SparkScores:
    """What :func:`score_table` wrote."""

    path: str
    rows: int
    risk_cut: float
    rescored: int
    metadata: dict
    summary: dict


def _plain(t: pa.DataType) -> pa.DataType:
    """``t`` with the null types of an all-empty sample made text (Spark needs a type)."""
    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_plain(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain(f.type)) for f in t])
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us")
    return t


def _has_null(t: pa.DataType) -> bool:
    """Whether ``t`` holds a null type anywhere (a column whose sample values were all empty)."""
    if pa.types.is_null(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_null(t.value_type)
    if pa.types.is_struct(t):
        return any(_has_null(f.type) for f in t)
    return False


def _from_siblings(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each null-typed per-head column typed as the same part of another head.

    ``drivers_<head>``, ``reasons_<head>``, ... have one element type for every head; where a
    head's lists were all empty in the sample (a 30-day head with no drivers on 50 rows), its
    type is taken from a head that had some, instead of becoming text that the first real
    driver then breaks (``ArrowTypeError: Expected bytes, got a 'dict' object``).
    """
    prefix = {
        f.name: next((p for p in NESTED_PREFIXES if f.name.startswith(p)), None) for f in schema
    }
    typed: dict[str, pa.DataType] = {}
    for f in schema:
        if prefix[f.name] is not None and not _has_null(f.type):
            typed.setdefault(prefix[f.name], f.type)
    return pa.schema(
        [
            pa.field(f.name, typed[prefix[f.name]])
            if _has_null(f.type) and prefix[f.name] in typed
            else f
            for f in schema
        ]
    )


def _unknown(schema: pa.Schema) -> list[str]:
    """The per-head columns (lists of records) whose type the sample left unknown."""
    return [f.name for f in schema if f.name.startswith(NESTED_PREFIXES) and _has_null(f.type)]


def _records_schema(sample: pd.DataFrame, model: ScoringModel, cfg: ScoringConfig) -> pa.Schema:
    """The Arrow schema of the records, from scoring a sample on the driver (null types left)."""
    got = score_snapshots(sample, model, cfg, risk_cut=np.inf).records
    return _sentences_as_text(
        _from_siblings(pa.Table.from_pandas(got, preserve_index=False).schema)
    )


def _sentences_as_text(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the sentence columns none of the sample's rows had typed as text.

    A coherence note or growth reason missing from every sampled row would otherwise be
    Arrow's null type, which the first row that has one breaks.
    """
    return pa.schema(
        [
            pa.field(f.name, pa.string()) if f.name in SENTENCES and pa.types.is_null(f.type) else f
            for f in schema
        ],
        metadata=schema.metadata,
    )


SENTENCES = ("disagreement", "coherence_note", "growth_reason", "renewal_risk")


def _scorer(model: ScoringModel, cfg: ScoringConfig, uplift: float, cut: float, schema):
    """The function each partition runs: its snapshot batches in, record batches out."""

    def score(batches):
        for batch in batches:
            df = batch.to_pandas()
            if df.empty:
                continue
            missing = df.pop(MISSING).map(list).tolist() if MISSING in df else None
            records = score_snapshots(
                df, model, cfg, missing=missing, uplift=uplift, risk_cut=cut
            ).records
            yield from pa.Table.from_pandas(
                records, schema=schema, preserve_index=False
            ).to_batches()

    return score


def score_table(
    snapshots: SparkFrame,
    model: ScoringModel,
    out: str | Path,
    cfg: ScoringConfig | None = None,
    *,
    uplift: float = DEFAULT_EXPANSION_UPLIFT,
) -> SparkScores:
    """Score every row of a Spark snapshot table and write Parquet partitioned by segment.

    Args:
        snapshots: Rows of ``radar features`` output, optionally with a ``missing_inputs``
            column (list of input names per row).
        model: The model every executor scores with.
        out: Output directory (local: replaced whole or not at all; elsewhere overwritten).
        cfg: Segment, type and play thresholds.
        uplift: Share of ARR an expansion adds.

    """
    from pyspark.sql.pandas.types import from_arrow_schema

    cfg = cfg or ScoringConfig()
    for size in SAMPLE_ROWS:  # a larger sample only where the first left a type unknown
        sample = snapshots.limit(size).toArrow().to_pandas()
        if sample.empty:
            raise ValueError("the snapshot table has no rows to score")
        sample.pop(MISSING) if MISSING in sample else None
        schema = _records_schema(sample, model, cfg)
        if not _unknown(schema) or len(sample) < size:
            break
    # What no sampled row filled (lists empty on every head) is text: Spark needs a type.
    schema = pa.schema([pa.field(f.name, _plain(f.type)) for f in schema])
    spark_schema = from_arrow_schema(schema)
    # Pass 1: nobody in the top decile yet.
    first = snapshots.mapInArrow(_scorer(model, cfg, uplift, np.inf, schema), spark_schema)
    first = first.persist()
    p90 = first.select("p_churn_90d").toArrow().column(0).to_numpy(zero_copy_only=False)
    p90 = p90.astype("float64")
    n = len(p90)
    # The cut exactly as radar score computes it over the rows it scores.
    cut = float(np.nanquantile(p90, 1 - cfg.top_risk_share)) if n else np.nan
    if np.isnan(cut):
        records, rescored = first, 0
    else:
        from pyspark.sql import functions as sf

        p = sf.col("p_churn_90d")
        top = (p >= cut) & (p >= cfg.top_risk_min_p90)
        flagged = first.filter(top).select(*KEYS).persist()
        rescored = flagged.count()
        second = snapshots.join(flagged, KEYS, "left_semi").mapInArrow(
            _scorer(model, cfg, uplift, cut, schema), spark_schema
        )
        records = first.join(flagged, KEYS, "left_anti").unionByName(second)
    meta = {
        "model_uri": model.uri,
        "model": model.label,
        "model_run_id": model.run_id,
        "as_of": sorted({str(pd.Timestamp(t).date()) for t in sample["as_of"]}),
        "rows": n,
        "risk_cut": cut,
        "rescored_with_cut": rescored,
        "expansion_uplift": uplift,
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "partitioned_by": PARTITION_BY,
        "config": cfg.model_dump(),
    }
    path, summary = _write(records, out, meta)
    first.unpersist()
    return SparkScores(path, n, cut, rescored, meta, summary)


def _summary(session, written: str) -> dict:
    """The portfolio summary radar score makes, of the records as written (not rescored).

    Only the few columns the summary reads come to the driver.
    """
    got = session.read.parquet(written)
    cols = [c for c in SUMMARY_INPUTS if c in got.columns]
    return portfolio_summary(got.select(*cols).toArrow().to_pandas())


def _write(records: SparkFrame, out: str | Path, meta: dict) -> tuple[str, dict]:
    """Parquet partitioned by segment, ``_scores.json`` and ``_summary.json``.

    Whole or not at all when local.
    """
    target = str(out)
    session = records.sparkSession
    if urlsplit(target).scheme not in ("", "file"):  # a cluster file system: Spark's commit
        records.write.mode("overwrite").partitionBy(PARTITION_BY).parquet(target)
        summary = _summary(session, target)
        for name, body in ((META_FILE, meta), (SUMMARY_FILE, summary)):
            session.createDataFrame([(json.dumps(body, default=str),)], "meta string").coalesce(
                1
            ).write.mode("overwrite").text(target.rstrip("/") + "/" + name)
        return target, summary
    with atomic_dir(target) as tmp:
        records.write.mode("overwrite").partitionBy(PARTITION_BY).parquet(str(tmp))
        summary = _summary(session, str(tmp))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
    return str(Path(target).resolve()), summary


def score_dataset_on_spark(
    data: str | Path,
    as_of: str | pd.Timestamp | None,
    model: ScoringModel,
    out: str | Path,
    cfg: ScoringConfig | None = None,
    feature_cfg: FeatureConfig | None = None,
    progress=None,
    **data_options: object,
) -> SparkScores:
    """``radar score --engine spark``: the snapshots at ``as_of``, scored on Spark.

    The snapshot comes through :func:`scoring.snapshot.dated_snapshot`, its features computed on
    ``feature_cfg.engine`` (only its engine settings count: the rest is the model's); scoring
    runs on the Spark session of ``feature_cfg.spark_master``; ``data_options`` are the door's
    (``now``, ``future``).

    Raises:
        ContractError: When the data breaks the contract.
        ValueError: When ``as_of`` is outside the period the data covers.

    """
    from features.backends import spark_session  # PySpark: off the import path until used

    engine = feature_cfg or FeatureConfig(engine="spark")
    snap = snapshot.dated_snapshot(
        data, as_of, model, engine=engine, progress=progress, **data_options
    )
    session = spark_session(snap.feature_config.spark_master, snap.feature_config.spark_conf)
    snaps = snap.rows
    table = pa.Table.from_pandas(snaps.assign(**{MISSING: snap.missing}), preserve_index=False)
    table = pa.table({f.name: table.column(f.name).cast(_plain(f.type)) for f in table.schema})
    # About 10,000 rows per partition: enough per task, many tasks for many executors.
    parts = max(1, len(snaps) // 10_000)
    frame = session.createDataFrame(table).repartition(parts)
    return score_table(
        frame,
        model,
        out,
        cfg,
        uplift=snap.uplift_or_default,
    )


def main(argv: list[str] | None = None) -> int:
    """``spark-submit scoring/spark_job.py``: score a ``radar features`` snapshot table."""
    from features.backends import SPARK_DEFAULTS, spark_session
    from features.store import SNAPSHOTS_FILE
    from training.registry import load_model

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--features", required=True, help="radar features output directory (or URL)")
    p.add_argument("--as-of", help="score the snapshots of this date (default: the latest)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--model-uri", default="models:/renewal-radar@champion")
    p.add_argument("--tracking-uri", default=None)
    p.add_argument("--config", default=None, help="YAML with segment, play and driver settings")
    p.add_argument("--uplift", type=float, default=DEFAULT_EXPANSION_UPLIFT)
    p.add_argument("--master", default=None, help="Spark master (spark-submit sets it)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from pyspark.sql import SparkSession

    if args.master:
        session = spark_session(args.master)
    else:  # under spark-submit: its session, with the settings the records depend on
        session = SparkSession.builder.getOrCreate()
        for key in ("spark.sql.session.timeZone", "spark.sql.execution.arrow.pyspark.enabled"):
            session.conf.set(key, SPARK_DEFAULTS[key])
    model = load_model(args.model_uri, args.tracking_uri)
    snaps = session.read.parquet(str(args.features).rstrip("/") + "/" + SNAPSHOTS_FILE)
    from pyspark.sql import functions as sf

    when = args.as_of or snaps.agg(sf.max("as_of")).first()[0]
    day = str(pd.Timestamp(when).date())
    snaps = snaps.filter(sf.to_date("as_of") == sf.to_date(sf.lit(day)))
    got = score_table(
        snaps, model, args.out, ScoringConfig.from_yaml(args.config), uplift=args.uplift
    )
    log.info("scored %d accounts -> %s (%s)", got.rows, got.path, model.label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
