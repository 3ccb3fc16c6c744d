"""Fit the heads, calibrate them, and evaluate them beside the baselines on a later window."""

from __future__ import annotations

import logging
import time as clock  # "time" is the name of the time column throughout this module
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from features.catalogue import RENEWAL_LABEL, horizon_days
from features.io import file_sha256
from features.store import SnapshotStore
from training.config import TrainConfig
from training.data import FeatureSpec, TimeSplit
from training.explain import global_drivers
from training.linear import (
    BLEND,
    LIGHTGBM,
    BlendScorer,
    Choice,
    choose,
    linear_head,
)
from training.linear import LOGISTIC as LINEAR
from training.metrics import binary_metrics, f1_threshold, top_share_mask
from training.model import Calibrator, Head, ModelBundle, fit_lightgbm
from training.model import lightgbm_params as _params
from training.splits import NOT_TEMPORAL, PARTS, RandomSplit, adaptive_time_split, random_split
from training.table import parse_label, parse_time, prepare_features, read_table

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]

MODEL = "model"
LOGISTIC = "logistic"
RULE = "rule_score"
ORACLE = "oracle"
CANDIDATE = "candidate_"  # with ``evaluate_candidates``: candidate_lightgbm, _logistic, _blend
ALL = "all"


@dataclass(frozen=True)
class TrainingData:
    """A table to train on and how to read it.

    Attributes:
        frame: One row per (entity, time) with features and labels.
        spec: The feature columns.
        labels: Label columns to train a head for.
        time: Column with the as-of date.
        entity: Column identifying the account (for joins with the oracle).
        segment: Column to break metrics down by, if any.
        health: Rule-based health score column to evaluate as a baseline, if any.
        oracle: True probabilities (entity, time, ``p_<label>``) on synthetic data, if known.
        source: Where the table came from, for the run's records.
        horizon: Label horizon in days, when the label names do not end in ``_30d``/``_90d``.

    """

    frame: pd.DataFrame
    spec: FeatureSpec
    labels: tuple[str, ...]
    time: str | None = "as_of"  # None: no time, a random split (said in the warnings)
    entity: str | None = "account_id"
    segment: str | None = "segment"
    health: str | None = "health_score"
    oracle: pd.DataFrame | None = None
    source: dict = field(default_factory=dict)
    horizon: int | None = None  # label horizon in days when the label's name does not say
    notes: tuple[str, ...] = ()  # what reading the data found (label mapping, columns left out)


@dataclass
class HeadResult:
    """What training one head produced, beyond the head itself."""

    label: str
    best_iteration: int
    validation_log_loss_raw: float
    validation_log_loss_calibrated: float
    test: pd.DataFrame  # y, segment and one probability column per predictor
    importance: pd.Series  # total gain per feature
    contributions: np.ndarray  # TreeSHAP (log-odds) on a test sample, last column = base value
    contribution_rows: np.ndarray  # the sample's feature matrix


@dataclass
class TrainingResult:
    """A trained bundle with its split, evaluation table and per-head details.

    ``split`` and ``rows`` are the split shared by the 30/90-day heads; a head with a longer
    horizon has its own in ``splits``.
    """

    bundle: ModelBundle
    split: TimeSplit | RandomSplit  # the longest-horizon head's split (the common window)
    evaluation: list[dict]
    heads: dict[str, HeadResult]
    rows: dict[str, int]  # rows per part of ``split``
    config: TrainConfig
    global_drivers: pd.DataFrame  # average effect per head and feature, on a test sample
    splits: dict[str, TimeSplit | RandomSplit] = field(default_factory=dict)  # per head
    part_rows: dict[str, dict[str, int]] = field(default_factory=dict)  # per head and part
    label_stats: list[dict] = field(default_factory=list)  # head, part, rows, positives, rate
    warnings: list[str] = field(default_factory=list)  # skipped heads, shifts, shortened windows
    forecasts: object | None = None  # training.forecast.ForecastResult, once attached
    started: float | None = None  # when training started (epoch seconds): the run's start


