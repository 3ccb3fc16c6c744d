"""Train the forecasts beside the heads: the health score ahead, and satisfaction.

Trained on the same point-in-time snapshots as the heads, each with its own time split whose
gap is its horizon (:func:`training.splits.adaptive_time_split`):

- **Health forecast** (``forecast_health_30d``, ``forecast_health_90d``): the rule-based
  health score of the account's snapshot 30 and 90 days after T. LightGBM regresses the
  change from today's score (today's score and its month-ago value are inputs beside the
  features); the interval is split conformal: the forecast plus or minus the ``coverage``
  quantile (with the finite-sample correction) of the absolute errors on the validation
  window. Coverage and MAE are measured on the later test window, against "the same as
  today".
- **Satisfaction** (``nps_detractor``, ``low_csat``): the chance that the account's next NPS
  answer within 90 days is 0-6, and that the next rated ticket resolved within 90 days is
  rated 1-2 of 5. LightGBM with the churn heads' known directions, isotonic calibration on
  validation; evaluated beside the logistic model and the health score like the heads.

They form a registry of their own (:data:`features.catalogue.HEALTH_FORECASTS`,
:data:`features.catalogue.SATISFACTION_HEADS`) and are served from :mod:`training.forecasts`.
:func:`attach_forecasts` adds them to a training result (``train_and_register`` does it when
``forecasts.enabled``); :func:`training.train.train` alone trains the heads only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.catalogue import (
    FEATURE_BY_NAME,
    HEALTH_FORECASTS,
    SATISFACTION_HEADS,
    SATISFACTION_SOURCE,
    SATISFACTION_WINDOW_DAYS,
    horizon_days,
)
from features.outlook import SATISFACTION_LABELS, health_ahead
from training.config import ForecastConfig, TrainConfig
from training.data import FeatureSpec
from training.forecasts import (
    HEALTH,
    Forecasts,
    HealthForecast,
    SatisfactionHead,
    health_inputs,
)
from training.metrics import binary_metrics, f1_threshold
from training.model import Calibrator
from training.splits import PARTS, adaptive_time_split
from training.train import (
    LOGISTIC,
    MODEL,
    ORACLE,
    RULE,
    TrainingData,
    TrainingResult,
    logistic_baseline,
)

log = logging.getLogger(__name__)

NAIVE = "same_as_today"  # the health forecast's baseline: the score stays where it is


@dataclass
class ForecastResult:
    """Trained forecasts, their test-window figures and what was skipped."""

    forecasts: Forecasts
    evaluation: list[dict]  # health: mae/coverage per predictor; satisfaction: binary metrics
    notes: list[str]


def conformal_half_width(residuals: np.ndarray, coverage: float) -> float:
    """Split-conformal half-width: the ceil((n + 1) * coverage) / n quantile of |residuals|.

    With exchangeable errors the interval +- it covers a new outcome with probability at
    least ``coverage`` (Vovk et al.; Lei et al. 2018).
    """
    r = np.sort(np.abs(np.asarray(residuals, dtype=float)))
    n = len(r)
    if n == 0:
        return float("nan")
    k = int(np.ceil((n + 1) * coverage))
    return float(r[min(k, n) - 1])


def satisfaction_labels(data: TrainingData) -> tuple[dict[str, pd.Series], list[str]]:
    """The satisfaction labels of ``data``'s rows from its raw tables, and a note per head skipped.

    Absent is absent: without the raw data or the table a head needs, the head is skipped
    with one note (its label is never filled with 0).
    """
    raw = data.source.get("raw_data")
    wanted = {h: SATISFACTION_SOURCE[h] for h in SATISFACTION_HEADS}
    if not raw or not Path(raw).is_dir() or data.entity is None or data.time is None:
        # a feature table of one's own, or a store built from a database: not read again here
        why = "no folder of raw tables behind this training data"
        return {}, [f"satisfaction heads skipped: {why} (NPS answers, ticket ratings)"]
    from features.contract import load_dataset  # only for stores built from raw tables

    ds = load_dataset(
        raw, tables=("accounts", "contacts", *sorted(set(wanted.values()))), strict=False
    )
    end = pd.Timestamp(
        data.source.get("manifest", {}).get("data_end") or data.frame[data.time].max()
    )
    keys = data.frame[[data.entity, data.time]].rename(
        columns={data.entity: "account_id", data.time: "as_of"}
    )
    out, notes = {}, []
    for head, table in wanted.items():
        if not ds.has(table) or ds[table].empty:
            notes.append(f"{head}: skipped, the data has no {table} table")
            continue
        if head == "low_csat" and "csat" not in ds[table]:
            notes.append(f"{head}: skipped, support_tickets has no csat column")
            continue
        out[head] = SATISFACTION_LABELS[head](ds[table], keys, end)
    return out, notes


def _parts(data: TrainingData, cfg: TrainConfig, y: pd.Series, horizon: int):
    """Row positions per part of the split of ``y``'s known rows (gap = ``horizon``)."""
    split, _ = adaptive_time_split(
        data.frame[data.time],
        y.notna(),
        cfg.split.test_days,
        cfg.split.validation_days,
        max(horizon, cfg.split.gap_days or 0),
    )
    part = split.assign(data.frame[data.time])
    known = y.notna().to_numpy()
    return {p: np.flatnonzero((part == p).to_numpy(dtype=bool) & known) for p in PARTS}


