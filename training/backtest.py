"""Rolling-origin backtest: train as of each of the last K months, test at that month.

At each origin the heads are fitted and calibrated by :func:`training.train.train` on the data
as it stood then (the usual time split, its validation window ending a gap before the origin,
so every training and validation label was known at the origin) and tested on the origin's
snapshots, beside the same baselines. Each figure gets a bootstrap interval
(:mod:`training.intervals`), so one month's ROC-AUC of 0.88 reads as 0.86-0.90.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from features.io import atomic_file
from training.config import TrainConfig
from training.intervals import INTERVAL_METRICS, bootstrap, interval
from training.train import MODEL, ProgressFn, TrainingData, metric, train

log = logging.getLogger(__name__)

KIND = "backtest"
# An origin's test window: its own as-of date, and with weekly snapshots the weeks of its month.
TEST_DAYS = 28
COUNT_METRICS = ("n", "positives")


@dataclass(frozen=True)
class BacktestResult:
    """Every origin's figures with intervals, and how each origin was split.

    ``table`` has one row per (head, origin, predictor, metric): ``value``, ``low``, ``high``
    (the bootstrap interval), ``n`` and ``positives`` of the origin's test rows.
    """

    table: pd.DataFrame
    origins: list[pd.Timestamp]
    splits: list[dict]
    config: TrainConfig


def origin_dates(times: pd.Series, labelled: pd.Series, k: int) -> list[pd.Timestamp]:
    """The last labelled as-of date of each of the last ``k`` months with labelled snapshots.

    Raises:
        ValueError: When no snapshot has known labels.

    """
    t = pd.to_datetime(times)[labelled.to_numpy(dtype=bool)]
    if t.empty:
        raise ValueError("no snapshot has known labels: nothing to test a backtest origin on")
    dates = pd.Series(np.sort(t.unique()))
    last_per_month = dates.groupby(dates.dt.to_period("M")).max()
    return [pd.Timestamp(d) for d in last_per_month.iloc[-k:]]


def backtest(
    data: TrainingData,
    cfg: TrainConfig,
    origins: int | None = None,
    progress: ProgressFn | None = None,
) -> BacktestResult:
    """Train, calibrate and test at each of the last ``origins`` monthly origins.

    Raises:
        ValueError: Naming the origin when the data before it is too short to split.

    """
    step = progress or (lambda *_: None)
    k = origins or cfg.backtest.origins
    labelled = data.frame[list(data.labels)].notna().all(axis=1)
    dates = origin_dates(data.frame[data.time], labelled, k)
    if len(dates) < k:
        log.warning("only %d monthly origins have labels (asked for %d)", len(dates), k)
    # Drivers are not looked at here: the smallest sample keeps their cost out of the loop.
    per_origin = cfg.model_copy(
        update={"split": cfg.split.model_copy(update={"test_days": TEST_DAYS}), "shap_sample": 10}
    )
    times = pd.to_datetime(data.frame[data.time])
    records, splits = [], []
    for i, origin in enumerate(dates):
        step("backtest origins", i, len(dates))
        known = data.frame[(times <= origin).to_numpy()]
        try:
            result = train(dataclasses.replace(data, frame=known), per_origin)
        except ValueError as exc:
            raise ValueError(f"origin {origin.date()}: {exc}") from exc
        splits.append({"origin": origin.date().isoformat(), **result.split.as_dict()})
        for label, head in result.heads.items():
            records += _origin_records(label, origin, head.test, result.evaluation, cfg, i)
    step("backtest origins", len(dates), len(dates))
    return BacktestResult(pd.DataFrame(records), dates, splits, cfg)


def _origin_records(label, origin, test, evaluation, cfg, i) -> list[dict]:
    """Point figures (as training reports them) with intervals from a paired bootstrap."""
    predictors = [c for c in test.columns if c not in ("y", "segment")]
    ok = test["y"].notna().to_numpy() & test[predictors].notna().all(axis=1).to_numpy()
    y = test["y"][ok].to_numpy(dtype=float)
    reps = bootstrap(
        y,
        {p: test[p][ok].to_numpy(dtype=float) for p in predictors},
        INTERVAL_METRICS,
        cfg.backtest.resamples,
        cfg.seed + i,
    )
    out = []
    for p in predictors:
        counts = {c: metric(evaluation, label, p, c) for c in COUNT_METRICS}
        for m in INTERVAL_METRICS:
            ci = interval(metric(evaluation, label, p, m), reps[p][m], cfg.backtest.confidence)
            out.append(
                {
                    "head": label,
                    "origin": origin,
                    "predictor": p,
                    "metric": m,
                    "value": ci.value,
                    "low": ci.low,
                    "high": ci.high,
                    **counts,
                }
            )
    return out


def wide(result: BacktestResult, predictor: str = MODEL) -> pd.DataFrame:
    """One row per head and origin, one column per metric of ``predictor`` (value only)."""
    t = result.table[result.table["predictor"] == predictor]
    return t.pivot_table(index=["head", "origin"], columns="metric", values="value").reset_index()


def log_backtest(result: BacktestResult, data: TrainingData, uri: str | None = None) -> str:
    """One MLflow run: figures per origin as metric steps, a plot per metric, the table.

    Returns the run id.
    """
    from training import plots
    from training.tracking import (
        KIND_TAG,
        _experiment,
        _flat,
        git_commit,
        run_name,
        tracking_uri,
    )

    cfg = result.config
    resolved = tracking_uri(uri)
    _experiment(cfg.experiment, resolved)
    name = run_name(cfg).replace("train-", f"{KIND}-{len(result.origins)}x-", 1)
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags(
            {
                KIND_TAG: KIND,
                "radar.git_commit": git_commit(),
                "radar.data_fingerprint": data.source.get("fingerprint", ""),
                "radar.source_path": data.source.get("path", ""),
            }
        )
        params = _flat("", cfg.model_dump(mode="json"))
        params |= {
            "backtest.origin_dates": ",".join(d.date().isoformat() for d in result.origins),
            "backtest.test_days": str(TEST_DAYS),
        }
        mlflow.log_params(params)
        # one batch: a metric per (head, predictor, figure), its steps the origins in order
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"{r.head}/{r.predictor}/{r.metric}{suffix}", float(v), now, step)
            for r in result.table.itertuples(index=False)
            for step in (result.origins.index(r.origin),)
            for suffix, v in (("", r.value), ("_low", r.low), ("_high", r.high))
            if np.isfinite(v)
        ]
        MlflowClient().log_batch(run.info.run_id, metrics=metrics)
        mlflow.log_dict(result.splits, "backtest/splits.json")
        mlflow.log_text(
            result.table.to_csv(index=False, float_format="%.5f"), "backtest/metrics.csv"
        )
        for m in INTERVAL_METRICS:
            fig = plots.backtest_figure(m, result.table, cfg.backtest.confidence)
            mlflow.log_figure(fig, f"backtest/{m}.png")
            plots.plt.close(fig)
    return run.info.run_id


def write_table(result: BacktestResult, out: str | Path) -> Path:
    """The backtest table as CSV (written whole, or not at all)."""
    with atomic_file(out) as tmp:
        result.table.to_csv(tmp, index=False, float_format="%.5f")
    return Path(out)
