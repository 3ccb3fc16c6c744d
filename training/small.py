"""Small tables: repeated stratified cross-validation where a held-out split is too thin.

A one-row-per-customer table of a few hundred or a few thousand customers leaves too few rows
in a 15% validation or test part for honest figures (450 rows, 146 positives in a
3,000-customer table). Such a table is evaluated by repeated stratified k-fold
cross-validation (scikit-learn's ``RepeatedStratifiedKFold``; ``StratifiedGroupKFold`` with
a new seed per repeat when rows are grouped by an entity): every row is held out once per
repeat. Each fold fits the head as training always does (LightGBM with early stopping and a
calibrator, on a stratified fit / calibration split of the fold's training rows), beside the
logistic baseline. Every figure is the mean over the folds with a 95% interval from the
corrected resampled t statistic (Nadeau and Bengio, 2003: the folds share training rows, so
the plain standard error of the mean would be far too narrow). A head is refused only where
its ROC-AUC interval reaches 0.5: it cannot be told from chance, and the message gives the
figure. The served head is fitted the same way on every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import (
    RepeatedStratifiedKFold,
    StratifiedGroupKFold,
    StratifiedKFold,
)

from features.catalogue import horizon_days
from training.config import TrainConfig
from training.explain import global_drivers
from training.intervals import sorted_metrics
from training.metrics import binary_metrics
from training.model import Calibrator, Head, ModelBundle, fit_lightgbm
from training.model import lightgbm_params as _params
from training.splits import PARTS, adaptive_time_split, random_split
from training.train import (
    LOGISTIC,
    MODEL,
    HeadResult,
    TrainingResult,
    logistic_baseline,
    operating_point,
    part_stats,
    sample_positions,
    train,
    typical_values,
)

CONFIDENCE = 0.95
CV_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")
CV_KIND = "cross_validation"
# An isotonic calibrator needs blocks of 100 rows; a small fold's calibration part holds a
# few hundred at most, so its calibrator would be one block (every probability the same).
SMALL_CALIBRATION = "platt"


@dataclass(frozen=True)
class CrossValidation:
    """Repeated stratified k-fold cross-validation (grouped by ``entity`` when given).

    ``parts`` is the first fold's split of the rows (fit, calibration and held-out rows as
    ``train``, ``validation``, ``test``), what the run logs as its datasets.
    """

    seed: int
    entity: str | None
    folds: int = 5
    repeats: int = 5
    parts: np.ndarray = field(default_factory=lambda: np.array([], dtype=object), repr=False)
    gap_days: int = 0
    time: str | None = None  # forward-chaining folds by this date column (gap = horizon)

    def assign(self, times: pd.Series) -> pd.Series:
        """The first fold's part of each row (``times`` only supplies the index)."""
        return pd.Series(self.parts, index=times.index, dtype="str")

    def as_dict(self) -> dict[str, str | int]:
        """What to log: the kind, folds, repeats, seed and entity."""
        return {
            "kind": CV_KIND,
            "folds": self.folds,
            "repeats": self.repeats,
            "seed": self.seed,
            "entity": self.entity or "",
            "time": self.time or "",
            "gap_days": self.gap_days,
        }

    def describe(self) -> str:
        """One line for the console."""
        by = f", grouped by {self.entity}" if self.entity else ""
        if self.time:
            return (
                f"forward-chaining cross-validation by {self.time} ({self.folds} folds): each "
                f"fold holds out later dates, fitted on dates at least {self.gap_days} days "
                "before them (gap = horizon)"
            )
        return (
            f"repeated stratified cross-validation ({self.folds} folds x {self.repeats} "
            f"repeats, seed {self.seed}{by}): every row held out once per repeat; no time"
        )


def needs_cross_validation(data, cfg: TrainConfig) -> bool:
    """Whether a table without time is too small for a held-out split of every label.

    True when each label has positives and negatives but its random split leaves a part
    below ``min_rows`` rows or ``min_positives`` positives or negatives.
    """
    if data.time is not None:
        return data.source.get("kind") == "table" and _time_split_too_thin(data, cfg)
    df = data.frame
    for label in data.labels:
        y = df[label].to_numpy(dtype=float, na_value=np.nan)
        known = y[~np.isnan(y)]
        if not len(known) or known.min() == known.max():
            return False  # no positives or no negatives: the usual refusal says so
        groups = df[data.entity] if data.entity else None
        part = random_split(df[label], cfg.split.random_seed, groups).assign(df[label])
        for p in PARTS:
            yp = y[(part == p).to_numpy(dtype=bool) & ~np.isnan(y)]
            pos = int(yp.sum())
            if len(yp) < cfg.min_rows or min(pos, len(yp) - pos) < cfg.min_positives:
                return True
    return False


