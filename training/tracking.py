"""MLflow: log a training run, register the bundle, compare runs (promotion: promotion.py)."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from features.store import SnapshotStore
from training import plots
from training.datasets import log_training_datasets
from training.model import ModelBundle

# Models logged before training.pyfunc existed import the wrapper from here.
from training.pyfunc import RenewalRadarModel  # noqa: F401
from training.registry import CHALLENGER, CHAMPION, KIND_TAG, tracking_uri
from training.run_notes import DESCRIPTION_TAG, job_run, training_description, windows_line
from training.table import trained_on_table
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

SUMMARY_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")
COUNTS = ("n", "positives")  # evaluation figures that are counts: parameters, not metrics
# MLflow's UI reads this experiment tag to choose between its classic-ML and GenAI views.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CLASSIC_ML = "custom_model_development"


def signature(bundle: ModelBundle) -> ModelSignature:
    """Every feature optional (missing is allowed, as in training); probabilities out.

    A table's model takes its columns as the table had them (integers, number text with
    blank cells, true/false text): MLflow would refuse those against "double", so they are
    typed "any" and the model reads them as training did (:func:`training.table.coerce_rows`).
    """
    if trained_on_table(bundle.metadata):
        inputs = [ColSpec(AnyType(), c, required=False) for c in bundle.spec.names]
        outputs = [ColSpec("double", f"p_{h}") for h in bundle.heads]
        return ModelSignature(Schema(inputs), Schema(outputs))
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


def flat_params(prefix: str, obj) -> dict[str, str]:
    """A nested dict as MLflow parameters: dotted names, values as text."""
    out = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flat_params(f"{name}.", value)
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
    :func:`training.promotion.promote`'s decision.
    """
    cfg = result.config
    resolved = tracking_uri(uri)
    name = model_name or cfg.registered_model
    experiment = use_experiment(cfg.experiment, resolved)
    source = data.source
    # The run starts when training did: its duration is the job's, not the logging's.
    name_ = source.get("run_name") or run_name(cfg)
    with job_run(name_, experiment.experiment_id, result.started) as run:
        mlflow.set_tags(
            {
                DESCRIPTION_TAG: training_description(result, data),
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
        params = run_params(result, data, name)
        params |= {f"data.{k}": str(v) for k, v in source.items() if k != "manifest"}
        params |= _counts(result)
        mlflow.log_params(params)
        log_training_datasets(result, data)  # the table and its split as mlflow.data datasets
        mlflow.log_metrics(_metrics(result))
        mlflow.log_dict(result.evaluation, "evaluation.json")
        forecasts = getattr(result.forecasts, "evaluation", None)  # training/forecast.py
        if forecasts is not None:  # health ahead and satisfaction: figures and metrics
            mlflow.log_dict(forecasts, "forecasts.json")
            mlflow.log_metrics(forecast_metrics(forecasts))
        refit = result.bundle.metadata.get("refit")
        mlflow.set_tag("radar.refit", "true" if refit else "false")
        if refit:  # the figures are the honest fit's; the served heads were refitted
            mlflow.log_dict(refit, "refit.json")
        if "model_choice" in result.bundle.metadata:  # each head's model and why
            mlflow.log_dict(result.bundle.metadata["model_choice"], "model_choice.json")
            mlflow.set_tags(
                {
                    f"radar.model.{h}": c["reason"][:5000]
                    for h, c in result.bundle.metadata["model_choice"].items()
                }
            )
        heads = {
            h: s.as_dict() | {"rows": result.part_rows.get(h, {})} for h, s in result.splits.items()
        }
        mlflow.log_dict(
            result.split.as_dict() | {"rows": result.rows, "heads": heads}, "split.json"
        )
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


def forecast_metrics(evaluation: list[dict]) -> dict[str, float]:
    """``forecast/predictor/metric`` of the forecasts' test-window figures (finite ones).

    Counts (rows, positives) stay in the ``forecasts.json`` artifact, as the heads' are
    parameters: a row count is not a score.
    """
    out = {}
    skip = ("forecast", "head", "predictor", "segment", "rows", "n", "positives")
    for r in evaluation:
        name = r.get("forecast") or r.get("head")
        for k, v in r.items():
            if k in skip or v is None:
                continue
            if isinstance(v, int | float) and np.isfinite(v):
                out[f"{name}/{r['predictor']}/{k}"] = float(v)
    return out


def run_name(cfg, when: datetime | None = None) -> str:
    """``train-<date>-<short config>``: what changes between runs, readable in MLflow's lists.

    E.g. ``train-2026-12-01-d4-lr0.1-isotonic-s0-3f9a1c``; the last part is a hash of the whole
    configuration, so two runs share a name only when they share every setting and day.
    """
    day = (when or datetime.now(UTC)).strftime("%Y-%m-%d")
    lgb = cfg.lightgbm
    digest = hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:6]
    short = f"d{lgb.max_depth}-lr{lgb.learning_rate:g}-{cfg.calibration}-s{cfg.seed}"
    return f"train-{day}-{short}-{digest}"


def use_experiment(name: str, uri: str):
    """Get or create the experiment; a sqlite store keeps artifacts in ``mlruns`` beside it.

    (MLflow's own default is ``./mlruns`` under the working directory, wherever that is.)
    Under ``mlflow run``, the run it created (``MLFLOW_RUN_ID``) decides the experiment.
    """
    launched = os.environ.get("MLFLOW_RUN_ID")
    if launched:
        experiment = mlflow.get_experiment(MlflowClient().get_run(launched).info.experiment_id)
        _mark_classic_ml(experiment)
        return experiment
    if mlflow.get_experiment_by_name(name) is None and uri.startswith("sqlite:///"):
        root = Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns"
        mlflow.create_experiment(name, artifact_location=root.as_uri())
    experiment = mlflow.set_experiment(name)
    _mark_classic_ml(experiment)
    return experiment


def _mark_classic_ml(experiment) -> None:
    """Tag the experiment as model development, so MLflow's UI opens its ML (not GenAI) view."""
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != CLASSIC_ML:
        MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, CLASSIC_ML)


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
    """``head/predictor/metric`` on the whole test window; per segment for the model.

    Counts (rows, positives, trees) are parameters (:func:`_counts`), not metrics: MLflow's
    compare view offers metrics first, and a row count there reads as a score.
    """
    out = {}
    for r in result.evaluation:
        if r["segment"] != ALL and r["predictor"] != MODEL:
            continue
        where = r["predictor"] if r["segment"] == ALL else f"{r['predictor']}/{r['segment']}"
        for key, value in r.items():
            if key in ("head", "predictor", "segment", *COUNTS) or value is None:
                continue
            out[f"{r['head']}/{where}/{key}"] = float(value)
    for label, choice in result.bundle.metadata.get("model_choice", {}).items():
        for candidate, auc in choice["validation_roc_auc"].items():
            out[f"{label}/validation/roc_auc_{candidate}"] = auc
    for label, head in result.heads.items():
        out[f"{label}/validation/log_loss_raw"] = head.validation_log_loss_raw
        out[f"{label}/validation/log_loss_calibrated"] = head.validation_log_loss_calibrated
    return out


