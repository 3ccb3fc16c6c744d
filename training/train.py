"""Fit the heads, calibrate them, and evaluate them beside the baselines on a later window."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from features.catalogue import horizon_days
from features.io import file_sha256
from features.store import SnapshotStore
from training.config import TrainConfig
from training.data import FeatureSpec, TimeSplit, time_split
from training.explain import global_drivers
from training.metrics import binary_metrics, f1_threshold, top_share_mask
from training.model import Calibrator, Head, ModelBundle, enforce_horizon_order, fit_lightgbm
from training.model import lightgbm_params as _params

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]

MODEL = "model"
LOGISTIC = "logistic"
RULE = "rule_score"
ORACLE = "oracle"
ALL = "all"
PARTS = ("train", "validation", "test")


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
    time: str = "as_of"
    entity: str | None = "account_id"
    segment: str | None = "segment"
    health: str | None = "health_score"
    oracle: pd.DataFrame | None = None
    source: dict = field(default_factory=dict)
    horizon: int | None = None  # label horizon in days when the label's name does not say


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
    split: TimeSplit | None = None  # the head's own split (the shared one for most heads)
    rows: dict[str, int] = field(default_factory=dict)  # rows in its windows, label known


@dataclass
class TrainingResult:
    """A trained bundle with its split, evaluation table and per-head details.

    ``split`` and ``rows`` are the split shared by the 30/90-day heads; a head with a longer
    horizon has its own in ``heads[label].split`` (and ``splits``).
    """

    bundle: ModelBundle
    split: TimeSplit
    evaluation: list[dict]
    heads: dict[str, HeadResult]
    rows: dict[str, int]
    config: TrainConfig
    global_drivers: pd.DataFrame  # average effect per head and feature, on a test sample

    @property
    def splits(self) -> dict[str, TimeSplit]:
        """Each head's split."""
        return {h: r.split or self.split for h, r in self.heads.items()}


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
    """Split by time, fit and calibrate every head, and evaluate it beside the baselines.

    Raises:
        ValueError: When a label column is missing or the data is too short to split.

    """
    step = progress or (lambda *_: None)
    df = data.frame
    for col in (data.time, *data.labels):
        if col not in df.columns:
            raise ValueError(f"column {col!r} not found in the table")
    horizons = {label: horizon_days(label, data.horizon or 90) for label in data.labels}
    gaps = cfg.gaps(horizons)
    # One split per gap: heads of the same gap share windows (and the horizon ordering).
    groups: dict[int, list[str]] = {}
    for label in data.labels:
        groups.setdefault(gaps[label], []).append(label)
    splits: dict[int, TimeSplit] = {}
    frames: dict[int, dict[str, pd.DataFrame]] = {}
    x: dict[int, dict[str, np.ndarray]] = {}
    for gap, members in groups.items():
        labelled = df[members].notna().all(axis=1)
        try:
            split = time_split(
                df[data.time], labelled, cfg.split.test_days, cfg.split.validation_days, gap
            )
        except ValueError as exc:
            if len(groups) == 1:
                raise
            others = [h for h in data.labels if h not in members]
            raise ValueError(
                f"{', '.join(members)} (split with a {gap}-day gap): {exc}; to train the other "
                f"heads only, set heads: [{', '.join(others)}] in the training configuration"
            ) from exc
        part = split.assign(df[data.time])
        frames[gap] = {p: df[(part == p).to_numpy(dtype=bool)] for p in PARTS}
        x[gap] = {p: data.spec.matrix(f) for p, f in frames[gap].items()}
        splits[gap] = split
        log.info("split %s for %s, rows %s", split.as_dict(), members, _rows(frames[gap]))
    shared = min(groups)
    split, rows = splits[shared], _rows(frames[shared])

    total = len(data.labels) * 3
    heads: dict[str, Head] = {}
    raw_val: dict[str, float] = {}
    for i, label in enumerate(data.labels):
        step("training heads", 3 * i, total)
        g = gaps[label]
        y = {p: frames[g][p][label].to_numpy(dtype=float, na_value=np.nan) for p in PARTS}
        keep = {p: ~np.isnan(y[p]) for p in PARTS}
        params = _params(cfg.lightgbm, data.spec, label, cfg.seed, cfg.threads)
        booster = fit_lightgbm(
            data.spec,
            x[g]["train"][keep["train"]],
            y["train"][keep["train"]],
            x[g]["validation"][keep["validation"]],
            y["validation"][keep["validation"]],
            params,
            cfg.lightgbm.max_trees,
            cfg.lightgbm.early_stopping_rounds,
        )
        score_val = booster.predict(x[g]["validation"][keep["validation"]], raw_score=True)
        yv = y["validation"][keep["validation"]]
        calibrator = Calibrator.fit(score_val, yv, cfg.calibration, cfg.min_block(len(yv)))
        heads[label] = Head(label, booster, calibrator)
        raw_val[label] = log_loss(yv, expit(score_val), labels=[0, 1])

    bundle = ModelBundle(
        data.spec,
        heads,
        metadata={
            "labels": list(data.labels),
            "split": split.as_dict(),
            "rows": rows,
            # Heads with a split of their own (a horizon longer than the shared gap).
            "head_splits": {h: splits[g].as_dict() for h, g in gaps.items() if g != shared},
            "source": data.source,
            "seed": cfg.seed,
            # Scoring builds snapshots with the configuration the model was trained on.
            "feature_config": data.source.get("manifest", {}).get("config"),
            # The training window's medians: explanations cite a value against them.
            "typical": typical_values(data.spec, x[shared]["train"]),
        },
    )
    served = {
        g: {p: _predict(bundle, x[g][p], frames[g][p].index) for p in ("validation", "test")}
        for g in groups
    }

    evaluation: list[dict] = []
    results: dict[str, HeadResult] = {}
    for i, label in enumerate(data.labels):
        step("evaluating heads", 3 * i + 1, total)
        head, g = heads[label], gaps[label]
        fr, sv = frames[g], served[g]
        preds = {MODEL: (sv["validation"][f"p_{label}"], sv["test"][f"p_{label}"])}
        preds |= _baselines(data, cfg, label, fr, x[g])
        table, val_ll = {}, {}
        y_val = fr["validation"][label]
        y_test = fr["test"][label]
        # Only rows whose label is known (all of them for the fixed-window heads).
        test = pd.DataFrame({"y": y_test.astype("Float64")}, index=fr["test"].index)
        if data.segment and data.segment in fr["test"]:
            test["segment"] = fr["test"][data.segment].astype("str")
        for name, (pv, pt) in preds.items():
            threshold = _operating_point(y_val, pv, cfg.top_share)
            if name == MODEL:
                head.threshold = threshold
            test[name] = pt
            table[name] = threshold
            ok = y_val.notna().to_numpy() & pv.notna().to_numpy()
            val_ll[name] = log_loss(y_val[ok].astype(float), pv[ok].astype(float), labels=[0, 1])
        test = test[test["y"].notna().to_numpy()]
        evaluation += _evaluate(label, test, table)

        step("explaining heads", 3 * i + 2, total)
        known = np.flatnonzero(y_test.notna().to_numpy())  # the rows the head is for
        rows_x = x[g]["test"][known[_sample(len(known), cfg.shap_sample, cfg.seed)]]
        results[label] = HeadResult(
            label=label,
            best_iteration=head.booster.num_trees(),
            validation_log_loss_raw=raw_val[label],
            validation_log_loss_calibrated=val_ll[MODEL],
            test=test,
            importance=pd.Series(
                head.booster.feature_importance("gain"), index=data.spec.names
            ).sort_values(ascending=False),
            contributions=head.booster.predict(rows_x, pred_contrib=True),
            contribution_rows=rows_x,
            split=splits[g],
            rows={p: int(fr[p][label].notna().sum()) for p in PARTS},
        )
    step("evaluating heads", total, total)
    test_rows = frames[shared]["test"]
    sample = test_rows.iloc[_sample(len(test_rows), cfg.shap_sample, cfg.seed)]
    return TrainingResult(
        bundle, split, evaluation, results, rows, cfg, global_drivers(bundle, sample)
    )