def logistic_baseline(spec: FeatureSpec, C: float, max_iter: int, seed: int) -> Pipeline:
    """Regularised logistic regression on the same features.

    Numbers: median-imputed with a missing flag, signed log (counts are heavy-tailed), scaled.
    Categories: one-hot, unknown or missing levels all zero.
    """
    n_num = len(spec.numeric)
    numeric = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        FunctionTransformer(lambda x: np.sign(x) * np.log1p(np.abs(x))),
        StandardScaler(),
    )
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=-1, keep_empty_features=True),
        OneHotEncoder(
            categories=[list(range(len(v))) for v in spec.categorical.values()],
            handle_unknown="ignore",
        ),
    )
    transformers = [("numeric", numeric, list(range(n_num)))]
    if spec.categorical:
        transformers.append(("categorical", categorical, list(range(n_num, len(spec.names)))))
    return Pipeline(
        [
            ("prepare", ColumnTransformer(transformers)),
            ("model", LogisticRegression(C=C, max_iter=max_iter, random_state=seed)),
        ]
    )


def typical_values(spec: FeatureSpec, x: np.ndarray) -> dict[str, float]:
    """Median of each numeric feature over the rows of ``x`` (features all missing left out)."""
    out = {}
    for j, name in enumerate(spec.numeric):
        col = x[:, j]
        if np.isfinite(col).any():
            out[name] = float(np.nanmedian(col))
    return out