def run_params(result: TrainingResult, data: TrainingData, name: str) -> dict[str, str]:
    """The run's parameters: its configuration as it applied, each head's split and rows.

    A table's run says its own head, horizon and registered name, not the configuration's
    defaults (the five contract heads, ``renewal-radar``); under a random split it leaves the
    time windows' settings out (nothing was split by time). Every head's windows and rows per
    part are logged under its name (``split.<head>.*``, ``rows.<head>.*``).
    """
    params = flat_params("", result.config.model_dump(mode="json"))
    params["registered_model"] = name
    params["heads"] = str(list(result.heads))
    params |= {f"horizon.{h}": str(result.bundle.horizon(h)) for h in result.heads}
    if data.source.get("kind") == "table" and data.time is None:
        for key in ("test_days", "validation_days", "gap_days"):
            params.pop(f"split.{key}", None)
    params |= flat_params("split.", result.split.as_dict())
    for head, split in result.splits.items():  # each head's own windows (gap = horizon)
        params |= flat_params(f"split.{head}.", split.as_dict())
    params |= {f"rows.{k}": str(v) for k, v in result.rows.items()}
    for head, parts in result.part_rows.items():
        params |= {f"rows.{head}.{p}": str(n) for p, n in parts.items()}
    return params


def _counts(result: TrainingResult) -> dict[str, str]:
    """Test rows and positives per head and segment (the model's), and trees per head."""
    out = {}
    for r in result.evaluation:
        if r["predictor"] == MODEL:
            for key in COUNTS:
                if r.get(key) is not None:
                    out[f"test.{r['head']}.{r['segment']}.{key}"] = str(int(r[key]))
    for label, head in result.heads.items():
        out[f"{label}.best_iteration"] = str(head.best_iteration)
    for label, choice in result.bundle.metadata.get("model_choice", {}).items():
        out[f"{label}.model"] = choice["chosen"]  # lightgbm, logistic or blend
    for label, refit in (result.bundle.metadata.get("refit") or {}).items():
        out |= {f"{label}.refit.{k}": str(v) for k, v in refit.items() if k != "model"}
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
    split = result.splits.get(label, result.split)
    note = (
        f"Head {label} of the parent training run: its own test window "
        f"({windows_line({label: split})}), calibration {result.config.calibration}."
    )
    with mlflow.start_run(run_name=label, nested=True, parent_run_id=parent_id, description=note):
        mlflow.set_tags({KIND_TAG: "head", "radar.head": label})
        mlflow.log_params(
            {
                "label": label,
                "best_iteration": head.best_iteration,
                **{
                    f"split.{k}": v
                    for k, v in result.splits.get(label, result.split).as_dict().items()
                },
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
                if k not in ("head", "predictor", "segment", *COUNTS) and v is not None
            }
        )
        mlflow.set_tags(
            {
                f"test.{k}": str(int(r[k]))
                for r in result.evaluation
                if (r["head"], r["predictor"], r["segment"]) == (label, MODEL, ALL)
                for k in COUNTS
                if r.get(k) is not None
            }
        )


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
        frame = SnapshotStore.open(path).snapshots()
    elif kind == "table":
        if params.get("split.kind") == "cross_validation":  # a small table: no held-out rows
            raise ValueError(
                f"run {run.info.run_id} was evaluated by cross-validation (a table too small "
                "for a held-out split): there are no held-out rows to judge a champion on the "
                "same rows; compare the runs' cross-validated intervals (`radar compare`)"
            )
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