def _time_split_too_thin(data, cfg: TrainConfig) -> bool:
    """Whether a table with dates is too short or too small for a held-out time split."""
    df = data.frame
    for label in data.labels:
        y = df[label].to_numpy(dtype=float, na_value=np.nan)
        known = y[~np.isnan(y)]
        if not len(known) or known.min() == known.max():
            return False  # no positives or no negatives: the usual refusal says so
        gap = horizon_days(label, data.horizon or 90)
        try:
            split, _ = adaptive_time_split(
                df[data.time],
                df[label].notna(),
                cfg.split.test_days,
                cfg.split.validation_days,
                gap,
            )
        except ValueError:
            return True
        part = split.assign(df[data.time])
        for p in PARTS:
            yp = y[(part == p).to_numpy(dtype=bool) & ~np.isnan(y)]
            pos = int(yp.sum())
            if len(yp) < cfg.min_rows or min(pos, len(yp) - pos) < cfg.min_positives:
                return True
    return False


def time_folds(times: np.ndarray, y: np.ndarray, folds: int, gap_days: int) -> list:
    """Forward-chaining (train, test) positions: later dates held out, a gap before each.

    The dates with at least a fifth of the rows at least ``gap_days`` before them are cut
    into ``folds`` consecutive blocks; each block is held out and the model fitted on every
    row dated ``gap_days`` or more before the block's first date. A fold without both
    classes on either side is left out.
    """
    t = times.astype("datetime64[D]")
    gap = np.timedelta64(gap_days, "D")
    dates = np.unique(t)
    floor = max(50, len(t) // 5)
    usable = np.array([d for d in dates if (t <= d - gap).sum() >= floor])
    out = []
    for block in np.array_split(usable, min(folds, len(usable))) if len(usable) else []:
        te = np.flatnonzero(np.isin(t, block))
        tr = np.flatnonzero(t <= block[0] - gap)
        if len(np.unique(y[te])) == 2 and len(np.unique(y[tr])) == 2:
            out.append((tr, te))
    return out


def interval(values: np.ndarray, test_share: float) -> tuple[float, float, float]:
    """Mean of the fold figures and its corrected t interval (Nadeau and Bengio, 2003).

    The variance of the mean over J folds that share training rows is
    ``(1 / J + n_test / n_train) * s^2``, not ``s^2 / J``.
    """
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) < 2:
        m = float(v.mean()) if len(v) else float("nan")
        return m, float("nan"), float("nan")
    m = float(v.mean())
    se = np.sqrt((1 / len(v) + test_share / (1 - test_share)) * v.var(ddof=1))
    t = stats.t.ppf(0.5 + CONFIDENCE / 2, len(v) - 1)
    return m, float(m - t * se), float(m + t * se)


def fold_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The figures of one held-out fold, as :func:`training.metrics.binary_metrics` defines them.

    Computed on sorted arrays (:func:`training.intervals.sorted_metrics`): scikit-learn's
    per-call checks cost more than the figures on folds of a hundred rows.
    """
    order = np.argsort(p, kind="stable")
    ys, ps = y[order][None, :], p[order][None, :]
    out = {k: float(v[0]) for k, v in sorted_metrics(ys, ps, CV_METRICS).items()}
    out["brier"] = float(np.mean((p - y) ** 2))
    return out


def _fold_splits(y: np.ndarray, groups, seed: int, folds: int, repeats: int):
    """(train, test) row positions of every fold of every repeat."""
    if groups is None:
        rskf = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
        return list(rskf.split(np.zeros(len(y)), y))
    out = []
    for r in range(repeats):
        sgkf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        out += list(sgkf.split(np.zeros(len(y)), y, groups))
    return out


def _inner(y: np.ndarray, groups, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit and calibration positions (4:1, stratified, grouped) within a fold's training rows."""
    if groups is None:
        fit_at, cal_at = next(StratifiedKFold(5, shuffle=True, random_state=seed).split(y, y))
    else:
        splitter = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
        fit_at, cal_at = next(splitter.split(np.zeros(len(y)), y, groups))
    return fit_at, cal_at


def _fit_head(spec, cfg: TrainConfig, label: str, x, y, groups, seed: int):
    """The head fitted as training fits it, on ``x``: LightGBM, early stopping, calibrator."""
    fit_at, cal_at = _inner(y, groups, seed)
    params = _params(cfg.lightgbm, spec, label, cfg.seed, cfg.threads)
    booster = fit_lightgbm(
        spec, x[fit_at], y[fit_at], x[cal_at], y[cal_at],
        params, cfg.lightgbm.max_trees, cfg.lightgbm.early_stopping_rounds,
    )  # fmt: skip
    raw_cal = booster.predict(x[cal_at], raw_score=True)
    head = Head(label, booster, Calibrator.fit(raw_cal, y[cal_at], SMALL_CALIBRATION))
    lr = logistic_baseline(spec, cfg.logistic.C, cfg.logistic.max_iter, cfg.seed)
    lr.fit(x[fit_at], y[fit_at])
    lr_cal = Calibrator.fit(lr.decision_function(x[cal_at]), y[cal_at], "platt")
    return head, lr, lr_cal, (fit_at, cal_at)


