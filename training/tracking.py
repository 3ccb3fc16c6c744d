"""MLflow: log a training run, register the bundle, promote a challenger, compare runs."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from sklearn.metrics import log_loss, roc_auc_score

from training import plots
from training.data import load_snapshots
from training.model import ModelBundle
from training.train import (
    ALL,
    LOGISTIC,
    MODEL,
    ORACLE,
    RULE,
    TrainingData,
    TrainingResult,
    from_table,
)

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
CHALLENGER = "challenger"
CHAMPION = "champion"
KIND_TAG = "radar.kind"
SUMMARY_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")


def tracking_uri(uri: str | None = None) -> str:
    """Point MLflow at ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    resolved = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    return resolved


class RenewalRadarModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper of a :class:`ModelBundle`: predict returns probabilities.

    Input: one row per account and date with the feature columns (absent ones are missing);
    output: ``p_churn_30d``, ``p_churn_90d``, ``p_expansion_30d``, ``p_expansion_90d``.
    """

    def load_context(self, context) -> None:  # noqa: D102 (MLflow's hook)
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: D102
        return self.bundle.predict(pd.DataFrame(model_input))


def signature(bundle: ModelBundle) -> ModelSignature:
    """Every feature optional (missing is allowed, as in training); probabilities out."""
    inputs = [ColSpec("double", c, required=False) for c in bundle.spec.numeric]
    inputs += [ColSpec("string", c, required=False) for c in bundle.spec.categorical]
    outputs = [ColSpec("double", f"p_{h}") for h in bundle.heads]
    return ModelSignature(Schema(inputs), Schema(outputs))


def input_example(spec, frame: pd.DataFrame) -> pd.DataFrame:
    """A few rows as the signature reads them: numbers from the model's float matrix.

    An integer column read as is would not match the signature's doubles (MLflow refuses
    int64 for a double column); categories are their text, missing as None.
    """
    x = spec.matrix(frame)
    out = pd.DataFrame(x[:, : len(spec.numeric)], columns=list(spec.numeric))
    for col in spec.categorical:
        values = frame[col] if col in frame else pd.Series([None] * len(frame))
        out[col] = [None if pd.isna(v) else str(v) for v in values]
    return out


def git_commit() -> str:
    """The checked-out commit of this code (``-dirty`` when it has local changes)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


@dataclass(frozen=True)
class TrackedRun:
    """Where a training run was logged and which model version it registered."""

    run_id: str
    experiment_id: str
    model_name: str
    version: str | None
    tracking_uri: str


def _flat(prefix: str, obj) -> dict[str, str]:
    out = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flat(f"{name}.", value)
        else:
            out[name] = str(value)
    return out


def log_training(
    result: TrainingResult,
    data: TrainingData,
    *,
    model_name: str | None = None,
    uri: str | None = None,
) -> TrackedRun:
    """Log one training as a parent run (child run per head) and register its bundle.

    The new model version gets the ``challenger`` alias; promotion to ``champion`` is
    :func:`promote`'s decision.
    """
    cfg = result.config
    resolved = tracking_uri(uri)
    name = model_name or cfg.registered_model
    experiment = _experiment(cfg.experiment, resolved)
    source = data.source
    with mlflow.start_run(run_name=source.get("run_name")) as run:
        mlflow.set_tags(
            {
                KIND_TAG: "train",
                "radar.git_commit": git_commit(),
                "radar.data_fingerprint": source.get("fingerprint", ""),
                "radar.source_kind": source.get("kind", ""),
                "radar.source_path": source.get("path", ""),
                "radar.labels": ",".join(data.labels),
                "radar.time": data.time or "",
                "radar.entity": data.entity or "",
            }
        )
        params = _flat("", cfg.model_dump(mode="json")) | _flat("split.", result.split.as_dict())
        for head, split in result.splits.items():  # each head's own windows (gap = horizon)
            params |= _flat(f"split.{head}.", split.as_dict())
        params |= {f"rows.{k}": str(v) for k, v in result.rows.items()}
        params |= {f"data.{k}": str(v) for k, v in source.items() if k != "manifest"}
        mlflow.log_params(params)
        mlflow.log_metrics(_metrics(result))
        mlflow.log_dict(result.evaluation, "evaluation.json")
        mlflow.log_dict(result.split.as_dict() | {"rows": result.rows}, "split.json")
        mlflow.log_text(
            result.global_drivers.to_csv(index=False, float_format="%.4f"), "global_drivers.csv"
        )
        if "manifest" in source:
            mlflow.log_dict(source["manifest"], "data/manifest.json")
        for label, head in result.heads.items():
            _log_head(result, label, head, run.info.run_id)

        with tempfile.TemporaryDirectory() as tmp:
            bundle_dir = result.bundle.save(Path(tmp) / "bundle")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                artifacts={"bundle": str(bundle_dir)},
                signature=signature(result.bundle),
                input_example=input_example(data.spec, data.frame.head(3)),
                registered_model_name=name,
                pip_requirements=_requirements(),
            )
    version = str(info.registered_model_version) if info.registered_model_version else None
    if version is not None:
        client = MlflowClient()
        client.set_registered_model_alias(name, CHALLENGER, version)
        client.set_model_version_tag(name, version, "run_id", run.info.run_id)
        for label in data.labels:
            auc = _lookup(result.evaluation, label, MODEL, "roc_auc")
            if auc is not None:
                client.set_model_version_tag(name, version, f"test_roc_auc.{label}", f"{auc:.4f}")
    return TrackedRun(run.info.run_id, experiment.experiment_id, name, version, resolved)


