"""Rolling-origin backtest: train as of each of the last K months, test at that month.

At each origin the heads are fitted and calibrated by :func:`training.train.train` on the data
as it stood then (the usual time split, its validation window ending a gap before the origin,
so every training and validation label was known at the origin) and tested on the origin's
snapshots, beside the same baselines. Each figure gets a bootstrap interval
(:mod:`training.intervals`), so one month's ROC-AUC of 0.88 reads as 0.86-0.90.

With ``backtest.refit`` the backtest also answers "should we serve refitted heads?": at each
origin it rebuilds what ``radar train`` would have served then, from the labels known at the
origin only (a label of an as-of date T with horizon h is known from T + h on), once as the
honest fit and once refitted (``refit: true``), and tests both on the origin's snapshots with a
paired bootstrap of the differences (:func:`training.promotion.paired_comparison`).
"""

from __future__ import annotations

import copy
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

from features.catalogue import horizon_days
from features.io import atomic_file
from training.config import TrainConfig
from training.intervals import INTERVAL_METRICS, bootstrap, interval
from training.linear import pick
from training.promotion import paired_comparison
from training.run_notes import DESCRIPTION_TAG, job_run
from training.train import CANDIDATE, MODEL, ProgressFn, TrainingData, metric, train

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
    # With ``backtest.refit``: one row per (head, origin, metric) of ``COMPARED``, what was
    # served then refitted vs honest on the origin's rows (see :func:`served_then`).
    refit: pd.DataFrame | None = None
    # Heads the refit comparison left out at an origin, and why (too few labels known then).
    refit_notes: tuple[str, ...] = ()
    # Heads not tested at an origin (the training refused them then), and why: head, origin,
    # reason (:func:`missing_heads`).
    missing: tuple[dict, ...] = ()
    started: float | None = None  # when the job started (seconds since the epoch): the run's


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
    started = time.time()
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
    # A backtest looks at the chosen model only (no linear candidate to record when fixed),
    # unless it is to compare the candidates at each origin.
    compare = cfg.backtest.candidates
    per_origin = per_origin.model_copy(
        update={"record_candidates": compare, "evaluate_candidates": compare, "refit": False}
    )
    times = pd.to_datetime(data.frame[data.time])
    records, splits, refits, notes, missing = [], [], [], [], []
    for i, origin in enumerate(dates):
        step("backtest origins", i, len(dates))
        known = data.frame[(times <= origin).to_numpy()]
        try:
            result = train(dataclasses.replace(data, frame=known), per_origin)
        except ValueError as exc:
            raise ValueError(f"origin {origin.date()}: {exc}") from exc
        splits.append(
            {
                "origin": origin.date().isoformat(),
                **result.split.as_dict(),
                # each head's own windows (gap = its horizon): they differ between heads
                "heads": {h: sp.as_dict() for h, sp in result.splits.items()},
            }
        )
        missing += missing_heads(data.labels, result.heads, result.warnings, origin)
        for label, head in result.heads.items():
            records += _origin_records(label, origin, head.test, result.evaluation, cfg, i)
        if cfg.backtest.refit:
            try:
                rows, left_out = served_then(data, per_origin, origin, seed=cfg.seed + i)
            except ValueError as exc:
                raise ValueError(f"origin {origin.date()} (refit): {exc}") from exc
            refits += rows
            notes += [f"origin {origin.date()}: {n}" for n in left_out]
    step("backtest origins", len(dates), len(dates))
    refit = pd.DataFrame(refits) if cfg.backtest.refit else None
    for note in notes:
        log.warning("refit comparison: %s", note)
    for m in missing:
        log.warning("not tested at origin %s: %s", m["origin"].date(), m["reason"])
    return BacktestResult(
        pd.DataFrame(records),
        dates,
        splits,
        cfg,
        refit,
        tuple(notes),
        missing=tuple(missing),
        started=started,
    )