def _rows(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    return {p: len(f) for p, f in frames.items()}


def _predict(bundle: ModelBundle, x: np.ndarray, index: pd.Index) -> pd.DataFrame:
    out = pd.DataFrame({f"p_{h}": head.proba(x) for h, head in bundle.heads.items()}, index=index)
    return enforce_horizon_order(out)


def _operating_point(y: pd.Series, p: pd.Series, top_share: float | None) -> float:
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
) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Validation and test probabilities of each baseline, calibrated on validation."""
    out: dict[str, tuple[pd.Series, pd.Series]] = {}
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
        fill = np.nanmedian(h["train"])
        val, test = (sign * np.where(np.isnan(h[p]), fill, h[p]) for p in ("validation", "test"))
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
    return out


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


def _sample(n: int, size: int, seed: int) -> np.ndarray:
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
        spec=FeatureSpec.from_catalogue(),
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


def read_table(path: str | Path) -> pd.DataFrame:
    """A Parquet or CSV file as a DataFrame."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    if p.suffix.lower() == ".parquet":
        return pd.read_parquet(p)
    if p.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(p)
    raise ValueError(f"{p}: expected a .parquet or .csv file")


def from_table(
    path: str | Path,
    label: str,
    time: str,
    *,
    horizon: int | None = None,
    entity: str | None = None,
    segment: str | None = None,
    exclude: tuple[str, ...] = (),
) -> TrainingData:
    """Training data from a feature table of one's own: one label, one time column.

    Every other column is a feature (numbers and booleans numeric, text categorical) unless
    it is the entity, in ``exclude``, or a date.

    Raises:
        ValueError: Naming the column, row (1-based) and value when the time or label column
            holds something that is not a date or 0/1.

    """
    df = read_table(path)
    name = Path(path).name
    for col in (label, time, entity, segment, *exclude):
        if col and col not in df.columns:
            raise ValueError(f"{name}: column {col!r} not found (columns: {list(df.columns)})")
    times = pd.to_datetime(df[time], errors="coerce")
    bad = times.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{name}.{time}: row {i + 1}: {_cell(df[time].iloc[i])} is not a date "
            f"({int(bad.sum())} row(s) like it)"
        )
    y = df[label]
    as_number = pd.to_numeric(y.astype("object").replace({True: 1, False: 0}), errors="coerce")
    bad = (y.notna() & ~as_number.isin([0, 1])).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name}.{label}: row {i + 1}: {_cell(y.iloc[i])} is not a 0/1 label "
            f"({int(bad.sum())} row(s) like it)"
        )
    frame = df.assign(**{time: times.astype("datetime64[s]"), label: as_number.astype("Float64")})
    dates = {c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])}
    spec = FeatureSpec.infer(frame, {label, time, *(c for c in (entity,) if c), *exclude, *dates})
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
            "time": time,
        },
        horizon=horizon,
    )


def _cell(value: object) -> str:
    """A value as a reader would type it: text quoted, numbers plain."""
    return repr(value) if isinstance(value, str) else str(value)