def _experiment(name: str, uri: str):
    """Get or create the experiment; a sqlite store keeps artifacts in ``mlruns`` beside it.

    (MLflow's own default is ``./mlruns`` under the working directory, wherever that is.)
    Under ``mlflow run``, the run it created (``MLFLOW_RUN_ID``) decides the experiment.
    """
    launched = os.environ.get("MLFLOW_RUN_ID")
    if launched:
        return mlflow.get_experiment(MlflowClient().get_run(launched).info.experiment_id)
    if mlflow.get_experiment_by_name(name) is None and uri.startswith("sqlite:///"):
        root = Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns"
        mlflow.create_experiment(name, artifact_location=root.as_uri())
    return mlflow.set_experiment(name)


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ("lightgbm", "numpy", "pandas", "scikit-learn", "scipy", "mlflow")
    return [f"{p}=={version(p)}" for p in pkgs]


def _lookup(evaluation, head, predictor, name, segment=ALL):
    for r in evaluation:
        if (r["head"], r["predictor"], r["segment"]) == (head, predictor, segment):
            return r.get(name)
    return None


def _metrics(result: TrainingResult) -> dict[str, float]:
    """``head/predictor/metric`` on the whole test window; per segment for the model."""
    out = {}
    for r in result.evaluation:
        if r["segment"] != ALL and r["predictor"] != MODEL:
            continue
        where = r["predictor"] if r["segment"] == ALL else f"{r['predictor']}/{r['segment']}"
        for key, value in r.items():
            if key in ("head", "predictor", "segment") or value is None:
                continue
            out[f"{r['head']}/{where}/{key}"] = float(value)
    for label, head in result.heads.items():
        out[f"{label}/model/best_iteration"] = float(head.best_iteration)
        out[f"{label}/validation/log_loss_raw"] = head.validation_log_loss_raw
        out[f"{label}/validation/log_loss_calibrated"] = head.validation_log_loss_calibrated
    return out


def _log_head(result: TrainingResult, label: str, head, parent_id: str) -> None:
    """Figures and importance in the parent run; the head's own figures in a child run."""
    spec = result.bundle.spec
    figures = {
        "calibration.png": plots.calibration_figure(label, head.test),
        "lift.png": plots.lift_figure(label, head.test),
        "roc_pr.png": plots.roc_pr_figure(label, head.test),
        "feature_importance.png": plots.importance_figure(label, head.importance),
        "shap_summary.png": plots.shap_summary_figure(
            label, head.contributions, head.contribution_rows, spec.names
        ),
        "top_drivers.png": plots.global_drivers_figure(label, result.global_drivers),
    }
    for file, fig in figures.items():
        mlflow.log_figure(fig, f"{label}/{file}")
        plots.plt.close(fig)
    mlflow.log_dict(
        {k: float(v) for k, v in head.importance.items()}, f"{label}/feature_importance.json"
    )
    with mlflow.start_run(run_name=label, nested=True, parent_run_id=parent_id):
        mlflow.set_tags({KIND_TAG: "head", "radar.head": label})
        mlflow.log_params(
            {
                "label": label,
                "best_iteration": head.best_iteration,
                "threshold": result.bundle.heads[label].threshold,
                "calibration": result.config.calibration,
            }
        )
        mlflow.log_metrics(
            {
                f"{r['predictor']}/{k}": float(v)
                for r in result.evaluation
                if r["head"] == label and r["segment"] == ALL
                for k, v in r.items()
                if k not in ("head", "predictor", "segment") and v is not None
            }
        )