@dataclass(frozen=True)
class Comparison:
    """Recent training runs side by side, with each figure's difference from the champion.

    ``values`` holds the figures as numbers (one column per run, one row per ``head/predictor/
    metric``), ``deltas`` the same minus the champion's (empty when no run is champion),
    ``info`` the descriptive rows (started, commit, data, windows, differing parameters) and
    ``roles`` each run's alias (``champion``, ``challenger`` or ``""``). The champion's run is
    included even when it is older than the ``last`` runs, so there is always a reference.
    """

    runs: list[str]
    roles: dict[str, str]
    versions: dict[str, str]
    values: pd.DataFrame
    deltas: pd.DataFrame
    info: pd.DataFrame

    @property
    def empty(self) -> bool:
        """No training run to compare."""
        return not self.runs

    def table(self) -> pd.DataFrame:
        """Text cells for a terminal: each figure with its delta against the champion."""
        if self.empty:
            return pd.DataFrame()
        mark = {
            r: f"{r[:8]} {self.roles[r]}".strip()
            + (f" v{self.versions[r]}" if self.versions.get(r) else "")
            for r in self.runs
        }
        figures = self.values.copy().astype(object)
        for key, row in self.values.iterrows():
            for run, value in row.items():
                if pd.isna(value):
                    figures.loc[key, run] = ""
                    continue
                delta = self.deltas.loc[key, run] if key in self.deltas.index else np.nan
                is_champion = self.roles.get(run) == CHAMPION
                figures.loc[key, run] = (
                    f"{value:.4f}"
                    if is_champion or pd.isna(delta)
                    else f"{value:.4f} ({delta:+.4f})"
                )
        table = pd.concat([self.info, figures])
        table.columns = [mark[r] for r in table.columns]
        return table

    def as_dict(self) -> dict:
        """What ``radar compare --json`` prints: one entry per run, numbers as numbers."""

        def clean(series: pd.Series) -> dict:
            return {k: (None if pd.isna(v) else float(v)) for k, v in series.items()}

        return {
            "champion": next((r for r in self.runs if self.roles[r] == CHAMPION), None),
            "runs": [
                {
                    "run_id": run,
                    "role": self.roles[run] or None,
                    "version": self.versions.get(run),
                    "info": {
                        k: (None if pd.isna(v) else str(v)) for k, v in self.info[run].items()
                    },
                    "metrics": clean(self.values[run]),
                    "delta_vs_champion": clean(self.deltas[run]) if run in self.deltas else {},
                }
                for run in self.runs
            ],
        }