def missing_heads(labels, trained, warnings: list[str], origin: pd.Timestamp) -> list[dict]:
    """The heads of ``labels`` not in ``trained`` at ``origin``, each with the training's reason.

    The reason is the training's own warning for that head (``"<head>: ..."``), e.g. too few
    positives in a window of the data as it stood at the origin.
    """
    return [
        {
            "head": label,
            "origin": origin,
            "reason": next(
                (w for w in warnings if w.startswith(f"{label}:")),
                f"{label}: not trained at this origin",
            ),
        }
        for label in labels
        if label not in trained
    ]


def table_with_notes(result: BacktestResult) -> pd.DataFrame:
    """The backtest table, plus one row per head missing at an origin with its ``note``.

    What the CSV and the MLflow run hold: a head absent at an origin is named, never silent.
    """
    table = result.table.assign(note="")
    if not result.missing:
        return table
    rows = pd.DataFrame(
        [{"head": m["head"], "origin": m["origin"], "note": m["reason"]} for m in result.missing]
    )
    out = pd.concat([table, rows], ignore_index=True)
    order = {o: i for i, o in enumerate(result.origins)}
    out = out.assign(_o=out["origin"].map(order)).sort_values(["_o", "head"], kind="stable")
    return out.drop(columns="_o").reset_index(drop=True)


def backtest_description(result: BacktestResult) -> str:
    """The backtest run's description: origins, windows, heads missing and why."""
    days = ", ".join(str(d.date()) for d in result.origins)
    heads = sorted(set(result.table["head"])) if len(result.table) else []
    lines = [
        f"Rolling-origin backtest at {len(result.origins)} monthly origin(s) ({days}): "
        f"trained on the data as it stood at each, tested on its last {TEST_DAYS} days of "
        f"snapshots, {result.config.backtest.confidence:.0%} bootstrap intervals "
        f"({result.config.backtest.resamples} resamples). Heads tested: {', '.join(heads)}.",
        "Each head's windows per origin: backtest/splits.json (gap = the head's horizon).",
    ]
    if result.missing:
        lines.append(
            "Not tested: "
            + "; ".join(f"at {m['origin'].date()}, {m['reason']}" for m in result.missing)
            + "."
        )
    if result.refit_notes:
        lines.append("Refit comparison left out: " + "; ".join(result.refit_notes) + ".")
    return "\n\n".join(lines)


def choose_models(result: BacktestResult) -> dict[str, dict]:
    """Each head's model by its mean test ROC-AUC over the origins (``backtest.candidates``).

    Only origins where every candidate was tested count; ties within ``TIE`` go by the same
    preference as the choice on one validation window (:func:`training.linear.pick`), but
    several origins' test windows are the evidence instead of one window that LightGBM's early
    stopping has already seen. Per head: the choice, each candidate's mean, origins and why.
    """
    t = result.table
    t = t[(t["metric"] == "roc_auc") & t["predictor"].str.startswith(CANDIDATE)]
    out = {}
    for head, g in t.groupby("head", sort=False):
        wide = g.pivot_table(index="origin", columns="predictor", values="value").dropna()
        if wide.empty:
            continue
        means = {c.removeprefix(CANDIDATE): float(wide[c].mean()) for c in wide.columns}
        what = f"mean test ROC-AUC over {len(wide)} backtest origins"
        chosen, auc, reason = pick(means, what)
        out[str(head)] = {
            "chosen": chosen,
            "mean_test_roc_auc": auc,
            "origins": int(len(wide)),
            "reason": reason,
        }
    return out


def known_at(data: TrainingData, origin: pd.Timestamp) -> pd.DataFrame:
    """The rows up to ``origin``, each label blanked where it was not yet known at ``origin``.

    A label of as-of date T with horizon h describes (T, T + h]: it is known from T + h on.
    """
    times = pd.to_datetime(data.frame[data.time])
    keep = (times <= origin).to_numpy()
    frame, t = data.frame[keep].copy(), times[keep]
    for label in data.labels:
        late = (t + pd.Timedelta(days=horizon_days(label, data.horizon or 90)) > origin).to_numpy()
        frame[label] = frame[label].mask(late)
    return frame