def load_bundle(model_uri: str) -> ModelBundle:
    """The :class:`ModelBundle` behind a registered pyfunc (``models:/name@alias``)."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().bundle


@dataclass(frozen=True)
class Promotion:
    """The outcome of :func:`promote`."""

    promoted: bool
    version: str
    previous_champion: str | None
    reason: str
    comparison: pd.DataFrame | None = None


def _score(bundle: ModelBundle, frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    p = bundle.predict(frame)
    out = {}
    for label in bundle.heads:
        if label not in frame:
            continue
        ok = frame[label].notna().to_numpy()
        y = frame[label][ok].to_numpy(dtype=float)
        q = p[f"p_{label}"][ok].to_numpy()
        out[label] = {
            "roc_auc": float(roc_auc_score(y, q)) if 0 < y.sum() < len(y) else np.nan,
            "log_loss": float(log_loss(y, q, labels=[0, 1])),
        }
    return out


def promote(
    model_name: str,
    test_frame_for,
    version: str | None = None,
    tolerance: float = 0.0,
) -> Promotion:
    """Move ``champion`` to ``version`` (default: the challenger) if it is at least as good.

    "At least as good" is judged on the challenger's own test window, scoring both versions on
    the same rows: for every head, ROC-AUC no lower and log loss no higher than the champion's,
    each within ``tolerance``. Without a champion, the version is promoted.

    Args:
        model_name: Registered model name.
        test_frame_for: Callable taking the challenger's training run and returning its test
            window rows (features and labels).
        version: Version to promote; default the one aliased ``challenger``.
        tolerance: Allowed shortfall on each metric.

    """
    client = MlflowClient()
    if version is None:
        version = client.get_model_version_by_alias(model_name, CHALLENGER).version
    version = str(version)
    try:
        champion = str(client.get_model_version_by_alias(model_name, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        champion = None
    if champion == version:
        return Promotion(False, version, champion, f"version {version} is already the champion")
    if champion is None:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        reason = f"no champion yet: version {version} becomes the champion"
        client.set_model_version_tag(model_name, version, "promotion", reason)
        return Promotion(True, version, None, reason)

    run = client.get_run(client.get_model_version(model_name, version).run_id)
    frame = test_frame_for(run)
    new = _score(load_bundle(f"models:/{model_name}/{version}"), frame)
    old = _score(load_bundle(f"models:/{model_name}/{champion}"), frame)
    rows, worse = [], []
    for label, m in new.items():
        ref = old.get(label)
        if ref is None:
            worse.append(f"{label}: the champion has no such head to compare with")
            continue
        rows.append({"head": label, **{f"challenger_{k}": v for k, v in m.items()}})
        rows[-1] |= {f"champion_{k}": v for k, v in ref.items()}
        if m["roc_auc"] < ref["roc_auc"] - tolerance:
            worse.append(f"{label}: ROC-AUC {m['roc_auc']:.4f} < champion {ref['roc_auc']:.4f}")
        if m["log_loss"] > ref["log_loss"] + tolerance:
            worse.append(f"{label}: log loss {m['log_loss']:.4f} > champion {ref['log_loss']:.4f}")
    comparison = pd.DataFrame(rows)
    params = run.data.params
    if params.get("split.kind") == "random":
        window = f"random test part (seed {params.get('split.seed')})"
    else:
        window = f"{params.get('split.test_start')}..{params.get('split.test_end')}"
    if worse:
        reason = f"not promoted: on the test window {window}, " + "; ".join(worse)
        client.set_model_version_tag(model_name, version, "promotion", reason)
        return Promotion(False, version, champion, reason, comparison)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    reason = (
        f"version {version} replaces version {champion}: at least as good on every head "
        f"on the test window {window}"
    )
    client.set_model_version_tag(model_name, version, "promotion", reason)
    return Promotion(True, version, champion, reason, comparison)


def rows_of_test_window(run) -> pd.DataFrame:
    """The test-window rows of the data a training run was fitted on, read again from disk."""
    tags, params = run.data.tags, run.data.params
    kind, path = tags.get("radar.source_kind"), tags.get("radar.source_path", "")
    time = tags.get("radar.time", "as_of")
    if not Path(path).exists():
        raise FileNotFoundError(
            f"run {run.info.run_id} was trained on {path!r}, which is no longer there: "
            "cannot score the champion on the same test window"
        )
    if kind == "snapshots":
        frame = load_snapshots(path).frame
    elif kind == "table":
        if params.get("split.kind") == "random":  # the same seeded split, drawn again
            return _random_test_rows(path, params)
        frame = from_table(path, params["data.label"], time).frame
    else:
        raise ValueError(f"run {run.info.run_id} has no record of its training data")
    start, end = pd.Timestamp(params["split.test_start"]), pd.Timestamp(params["split.test_end"])
    window = frame[time].between(start, end)
    heads = [h for h in frame.columns if f"split.{h}.test_start" in params]
    if not heads:
        return frame[window]
    # Each head is judged on its own test window (its gap follows its horizon): the rows of
    # every head's window, a head's label blanked outside its own.
    frame = frame.copy()
    within = {}
    for h in heads:
        lo, hi = (pd.Timestamp(params[f"split.{h}.test_{e}"]) for e in ("start", "end"))
        within[h] = frame[time].between(lo, hi)
    keep = np.logical_or.reduce([w.to_numpy() for w in within.values()])
    for h, w in within.items():
        frame[h] = frame[h].where(w)
    return frame[keep]


def _random_test_rows(path: str, params: dict) -> pd.DataFrame:
    from training.splits import random_split

    label, entity = params["data.label"], params.get("data.entity") or None
    frame = from_table(path, label, None, entity=entity).frame
    groups = frame[entity] if entity else None
    split = random_split(frame[label], int(params["split.seed"]), groups)
    return frame[split.assign(frame[label]).eq("test").to_numpy(dtype=bool)]


def compare_runs(experiment: str, last: int = 5) -> pd.DataFrame:
    """The ``last`` training runs side by side: one column per run, one row per figure."""
    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string=f"tags.`{KIND_TAG}` = 'train'",
        order_by=["attributes.start_time DESC"],
        max_results=last,
    )
    if runs.empty:
        return pd.DataFrame()
    rows: dict[str, pd.Series] = {
        "started": runs["start_time"].dt.strftime("%Y-%m-%d %H:%M"),
        "git commit": runs.get("tags.radar.git_commit", pd.Series("", index=runs.index)).str[:12],
        "data fingerprint": runs.get("tags.radar.data_fingerprint"),
        "data": runs.get("tags.radar.source_path"),
        "test window": runs.get("params.split.test_start")
        + ".."
        + runs.get("params.split.test_end"),
        "rows train/val/test": runs.get("params.rows.train")
        + "/"
        + runs.get("params.rows.validation")
        + "/"
        + runs.get("params.rows.test"),
    }
    heads = sorted({c.split("/")[0].removeprefix("metrics.") for c in runs if "/" in c})
    for head in heads:
        wanted = [f"{head}/model/{m}" for m in SUMMARY_METRICS]
        wanted += [f"{head}/{b}/roc_auc" for b in (LOGISTIC, RULE, ORACLE)]
        for key in wanted:
            if f"metrics.{key}" in runs:
                rows[key] = runs[f"metrics.{key}"].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    params = [
        c for c in runs.columns if c.startswith("params.") and not c.startswith("params.data")
    ]
    for c in params:
        if runs[c].nunique(dropna=False) > 1:
            rows[c.removeprefix("params.")] = runs[c]
    table = pd.DataFrame(rows).T
    table.columns = runs["run_id"].str[:8]
    return table