# The figures compare shows per head: the model's summary metrics and its operating point
# (precision, recall and F1 at the threshold chosen on validation), then the baselines' ROC-AUC.
COMPARE_METRICS = (*SUMMARY_METRICS, "precision", "recall", "f1")


def _aliases(model_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """Run id -> alias (champion/challenger) and run id -> version, from the registry."""
    client = MlflowClient()
    versions = {
        _run_of(mv): str(mv.version)
        for mv in client.search_model_versions(f"name = '{model_name}'")
        if _run_of(mv)
    }
    roles: dict[str, str] = {}
    for alias in (CHALLENGER, CHAMPION):  # champion last: it wins when both point at one run
        try:
            mv = client.get_model_version_by_alias(model_name, alias)
        except mlflow.exceptions.MlflowException:
            continue
        if _run_of(mv):
            roles[_run_of(mv)] = alias
    return roles, versions


def _run_of(version) -> str | None:
    """The training run of a model version (the tag log_training sets, else MLflow's field)."""
    return version.tags.get("run_id") or version.run_id


def test_window_rows(runs: pd.DataFrame, col) -> dict[str, pd.Series]:
    """One "test window" row per head (each head's gap follows its horizon), else the common one.

    A run logged before heads had their own windows shows the common window in its head rows.
    """
    heads = sorted(
        c.removeprefix("params.split.").removesuffix(".test_start")
        for c in runs.columns
        if c.startswith("params.split.") and c.endswith(".test_start") and c.count(".") == 3
    )
    common = col("params.split.test_start") + ".." + col("params.split.test_end")
    if not heads:
        return {"test window": common}
    out = {}
    for h in heads:
        own = col(f"params.split.{h}.test_start") + ".." + col(f"params.split.{h}.test_end")
        out[f"test window {h}"] = own.where(own != "..", common)
    return out


def compare_runs(experiment: str, last: int = 5, model_name: str | None = None) -> Comparison:
    """The ``last`` training runs (and the champion's) side by side, deltas vs the champion."""
    found = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string=f"tags.`{KIND_TAG}` = 'train'",
        # newest logged first: a run starts when its training did (run_notes.job_run), so
        # two trainings' start times need not be in the order they were logged
        order_by=["attributes.end_time DESC", "attributes.start_time DESC"],
    )
    if found.empty:
        return Comparison([], {}, {}, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    roles, versions = _aliases(model_name or experiment)
    keep = found.index < last
    keep |= found["run_id"].isin([r for r, a in roles.items() if a == CHAMPION]).to_numpy()
    runs = found[keep].reset_index(drop=True)

    def col(name: str) -> pd.Series:
        return runs[name].fillna("") if name in runs else pd.Series("", index=runs.index)

    info: dict[str, pd.Series] = {
        "run name": col("tags.mlflow.runName"),
        "started": runs["start_time"].dt.strftime("%Y-%m-%d %H:%M"),
        "git commit": col("tags.radar.git_commit").str[:12],
        "data fingerprint": col("tags.radar.data_fingerprint"),
        "data": col("tags.radar.source_path"),
        **test_window_rows(runs, col),
        "rows train/val/test": col("params.rows.train")
        + "/"
        + col("params.rows.validation")
        + "/"
        + col("params.rows.test"),
    }
    params = [
        c for c in runs.columns if c.startswith("params.") and not c.startswith("params.data")
    ]
    for c in params:
        if runs[c].nunique(dropna=False) > 1:
            info[c.removeprefix("params.")] = runs[c]
    heads = sorted({c.split("/")[0].removeprefix("metrics.") for c in runs if "/" in c})
    values: dict[str, pd.Series] = {}
    for head in heads:
        wanted = [f"{head}/model/{m}" for m in COMPARE_METRICS]
        wanted += [f"{head}/{b}/roc_auc" for b in (LOGISTIC, RULE, ORACLE)]
        for key in wanted:
            if f"metrics.{key}" in runs:
                values[key] = runs[f"metrics.{key}"].astype(float)
    ids = list(runs["run_id"])
    info_table = pd.DataFrame(info).T
    info_table.columns = ids
    value_table = pd.DataFrame(values).T
    value_table.columns = ids
    champion = next((r for r in ids if roles.get(r) == CHAMPION), None)
    deltas = value_table.sub(value_table[champion], axis=0) if champion else pd.DataFrame()
    return Comparison(
        ids,
        {r: roles.get(r, "") for r in ids},
        {r: versions[r] for r in ids if r in versions},
        value_table,
        deltas,
        info_table,
    )