def served_then(
    data: TrainingData, cfg: TrainConfig, origin: pd.Timestamp, seed: int = 0
) -> tuple[list[dict], list[str]]:
    """What ``radar train`` would have served at ``origin``, honest and refitted, compared.

    Both are trained from :func:`known_at` (the honest fit calibrated on its validation
    window; the refit one fitted again on every labelled row before the latest labelled window
    and recalibrated on that window, :mod:`training.refit`), then score the origin's test rows
    (its last ``TEST_DAYS`` of snapshots), whose labels came later. Per head and metric of
    ``COMPARED``: the honest and refit figure, the paired difference (refit - honest) with its
    interval, and the mean predicted beside the observed rate (calibration in the large).
    Also returns why each head left out was left out (the training refused it then, or its
    test rows hold one class).
    """
    from training.refit import refit_heads

    frame = known_at(data, origin)
    then = dataclasses.replace(data, frame=frame)
    only = {"refit": False, "record_candidates": False, "evaluate_candidates": False}
    result = train(then, cfg.model_copy(update=only))
    honest = result.bundle
    refitted = copy.deepcopy(honest)
    refit_heads(then, cfg, refitted, result.splits)

    times = pd.to_datetime(data.frame[data.time])
    window = (times > origin - pd.Timedelta(days=TEST_DAYS)) & (times <= origin)
    test = data.frame[window.to_numpy()]
    p_honest, p_refit = honest.predict(test), refitted.predict(test)
    settings = cfg.promotion.model_copy(
        update={
            "resamples": cfg.backtest.resamples,
            "confidence": cfg.backtest.confidence,
            "seed": seed,
        }
    )
    rows: list[dict] = []
    notes = [
        next((w for w in result.warnings if w.startswith(f"{label}:")), f"{label}: not trained")
        for label in data.labels
        if label not in honest.heads
    ]
    for label in honest.heads:
        known = test[label].notna().to_numpy()
        y = test[label].to_numpy(dtype=float, na_value=np.nan)[known]
        a = p_refit[f"p_{label}"].to_numpy(dtype=float)[known]
        b = p_honest[f"p_{label}"].to_numpy(dtype=float)[known]
        if len(np.unique(y)) < 2:
            notes.append(f"{label}: one class on the origin's test rows")
            continue
        means = {
            "n": len(y),
            "positives": int(y.sum()),
            "observed_rate": float(y.mean()),
            "honest_mean": float(b.mean()),
            "refit_mean": float(a.mean()),
        }
        for r in paired_comparison(y, a, b, settings):
            rows.append(
                {
                    "head": label,
                    "origin": origin,
                    "metric": r["metric"],
                    "honest": r["champion"],
                    "refit": r["challenger"],
                    "difference": r["difference"],
                    "low": r["low"],
                    "high": r["high"],
                    **means,
                }
            )
    return rows, notes