def _regressor(fc: ForecastConfig, seed: int, threads: int) -> dict:
    return {
        "objective": "l1",  # the median change: health moves in steps, errors are skewed
        "learning_rate": fc.learning_rate,
        "num_leaves": fc.num_leaves,
        "max_depth": fc.max_depth,
        "min_child_samples": fc.min_child_samples,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "seed": seed,
        "num_threads": threads,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


def _fit(params, x_tr, y_tr, x_va, y_va, fc: ForecastConfig) -> lgb.Booster:
    train = lgb.Dataset(x_tr, label=y_tr, free_raw_data=True)
    val = lgb.Dataset(x_va, label=y_va, reference=train)
    b = lgb.train(
        params,
        train,
        num_boost_round=fc.max_trees,
        valid_sets=[val],
        callbacks=[lgb.early_stopping(fc.early_stopping_rounds, verbose=False)],
    )
    return lgb.Booster(model_str=b.model_to_string(num_iteration=b.best_iteration))


def _health(data, cfg, x_all, name: str) -> tuple[HealthForecast | None, list[dict], str | None]:
    fc = cfg.forecasts
    h = horizon_days(name)
    df = data.frame
    ahead = health_ahead(df.rename(columns={data.entity: "account_id", data.time: "as_of"}), h)
    now = df[HEALTH].to_numpy(dtype="float64", na_value=np.nan)
    y = pd.Series(ahead.to_numpy() - now, index=df.index)  # the change; null without today's
    try:
        rows = _parts(data, cfg, y, h)
    except ValueError as exc:
        return None, [], f"{name}: skipped, {exc}"
    if min(len(r) for r in rows.values()) < cfg.min_rows:
        sizes = ", ".join(f"{p} {len(r):,}" for p, r in rows.items())
        return None, [], f"{name}: skipped, too few rows with a score {h} days on ({sizes})"
    xh = np.hstack([x_all, health_inputs(df)])
    yv = y.to_numpy()
    b = _fit(
        _regressor(fc, cfg.seed, fc.threads),
        xh[rows["train"]], yv[rows["train"]], xh[rows["validation"]], yv[rows["validation"]], fc,
    )  # fmt: skip
    half = conformal_half_width(
        yv[rows["validation"]] - b.predict(xh[rows["validation"]]), fc.coverage
    )
    f = HealthForecast(name, h, b, half, fc.coverage)
    test = rows["test"]
    mid = np.clip(now[test] + b.predict(xh[test]), 0, 100)
    truth = ahead.to_numpy()[test]
    lo, hi = np.clip(mid - half, 0, 100), np.clip(mid + half, 0, 100)
    evaluation = [
        {
            "forecast": name,
            "predictor": MODEL,
            "rows": len(test),
            "mae": float(np.mean(np.abs(mid - truth))),
            "coverage": float(np.mean((truth >= lo) & (truth <= hi))),
            "mean_width": float(np.mean(hi - lo)),
            "target_coverage": fc.coverage,
        },
        {
            "forecast": name,
            "predictor": NAIVE,
            "rows": len(test),
            "mae": float(np.mean(np.abs(now[test] - truth))),
        },
    ]
    return f, evaluation, None


def _directions(spec: FeatureSpec) -> list[int]:
    """The churn heads' known directions: a poor answer follows risk, as churn does."""
    return [FEATURE_BY_NAME[c].churn_effect if c in FEATURE_BY_NAME else 0 for c in spec.names]


def _satisfaction(data, cfg, x_all, name: str, y: pd.Series):
    fc = cfg.forecasts
    try:
        rows = _parts(data, cfg, y, SATISFACTION_WINDOW_DAYS)
    except ValueError as exc:
        return None, [], f"{name}: skipped, {exc}"
    yv = y.to_numpy(dtype="float64")
    few = [
        p
        for p, r in rows.items()
        if len(r) < cfg.min_rows or min(yv[r].sum(), len(r) - yv[r].sum()) < cfg.min_positives
    ]
    if few:
        return None, [], f"{name}: skipped, too few answers with both outcomes in {', '.join(few)}"
    params = _regressor(fc, cfg.seed, fc.threads) | {"objective": "binary"}
    if cfg.lightgbm.monotone:
        params["monotone_constraints"] = _directions(data.spec)
    tr, va, te = rows["train"], rows["validation"], rows["test"]
    b = _fit(params, x_all[tr], yv[tr], x_all[va], yv[va], fc)
    raw_va = b.predict(x_all[va], raw_score=True)
    if np.ptp(raw_va) == 0 or roc_auc_score(yv[va], raw_va) < cfg.min_validation_auc:
        return None, [], f"{name}: not registered, no better than chance on validation"
    cal = Calibrator.fit(raw_va, yv[va], cfg.calibration, cfg.min_block(len(va)))
    head = SatisfactionHead(name, b, cal)
    preds = {MODEL: (cal(raw_va), cal(b.predict(x_all[te], raw_score=True)))}
    if fc.baselines:
        preds |= _baselines(data, cfg, x_all, rows, yv)
    if data.oracle is not None and f"p_{name}" in data.oracle:
        keys = [data.entity, data.time]
        o = data.frame[keys].merge(data.oracle[[*keys, f"p_{name}"]], on=keys, how="left")
        p = o[f"p_{name}"].to_numpy(dtype="float64")
        preds[ORACLE] = (p[va], p[te])
    evaluation = []
    for predictor, (pv, pt) in preds.items():
        ok = ~np.isnan(pt)
        m = binary_metrics(yv[te][ok], pt[ok], f1_threshold(yv[va], np.nan_to_num(pv)))
        evaluation.append({"head": name, "predictor": predictor, "segment": "all", **m})
    return head, evaluation, None


def _baselines(data, cfg, x_all, rows, yv) -> dict:
    """Validation and test probabilities of the logistic model and the health score."""
    tr, va, te = rows["train"], rows["validation"], rows["test"]
    lr = logistic_baseline(data.spec, cfg.logistic.C, cfg.logistic.max_iter, cfg.seed)
    lr.fit(x_all[tr], yv[tr])
    out = {LOGISTIC: _recalibrated(lr.decision_function, x_all, va, te, yv, cfg)}
    if HEALTH in data.frame:  # low health, poor answer: Platt keeps the score's ranking
        score = -data.frame[HEALTH].to_numpy(dtype="float64", na_value=np.nan)
        fill = np.nanmedian(score[tr]) if np.isfinite(score[tr]).any() else 0.0
        score = np.where(np.isnan(score), fill, score)
        cal = Calibrator.fit(score[va], yv[va], "platt")
        out[RULE] = (cal(score[va]), cal(score[te]))
    return out


def _recalibrated(fn, x_all, va, te, yv, cfg):
    sv, st = fn(x_all[va]), fn(x_all[te])
    cal = Calibrator.fit(sv, yv[va], cfg.calibration, cfg.min_block(len(va)))
    return cal(sv), cal(st)


def train_forecasts(data: TrainingData, cfg: TrainConfig) -> ForecastResult:
    """Fit, interval or calibrate, and evaluate every forecast the data supports."""
    notes: list[str] = []
    forecasts = Forecasts(data.spec)
    evaluation: list[dict] = []
    if data.time is None or data.entity is None or HEALTH not in data.frame:
        return ForecastResult(
            forecasts, [], ["forecasts skipped: they need dated snapshots of accounts"]
        )
    x_all = data.spec.matrix(data.frame)
    for name in HEALTH_FORECASTS:
        f, ev, note = _health(data, cfg, x_all, name)
        if f is not None:
            forecasts.health[name] = f
        evaluation += ev
        notes += [note] if note else []
    labels, skipped = satisfaction_labels(data)
    notes += skipped
    for name, y in labels.items():
        head, ev, note = _satisfaction(data, cfg, x_all, name, y)
        if head is not None:
            forecasts.satisfaction[name] = head
        evaluation += ev
        notes += [note] if note else []
    forecasts.metadata = {
        "evaluation": evaluation,
        "notes": notes,
        "satisfaction_window_days": SATISFACTION_WINDOW_DAYS,
    }
    return ForecastResult(forecasts, evaluation, notes)


def attach_forecasts(result: TrainingResult, data: TrainingData, cfg: TrainConfig) -> None:
    """Train the forecasts on ``data`` and add them to ``result`` (its bundle, warnings)."""
    fr = train_forecasts(data, cfg)
    result.bundle.forecasts = fr.forecasts
    result.forecasts = fr
    result.warnings += fr.notes