def train(
    data: TrainingData, cfg: TrainConfig, progress: ProgressFn | None = None
) -> TrainingResult:
    """Split each head's rows (by time, gap = its horizon), fit, calibrate and evaluate it.

    A head whose split leaves a part with too few rows or too few positives (or negatives) is
    skipped; one that is constant or no better than chance on validation is not kept. Both
    are named in ``warnings``; the other heads train.

    Raises:
        ValueError: When a label column is missing, the data is too short to split, or no head
            is left to register (the message says why for each and what would help).

    """
    started = clock.time()
    step = progress or (lambda *_: None)
    df = data.frame
    for col in (data.time, *data.labels):
        if col is not None and col not in df.columns:
            raise ValueError(f"column {col!r} not found in the table")
    horizons = {label: horizon_days(label, data.horizon or 90) for label in data.labels}
    if RENEWAL_LABEL in horizons:
        horizons[RENEWAL_LABEL] = renewal_horizon(df)
    cfg.gap(list(horizons.values()))  # a configured gap shorter than a horizon is refused here
    warnings: list[str] = []
    if data.time is None:
        grouped = f" grouped by {data.entity}" if data.entity else ""
        warnings.append(NOT_TEMPORAL.format(grouped=grouped, seed=cfg.split.random_seed))

    total = len(data.labels) * 3
    heads: dict[str, Head] = {}
    splits: dict = {}
    index: dict[str, dict[str, np.ndarray]] = {}
    stats: list[dict] = []
    raw_val: dict[str, float] = {}
    choices: dict[str, dict] = {}
    fitted: dict[str, dict[str, object]] = {}
    refused: dict[str, str] = {}
    planned: dict[str, tuple] = {}
    for label in data.labels:  # each head's split first: the matrix holds only rows in one
        try:
            split, note = _split_for(data, cfg, label, horizons[label])
        except ValueError as exc:
            refused[label] = f"{label}: {exc}"
            continue
        part = split.assign(df[data.time] if data.time else pd.Series(index=df.index))
        known = df[label].notna().to_numpy()
        rows = {p: np.flatnonzero((part == p).to_numpy(dtype=bool) & known) for p in PARTS}
        y = {p: df[label].to_numpy(dtype=float, na_value=np.nan)[r] for p, r in rows.items()}
        head_stats = [part_stats(label, p, y[p]) for p in PARTS]
        stats += head_stats
        short = _too_few(label, head_stats, cfg)
        if short:
            refused[label] = short
            continue
        if note:
            warnings.append(f"{label}: {note}")
        warnings += _outside_band(label, head_stats, cfg.label_rate_band)
        planned[label] = (split, rows, y)
    parts = [r for _, rows, _ in planned.values() for r in rows.values()]
    used = np.unique(np.concatenate(parts)) if parts else np.array([], dtype=int)
    x_used = data.spec.matrix(df.iloc[used])

    def x_of(r: np.ndarray) -> np.ndarray:
        return x_used[np.searchsorted(used, r)]

    for i, (label, (split, rows, y)) in enumerate(planned.items()):
        step("training heads", 3 * i, total)
        x = {p: x_of(r) for p, r in rows.items()}
        params = _params(cfg.lightgbm, data.spec, label, cfg.seed, cfg.threads)
        booster = fit_lightgbm(
            data.spec, x["train"], y["train"], x["validation"], y["validation"],
            params, cfg.lightgbm.max_trees, cfg.lightgbm.early_stopping_rounds,
        )  # fmt: skip
        booster, choices[label], fitted[label] = _choose_model(data.spec, cfg, label, booster, x, y)
        score_val = booster.predict(x["validation"], raw_score=True)
        weak = _weak(label, score_val, y["validation"], cfg.min_validation_auc)
        if weak:
            refused[label] = weak
            continue
        calibrator = Calibrator.fit(
            score_val, y["validation"], cfg.calibration, cfg.min_block(len(y["validation"]))
        )
        heads[label] = Head(label, booster, calibrator)
        raw_val[label] = log_loss(y["validation"], expit(score_val), labels=[0, 1])
        splits[label], index[label] = split, rows
    warnings += [w for w in (_rate_shift(label, stats) for label in heads) if w]
    warnings += list(refused.values())
    if not heads:
        raise ValueError(
            "no head to register: " + "; ".join(refused.values()) + ". " + _options(data, refused)
        )

    # The longest fixed horizon: the common window (renewal likelihood has its own, later one).
    fixed = [h for h in heads if h != RENEWAL_LABEL] or list(heads)
    primary = max(fixed, key=lambda h: horizons[h])
    bundle = ModelBundle(
        data.spec,
        heads,
        metadata={
            "labels": list(heads),
            # Each head's horizon as trained: the sentences say it (a table's own --horizon).
            "horizons": {h: horizons[h] for h in heads},
            "split": splits[primary].as_dict(),
            "splits": {h: s.as_dict() for h, s in splits.items()},
            "rows": {p: len(r) for p, r in index[primary].items()},
            "source": data.source,
            "seed": cfg.seed,
            # Scoring builds snapshots with the configuration the model was trained on.
            "feature_config": data.source.get("manifest", {}).get("config"),
            # The training window's medians: explanations cite a value against them.
            "typical": typical_values(data.spec, x_of(index[primary]["train"])),
            # Per head: LightGBM, logistic or their average, each one's validation figure, why.
            "model_choice": {h: choices[h] for h in heads},
        },
    )

    evaluation: list[dict] = []
    results: dict[str, HeadResult] = {}
    for i, label in enumerate(heads):
        step("evaluating heads", 3 * i + 1, total)
        head = heads[label]
        rows = index[label]
        frames = {p: df.iloc[r] for p, r in rows.items()}
        x = {p: x_of(r) for p, r in rows.items()}
        preds = {
            MODEL: tuple(
                pd.Series(bundle.predict_matrix(x[p])[f"p_{label}"], index=frames[p].index)
                for p in ("validation", "test")
            )
        }
        baselines, notes = _baselines(data, cfg, label, frames, x)
        preds |= baselines
        warnings += notes
        if cfg.evaluate_candidates:  # a backtest choosing the model per head looks at each
            y_parts = {p: frames[p][label].to_numpy(dtype=float, na_value=np.nan) for p in frames}
            preds |= _candidate_predictions(fitted[label], x, y_parts, frames, cfg)
        table = {}
        y_val = frames["validation"][label]
        y_test = frames["test"][label]
        test = pd.DataFrame({"y": y_test.astype("Float64")}, index=frames["test"].index)
        if data.segment and data.segment in frames["test"]:
            test["segment"] = frames["test"][data.segment].astype("str")
        for name, (pv, pt) in preds.items():
            threshold = operating_point(y_val, pv, cfg.top_share)
            if name == MODEL:
                head.threshold = threshold
            test[name] = pt
            table[name] = threshold
        evaluation += _evaluate(label, test, table)

        step("explaining heads", 3 * i + 2, total)
        rows_x = x["test"][sample_positions(len(x["test"]), cfg.shap_sample, cfg.seed)]
        results[label] = HeadResult(
            label=label,
            best_iteration=head.booster.num_trees(),
            validation_log_loss_raw=raw_val[label],
            # the calibrator's own effect, before the 30-day cap at the 90-day probability
            validation_log_loss_calibrated=log_loss(
                y_val.to_numpy(dtype=float), head.proba(x["validation"]), labels=[0, 1]
            ),
            test=test,
            importance=pd.Series(
                head.booster.feature_importance("gain"), index=data.spec.names
            ).sort_values(ascending=False),
            contributions=head.booster.predict(rows_x, pred_contrib=True),
            contribution_rows=rows_x,
        )
    if cfg.refit:  # the figures above are the honest ones; serve heads fitted on fresher labels
        from training.refit import refit_heads

        bundle.metadata["refit"] = refit_heads(data, cfg, bundle, splits)
    step("evaluating heads", total, total)
    test_rows = df.iloc[index[primary]["test"]]
    sample = test_rows.iloc[sample_positions(len(test_rows), cfg.shap_sample, cfg.seed)]
    return TrainingResult(
        bundle,
        splits[primary],
        evaluation,
        results,
        {p: len(r) for p, r in index[primary].items()},
        cfg,
        global_drivers(bundle, sample),
        splits=splits,
        part_rows={h: {p: len(r) for p, r in rows.items()} for h, rows in index.items()},
        label_stats=stats,
        warnings=warnings,
        started=started,
    )