def refit_verdicts(refit: pd.DataFrame) -> dict[str, dict]:
    """Per head, over the origins, whether serving refitted heads pays.

    An origin counts for refit when its paired interval of the log-loss difference lies below
    0 (refit better, with evidence), against when it lies above 0, else a draw. The verdict is
    ``refit`` when refit wins more origins than it loses and its mean ROC-AUC difference is not
    negative by more than the widest interval half-width, ``honest`` when it loses more, else
    ``either``.
    """
    out = {}
    for head, g in refit.groupby("head", sort=False):
        ll = g[g["metric"] == "log_loss"]
        auc = g[g["metric"] == "roc_auc"]
        better = int((ll["high"] < 0).sum())
        worse = int((ll["low"] > 0).sum())
        auc_mean = float(auc["difference"].mean())
        slack = float(((auc["high"] - auc["low"]) / 2).max()) if len(auc) else 0.0
        if better > worse and auc_mean >= -slack:
            verdict = "refit"
        elif worse > better:
            verdict = "honest"
        else:
            verdict = "either"
        ratio = {
            k: float((ll[f"{k}_mean"] / ll["observed_rate"]).mean()) for k in ("honest", "refit")
        }
        out[str(head)] = {
            "verdict": verdict,
            "origins": int(len(ll)),
            "log_loss_better": better,
            "log_loss_worse": worse,
            "log_loss_difference_mean": float(ll["difference"].mean()),
            "roc_auc_difference_mean": auc_mean,
            "mean_predicted_over_observed": ratio,
        }
    return out


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
        flat_params,
        git_commit,
        run_name,
        tracking_uri,
        use_experiment,
    )

    cfg = result.config
    resolved = tracking_uri(uri)
    experiment = use_experiment(cfg.experiment, resolved)
    name = run_name(cfg).replace("train-", f"{KIND}-{len(result.origins)}x-", 1)
    # The run starts when the job did: its duration is the backtest's, not the logging's.
    with job_run(name, experiment.experiment_id, result.started) as run:
        mlflow.set_tags(
            {
                DESCRIPTION_TAG: backtest_description(result),
                "radar.missing_heads": "; ".join(
                    f"{m['head']}@{m['origin'].date()}" for m in result.missing
                ),
                KIND_TAG: KIND,
                "radar.git_commit": git_commit(),
                "radar.data_fingerprint": data.source.get("fingerprint", ""),
                "radar.source_path": data.source.get("path", ""),
            }
        )
        params = flat_params("", cfg.model_dump(mode="json"))
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
        mlflow.log_dict(result.splits, "backtest/splits.json")
        mlflow.log_text(
            table_with_notes(result).to_csv(index=False, float_format="%.5f"),
            "backtest/metrics.csv",
        )
        mlflow.log_dict(
            [m | {"origin": str(m["origin"].date())} for m in result.missing],
            "backtest/missing_heads.json",
        )
        if result.refit is not None and not result.refit.empty:
            metrics += [
                Metric(f"{r.head}/refit_minus_honest/{r.metric}{suffix}", float(v), now, step)
                for r in result.refit.itertuples(index=False)
                for step in (result.origins.index(r.origin),)
                for suffix, v in (("", r.difference), ("_low", r.low), ("_high", r.high))
                if np.isfinite(v)
            ]
            mlflow.log_text(
                result.refit.to_csv(index=False, float_format="%.5f"), "backtest/refit.csv"
            )
            mlflow.log_dict(refit_verdicts(result.refit), "backtest/refit_verdicts.json")
        if result.config.backtest.candidates:
            mlflow.log_dict(choose_models(result), "backtest/model_choice.json")
        # MLflow takes at most 1,000 metrics per batch
        for start in range(0, len(metrics), 1000):
            MlflowClient().log_batch(run.info.run_id, metrics=metrics[start : start + 1000])
        for m in INTERVAL_METRICS:
            fig = plots.backtest_figure(m, result.table, cfg.backtest.confidence)
            mlflow.log_figure(fig, f"backtest/{m}.png")
            plots.plt.close(fig)
    return run.info.run_id


def refit_path(out: str | Path) -> Path:
    """Where :func:`write_table` puts the refit comparison beside the table."""
    out = Path(out)
    return out.with_name(f"{out.stem}_refit{out.suffix or '.csv'}")


def write_table(result: BacktestResult, out: str | Path) -> list[Path]:
    """The backtest table as CSV, and the refit comparison beside it when there is one.

    Heads missing at an origin are rows of the table with their ``note``. Each file is written
    whole, or not at all. Returns the paths written.
    """
    with atomic_file(out) as tmp:
        table_with_notes(result).to_csv(tmp, index=False, float_format="%.5f")
    written = [Path(out)]
    if result.refit is not None:
        with atomic_file(refit_path(out)) as tmp:
            result.refit.to_csv(tmp, index=False, float_format="%.5f")
        written.append(refit_path(out))
    return written