def fit(data, cfg: TrainConfig, progress=None):
    """Train as ``radar train`` does: cross-validated where a table is too small to split.

    Else :func:`training.train.train` with its held-out split.
    """
    if needs_cross_validation(data, cfg):
        return train_small(data, cfg, progress)
    return train(data, cfg, progress)


def train_small(data, cfg: TrainConfig, progress=None):
    """See :func:`_train_small`; BLAS on one thread (tiny fits, as LightGBM's below)."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    with threadpool_limits(1):
        return _train_small(data, cfg, progress)


def _train_small(data, cfg: TrainConfig, progress=None):
    """Train a small table's head(s) with cross-validated figures and their intervals.

    Raises:
        ValueError: When no head can be told from chance (the message gives each head's
            cross-validated ROC-AUC and interval).

    """
    step = progress or (lambda *_: None)
    n_folds, n_repeats = cfg.cv_folds, cfg.cv_repeats
    df = data.frame
    grouped = f" grouped by {data.entity}" if data.entity else ""
    how = (
        f"forward-chaining cross-validation by {data.time} (up to {n_folds} folds of later "
        "dates, each fitted on dates a horizon or more before it)"
        if data.time
        else f"{n_folds}-fold cross-validation repeated {n_repeats} times"
    )
    warnings = [
        f"{len(df):,} rows are too few for a held-out split (each part needs {cfg.min_rows:,} "
        f"rows and {cfg.min_positives} positives and negatives): every figure is the mean of "
        f"{how}, with its {CONFIDENCE:.0%} interval; calibration is Platt (too few rows for "
        "isotonic blocks)"
    ]
    if data.time is None:
        warnings.append(
            f"no --time column: the folds are stratified random draws{grouped} (seed "
            f"{cfg.split.random_seed}), so the evaluation is not temporal: it says how well "
            "the model ranks customers like these at the same moment, not how it will do on "
            "later data"
        )
    # Logged as it applied. One thread: on folds of a few hundred rows OpenMP's start-up and
    # spin-waits cost more than the trees (on a busy 2-core machine, several times more).
    cfg = cfg.model_copy(update={"calibration": SMALL_CALIBRATION, "threads": 1})
    heads: dict[str, Head] = {}
    results: dict[str, HeadResult] = {}
    evaluation: list[dict] = []
    stats_rows: list[dict] = []
    figures: dict[str, dict] = {}
    splits: dict = {}
    part_rows: dict = {}
    refused: list[str] = []
    seed = cfg.split.random_seed
    for li, label in enumerate(data.labels):
        y_all = df[label].to_numpy(dtype=float, na_value=np.nan)
        rows = np.flatnonzero(~np.isnan(y_all))
        y = y_all[rows]
        groups = df[data.entity].to_numpy()[rows] if data.entity else None
        x = data.spec.matrix(df.iloc[rows])
        pos = int(y.sum())
        if min(pos, len(y) - pos) < n_folds * 2:
            refused.append(
                f"{label}: skipped, {min(pos, len(y) - pos)} "
                f"{'positives' if pos <= len(y) - pos else 'negatives'} in {len(y):,} rows: "
                f"too few to cross-validate ({n_folds} folds need at least {n_folds * 2})"
            )
            continue
        temporal = data.time is not None
        gap = horizon_days(label, data.horizon or 90) if temporal else 0
        if temporal:
            times = df[data.time].to_numpy()[rows]
            folds = time_folds(times, y, n_folds, gap)
            if len(folds) < 2:
                refused.append(
                    f"{label}: skipped, the dates span too little for a held-out time split "
                    f"or two forward-chaining folds with a {gap}-day gap (found "
                    f"{len(folds)}): add history, or leave --time out for a random split"
                )
                continue
        else:
            folds = _fold_splits(y, groups, seed, n_folds, n_repeats)
        per_fold: dict[str, list[dict]] = {MODEL: [], LOGISTIC: []}
        oof = {MODEL: np.full(len(y), np.nan), LOGISTIC: np.full(len(y), np.nan)}
        first_parts = None
        for k, (tr, te) in enumerate(folds):
            step("cross-validating", li * len(folds) + k, len(data.labels) * len(folds))
            head, lr, lr_cal, (fit_at, cal_at) = _fit_head(
                data.spec,
                cfg,
                label,
                x[tr],
                y[tr],
                None if groups is None else groups[tr],
                seed + k,
            )
            p = {MODEL: head.proba(x[te]), LOGISTIC: lr_cal(lr.decision_function(x[te]))}
            for name, pv in p.items():
                per_fold[name].append(fold_metrics(y[te], pv))
                if temporal or k < n_folds:  # the first repeat: every row held out once
                    oof[name][te] = pv
            if k == 0:
                first_parts = np.full(len(df), None, dtype=object)
                first_parts[rows[tr[fit_at]]] = "train"
                first_parts[rows[tr[cal_at]]] = "validation"
                first_parts[rows[te]] = "test"
                stats_rows += [
                    part_stats(label, part, y[idx])
                    for part, idx in (
                        ("train", tr[fit_at]),
                        ("validation", tr[cal_at]),
                        ("test", te),
                    )
                ]
                part_rows[label] = {
                    "train": len(fit_at),
                    "validation": len(cal_at),
                    "test": len(te),
                }
        share = float(np.mean([len(te) / (len(tr) + len(te)) for tr, te in folds]))
        repeats = 1 if temporal else n_repeats
        figures[label] = {
            name: {m: interval([f.get(m) for f in fs], share) for m in CV_METRICS}
            for name, fs in per_fold.items()
        }
        auc, low, high = figures[label][MODEL]["roc_auc"]
        if not low > 0.5:
            refused.append(
                f"{label}: not registered, cross-validated ROC-AUC {auc:.3f} (95% interval "
                f"{low:.3f}-{high:.3f}, {len(folds)} folds on {len(y):,} rows) "
                "cannot be told from chance (0.5)"
            )
            continue
        step("fitting the served head", li, len(data.labels))
        head, _, _, _ = _fit_head(data.spec, cfg, label, x, y, groups, seed)
        head.threshold = operating_point(pd.Series(y), pd.Series(oof[MODEL]), cfg.top_share)
        held = ~np.isnan(oof[MODEL])  # every row; with dates, those of a held-out block
        heads[label] = head
        splits[label] = CrossValidation(
            seed, data.entity, len(folds) // repeats, repeats, first_parts, gap, data.time
        )
        for name in (MODEL, LOGISTIC):
            whole = binary_metrics(y[held], oof[name][held], head.threshold)
            record = {"head": label, "predictor": name, "segment": "all", **whole}
            for m in CV_METRICS:
                record[m], record[f"{m}_low"], record[f"{m}_high"] = figures[label][name][m]
            evaluation.append(record)
        test = pd.DataFrame({"y": pd.Series(y[held], dtype="Float64")}, index=df.index[rows[held]])
        test[MODEL], test[LOGISTIC] = oof[MODEL][held], oof[LOGISTIC][held]
        sample = x[sample_positions(len(x), cfg.shap_sample, cfg.seed)]
        results[label] = HeadResult(
            label=label,
            best_iteration=head.booster.num_trees(),
            validation_log_loss_raw=float("nan"),
            validation_log_loss_calibrated=figures[label][MODEL]["log_loss"][0],
            test=test,
            importance=pd.Series(
                head.booster.feature_importance("gain"), index=data.spec.names
            ).sort_values(ascending=False),
            contributions=head.booster.predict(sample, pred_contrib=True),
            contribution_rows=sample,
        )
    warnings += refused
    if not heads:
        raise ValueError(
            "no head to register: " + "; ".join(refused) + ". The features carry no signal "
            "the folds agree on: check that the label column is the outcome, and add rows or "
            "features that could predict it."
        )
    primary = next(iter(heads))
    horizons = {h: horizon_days(h, data.horizon or 90) for h in heads}
    bundle = ModelBundle(
        data.spec,
        heads,
        metadata={
            "labels": list(heads),
            "horizons": horizons,
            "split": splits[primary].as_dict(),
            "splits": {h: s.as_dict() for h, s in splits.items()},
            "rows": part_rows[primary],
            "source": data.source,
            "seed": cfg.seed,
            "feature_config": None,
            "typical": typical_values(data.spec, data.spec.matrix(df)),
            "calibration": SMALL_CALIBRATION,
            "cross_validation": {
                h: {
                    name: {
                        m: dict(zip(("value", "low", "high"), v, strict=True)) for m, v in f.items()
                    }
                    for name, f in figures[h].items()
                }
                for h in heads
            },  # fmt: skip
        },
    )
    sample_rows = df.iloc[sample_positions(len(df), cfg.shap_sample, cfg.seed)]
    return TrainingResult(
        bundle,
        splits[primary],
        evaluation,
        results,
        part_rows[primary],
        cfg,
        global_drivers(bundle, sample_rows),
        splits=splits,
        part_rows=part_rows,
        label_stats=[s for s in stats_rows if s["head"] in heads],
        warnings=warnings,
    )