def _choose_model(
    spec, cfg: TrainConfig, label: str, booster, x, y
) -> tuple[object, dict, dict[str, object]]:
    """The head's model among LightGBM, the linear model and their average, by validation.

    The linear model is fitted on the training rows (at most ``logistic.max_rows`` of them,
    as the baseline), like LightGBM, with the same known directions; the choice is recorded
    with every candidate's figure. ``model_per_head`` (a backtest's choice) fixes a head's
    kind. Returns the chosen model, the record of the choice and every fitted candidate.
    """
    fixed = cfg.model_per_head.get(label)
    forced = fixed or (None if cfg.model == "auto" else cfg.model)
    if forced == LIGHTGBM and not cfg.record_candidates:  # nothing to choose or record
        raw = booster.predict(x["validation"], raw_score=True)
        auc = float(roc_auc_score(y["validation"], raw))
        reason = f"set in the configuration (model: {LIGHTGBM}; other candidates not fitted)"
        return booster, Choice(LIGHTGBM, {LIGHTGBM: auc}, reason).as_dict(), {LIGHTGBM: booster}
    linear = linear_head(spec, cfg, label, x["train"], y["train"])
    candidates = {LIGHTGBM: booster, LINEAR: linear, BLEND: BlendScorer(booster, linear)}
    raw = {k: m.predict(x["validation"], raw_score=True) for k, m in candidates.items()}
    choice = choose(y["validation"], raw, forced).as_dict()
    if fixed:
        choice["reason"] = f"set in the configuration (model_per_head: {fixed})"
    return candidates[choice["chosen"]], choice, candidates


def _candidate_predictions(candidates: dict, x, y, frames, cfg: TrainConfig) -> dict:
    """Each fitted candidate as a predictor ``candidate_<kind>``, calibrated on validation."""
    return {
        f"{CANDIDATE}{kind}": _calibrated(
            m.predict(x["validation"], raw_score=True),
            m.predict(x["test"], raw_score=True),
            y,
            frames,
            cfg,
        )
        for kind, m in candidates.items()
    }


def renewal_horizon(frame: pd.DataFrame) -> int:
    """The renewal head's horizon: the longest wait from a labelled snapshot to its decision.

    A renewal label is known at the decision (T + ``days_to_renewal``), at most
    ``RENEWAL_WINDOW_DAYS`` ahead: monthly contracts decide within a month, so their gap is a
    month, not half a year (annual and multi-year terms keep the full window).
    """
    if RENEWAL_LABEL not in frame or "days_to_renewal" not in frame:
        return horizon_days(RENEWAL_LABEL)
    known = frame[RENEWAL_LABEL].notna().to_numpy()
    days = pd.to_numeric(frame["days_to_renewal"], errors="coerce").to_numpy(float)[known]
    days = days[~np.isnan(days)]
    if not len(days):
        return horizon_days(RENEWAL_LABEL)
    return int(min(np.ceil(days.max()), horizon_days(RENEWAL_LABEL)))


def _split_for(data: TrainingData, cfg: TrainConfig, label: str, horizon: int):
    """The split of one head: by time, gap = its own horizon; random without a time."""
    df = data.frame
    if data.time is None:
        groups = df[data.entity] if data.entity else None
        return random_split(df[label], cfg.split.random_seed, groups), None
    gap = cfg.split.gap_days if cfg.split.gap_days is not None else horizon
    return adaptive_time_split(
        df[data.time], df[label].notna(), cfg.split.test_days, cfg.split.validation_days, gap
    )


def part_stats(label: str, part: str, y: np.ndarray) -> dict:
    """Rows, positives and positive rate of one head's part (train, validation or test)."""
    positives = int(np.nansum(y))
    return {
        "head": label,
        "part": part,
        "rows": len(y),
        "positives": positives,
        "rate": positives / len(y) if len(y) else float("nan"),
    }


def _too_few(label: str, stats: list[dict], cfg: TrainConfig) -> str | None:
    """Why the head cannot be trained and judged honestly on these parts, if it cannot."""
    if all(s["positives"] == 0 for s in stats):
        return f"{label}: skipped, the label has no positives (every known value is 0)"
    if all(s["positives"] == s["rows"] for s in stats):
        return f"{label}: skipped, the label has no negatives (every known value is 1)"
    short = [
        f"{s['part']} has {s['rows']:,} rows, {s['positives']:,} positives"
        for s in stats
        if s["rows"] < cfg.min_rows
        or min(s["positives"], s["rows"] - s["positives"]) < cfg.min_positives
    ]
    if not short:
        return None
    # Name the real shortfall: rows, positives (the rare class), or both.
    few_rows = any(s["rows"] < cfg.min_rows for s in stats)
    few_class = any(
        min(s["positives"], s["rows"] - s["positives"]) < cfg.min_positives for s in stats
    )
    rare = (
        "positives"
        if all(s["positives"] <= s["rows"] - s["positives"] for s in stats)
        else "negatives"
    )
    what = {
        (True, False): "rows",
        (False, True): rare,
        (True, True): f"rows and {rare}",
    }[(few_rows, few_class)]
    return (
        f"{label}: skipped, too few {what} to train and evaluate it honestly ("
        + "; ".join(short)
        + f"; each part needs at least {cfg.min_rows:,} rows and {cfg.min_positives} positives "
        "and negatives)"
    )


def _outside_band(label: str, stats: list[dict], band: tuple[float, float]) -> list[str]:
    """A warning naming the head when a part's positive rate lies outside ``band``."""
    lo, hi = band
    odd = [f"{s['part']} {s['rate']:.1%}" for s in stats if not lo <= s["rate"] <= hi]
    if not odd:
        return []
    return [
        f"{label}: positive rate outside {lo:.0%}-{hi:.0%} ({', '.join(odd)}): check the "
        "label's definition (for activity labels, the quiet days against the customers' "
        "buying cycle); the head is trained, but its figures say little about the rare class"
    ]


def _weak(label: str, score: np.ndarray, y: np.ndarray, min_auc: float) -> str | None:
    """Why a fitted head is not worth registering (constant, or no better than chance)."""
    if np.ptp(score) == 0:
        return f"{label}: not registered, the model is constant (it found nothing to split on)"
    auc = roc_auc_score(y, score)
    if auc < min_auc:
        return (
            f"{label}: not registered, validation ROC-AUC {auc:.3f} is below {min_auc:.2f} "
            "(no better than chance)"
        )
    return None


def _rate_shift(label: str, stats: list[dict]) -> str | None:
    rate = {s["part"]: s["rate"] for s in stats if s["head"] == label}
    lo, hi = sorted((rate["train"], rate["test"]))
    if lo > 0 and hi / lo <= 2:
        return None
    return (
        f"{label}: the test label rate {rate['test']:.3f} differs from the train rate "
        f"{rate['train']:.3f} by more than a factor of two: test figures describe a different "
        "mix of customers"
    )


def _options(data: TrainingData, refused: dict[str, str]) -> str:
    """What a user can do when the data is too small, too short or has no signal."""
    if all("not registered" in why for why in refused.values()):
        return (
            "The features carry no usable signal for the label: check that the label column "
            "is the outcome, and add features that could predict it."
        )
    options = ["add rows (more customers, or a longer history)"]
    if data.source.get("kind") == "table" and data.time is not None:
        options.append("leave --time out for a random split (the evaluation is then not temporal)")
    if data.time is not None:
        freq = data.source.get("manifest", {}).get("config", {}).get("freq")
        options.append(
            "shorten split.test_days / split.validation_days in --config"
            + (
                ", or build weekly snapshots (radar features --freq weekly) for more rows per part"
                if freq == "monthly"  # never to snapshots that are weekly already
                else ""
            )
        )
    options.append("lower min_rows / min_positives in --config (the figures get noisier)")
    return "Options: " + "; ".join(options) + "."


def operating_point(y: pd.Series, p: pd.Series, top_share: float | None) -> float:
    """The probability threshold a head flags at (F1-best, or the top ``top_share``)."""
    ok = y.notna().to_numpy() & p.notna().to_numpy()
    yv, pv = y[ok].to_numpy(dtype=float), p[ok].to_numpy(dtype=float)
    if top_share is not None:
        return float(pv[top_share_mask(pv, top_share)].min())
    return f1_threshold(yv, pv)


def _baselines(
    data: TrainingData,
    cfg: TrainConfig,
    label: str,
    frames: dict[str, pd.DataFrame],
    x: dict[str, np.ndarray],
) -> tuple[dict[str, tuple[pd.Series, pd.Series]], list[str]]:
    """Validation and test probabilities of each baseline, calibrated on validation.

    Also returns a note per baseline left out because it cannot be computed on these rows.
    """
    out: dict[str, tuple[pd.Series, pd.Series]] = {}
    notes: list[str] = []
    y = {p: frames[p][label].to_numpy(dtype=float, na_value=np.nan) for p in frames}
    keep = ~np.isnan(y["train"])
    rows = np.flatnonzero(keep)
    if len(rows) > cfg.logistic.max_rows:
        rows = np.sort(np.random.default_rng(cfg.seed).choice(rows, cfg.logistic.max_rows, False))
    lr = logistic_baseline(data.spec, cfg.logistic.C, cfg.logistic.max_iter, cfg.seed)
    lr.fit(x["train"][rows], y["train"][rows])
    out[LOGISTIC] = _calibrated(
        lr.decision_function(x["validation"]), lr.decision_function(x["test"]), y, frames, cfg
    )

    if data.health and data.health in frames["train"]:
        sign = -1.0 if label.startswith("churn") else 1.0  # low health = high churn risk
        h = {p: frames[p][data.health].to_numpy(dtype=float, na_value=np.nan) for p in frames}
        if np.isnan(h["train"]).all():
            # e.g. a usage-only log whose first as-of dates have no health history yet
            notes.append(
                f"{label}: the rule-score baseline ({data.health}) is left out of the "
                "evaluation: the score is missing on every training row"
            )
        else:
            fill = np.nanmedian(h["train"])
            val, test = (
                sign * np.where(np.isnan(h[p]), fill, h[p]) for p in ("validation", "test")
            )
            # Platt keeps the score's ranking, so ROC-AUC is the score's own.
            out[RULE] = _calibrated(val, test, y, frames, cfg, method="platt")

    if data.oracle is not None and data.entity:
        col = f"p_{label}"
        keys = [data.entity, data.time]
        oracle = data.oracle[[*keys, col]]
        out[ORACLE] = tuple(
            frames[p][keys].merge(oracle, on=keys, how="left")[col].set_axis(frames[p].index)
            for p in ("validation", "test")
        )
    return out, notes


def _calibrated(val_score, test_score, y, frames, cfg, method=None):
    ok = ~np.isnan(y["validation"])
    yv = y["validation"][ok]
    cal = Calibrator.fit(val_score[ok], yv, method or cfg.calibration, cfg.min_block(len(yv)))
    return (
        pd.Series(cal(val_score), index=frames["validation"].index),
        pd.Series(cal(test_score), index=frames["test"].index),
    )


def _evaluate(label: str, test: pd.DataFrame, thresholds: dict[str, float]) -> list[dict]:
    """One record per (predictor, segment) on the test window."""
    records = []
    groups = [(ALL, test)]
    if "segment" in test:
        groups += [(str(s), g) for s, g in test.groupby("segment", sort=True)]
    for segment, g in groups:
        for name, threshold in thresholds.items():
            ok = g["y"].notna().to_numpy() & g[name].notna().to_numpy()
            m = binary_metrics(
                g["y"][ok].to_numpy(dtype=float), g[name][ok].to_numpy(dtype=float), threshold
            )
            records.append({"head": label, "predictor": name, "segment": segment, **m})
    return records


def sample_positions(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded sample of ``size`` of ``n`` rows (all when fewer)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def metric(evaluation: list[dict], head: str, predictor: str, name: str, segment: str = ALL):
    """Look one figure up in an evaluation table."""
    for r in evaluation:
        if (r["head"], r["predictor"], r["segment"]) == (head, predictor, segment):
            return r.get(name)
    return None


def oracle_for(data_dir: str | Path | None, dates: pd.Series) -> pd.DataFrame | None:
    """The synthetic ground truth's oracle probabilities at ``dates``, when ``data_dir`` has one.

    Month ends are stored with the data; other dates (weekly snapshots) are computed here.
    """
    if data_dir is None or not (Path(data_dir) / "ground_truth" / "oracle.parquet").is_file():
        return None
    from features.synthetic.dataset import load_world, oracle_table

    oracle = pd.read_parquet(Path(data_dir) / "ground_truth" / "oracle.parquet")
    oracle["as_of"] = pd.to_datetime(oracle["as_of"]).astype("datetime64[s]")
    wanted = pd.to_datetime(pd.Series(dates.unique())).astype("datetime64[s]")
    missing = wanted[~wanted.isin(oracle["as_of"])]
    if len(missing):
        extra = oracle_table(load_world(data_dir), missing.to_numpy().astype("datetime64[D]"))
        oracle = pd.concat([oracle, extra], ignore_index=True)
    return oracle[oracle["as_of"].isin(wanted)].reset_index(drop=True)


def from_snapshots(features_dir: str | Path, cfg: TrainConfig) -> TrainingData:
    """Training data from ``radar features`` output, with the oracle when the data is synthetic."""
    store = SnapshotStore.open(features_dir)
    manifest = store.manifest
    raw = store.input_directory
    source_dir = None if raw is None else str(raw)
    frame = store.snapshots()
    return TrainingData(
        frame=frame,
        spec=FeatureSpec.from_catalogue(tuple(manifest.get("product_features", ()))),
        labels=cfg.heads,
        oracle=oracle_for(source_dir, frame["as_of"]),
        source={
            "kind": "snapshots",
            "path": str(Path(features_dir).resolve()),
            "raw_data": source_dir,
            "fingerprint": store.fingerprint,
            "feature_version": manifest.get("feature_version"),
            "as_of_first": manifest.get("as_of_dates", [None])[0],
            "as_of_last": manifest.get("as_of_dates", [None])[-1],
            "health_scheme": manifest.get("config", {}).get("health"),
            "manifest": manifest,
        },
    )


def from_table(
    path: str | Path,
    label: str,
    time: str | None = None,
    *,
    horizon: int | None = None,
    entity: str | None = None,
    segment: str | None = None,
    exclude: tuple[str, ...] = (),
) -> TrainingData:
    """Training data from a feature table of one's own: one label, one time column or none.

    Every other column is a feature (numbers and booleans numeric, text categorical) unless
    it is the entity, in ``exclude``, a date or an identifier. Without ``time`` the split is
    random (see :mod:`training.splits`).

    Raises:
        ValueError: Naming the column, row (1-based) and value when the time or label column
            holds something that is not a date or a 0/1 label, or a feature is infinite.

    """
    df = read_table(path)
    name = Path(path).name
    for col in (label, time, entity, segment, *exclude):
        if col and col not in df.columns:
            raise ValueError(f"{name}: column {col!r} not found (columns: {list(df.columns)})")
    y, mapping = parse_label(name, label, df[label])
    frame = df.assign(**{label: y})
    if time is not None:
        frame[time] = parse_time(name, time, df[time])
    keys = {label, *(c for c in (time, entity) if c), *exclude}
    frame, leave_out, notes = prepare_features(frame, name, keys)
    spec = FeatureSpec.infer(frame, keys | leave_out)
    return TrainingData(
        frame=frame,
        spec=spec,
        labels=(label,),
        time=time,
        entity=entity,
        segment=segment,
        health="health_score" if "health_score" in spec.numeric else None,
        source={
            "kind": "table",
            "path": str(Path(path).resolve()),
            "fingerprint": file_sha256(Path(path))[:16],
            "label": label,
            "time": time or "",
            "entity": entity or "",
        },
        horizon=horizon,
        notes=tuple(n for n in (mapping, *notes) if n),
    )
