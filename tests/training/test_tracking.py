from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from features.catalogue import LABELS, horizon_days
from tests.cli import clean_env
from tests.cli import radar as run_radar
from training.config import TrainConfig
from training.promotion import promote
from training.tracking import compare_runs, log_training, rows_of_test_window
from training.train import train

pytestmark = pytest.mark.slow
FIGURES = (
    "calibration",
    "lift",
    "roc_pr",
    "feature_importance",
    "shap_summary",
    "top_drivers",
)


@pytest.fixture
def registry(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def check_datasets(run, data, result) -> None:
    """The snapshot table and each part of the split are the run's mlflow.data inputs."""
    inputs = {}
    for i in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in i.tags}
        inputs[tags.pop("mlflow.data.context")] = (i.dataset, tags)
    assert set(inputs) == {"source", "train", "validation", "test"}
    fingerprint = data.source["fingerprint"]
    table, tags = inputs["source"]
    assert table.name == "snapshots" and table.digest == fingerprint[:16]
    assert tags["fingerprint"] == fingerprint and tags["rows"] == str(len(data.frame))
    assert json.loads(table.profile)["num_rows"] == len(data.frame)
    assert Path(data.source["path"]).name in table.source
    columns = {c["name"] for c in json.loads(table.schema)["mlflow_colspec"]}
    assert set(data.spec.names) | set(data.labels) | {"as_of", "account_id"} == columns
    window = result.split.as_dict()
    total = 0
    for part in ("train", "validation", "test"):
        dataset, tags = inputs[part]
        lo, hi = window[f"{part}_start"], window[f"{part}_end"]
        n = int(data.frame["as_of"].between(lo, hi).sum())
        total += n
        assert (tags["start"], tags["end"]) == (lo, hi)
        assert tags["rows"] == str(n) and json.loads(dataset.profile)["num_rows"] == n
        assert int(tags["labelled_rows"]) <= n and tags["fingerprint"] == fingerprint
        assert dataset.name == f"snapshots-{part}" and dataset.digest != table.digest
    assert 0 < total < len(data.frame)  # the gaps and the unlabelled latest dates are left out


def test_run_is_logged_registered_promoted_and_served(trained, registry, tmp_path):
    data, result = trained
    tracked = log_training(result, data, uri=registry)
    client = MlflowClient()
    run = client.get_run(tracked.run_id)

    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    check_datasets(run, data, result)
    choice = result.bundle.metadata["model_choice"]
    for head, c in choice.items():  # each head's model, its candidates' figures and why
        assert params[f"{head}.model"] == c["chosen"] and tags[f"radar.model.{head}"] == c["reason"]
        for candidate, auc in c["validation_roc_auc"].items():
            assert metrics[f"{head}/validation/roc_auc_{candidate}"] == pytest.approx(auc)
    logged = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/model_choice.json")
    assert logged == json.loads(json.dumps(choice))
    for head in LABELS:
        for predictor in ("model", "logistic", "rule_score", "oracle"):
            for name in (
                "roc_auc",
                "pr_auc",
                "log_loss",
                "brier",
                "ece",
                "lift_top_decile",
                "recall_top_decile",
                "precision",
                "recall",
                "f1",
            ):
                assert f"{head}/{predictor}/{name}" in metrics
        assert f"{head}/model/smb/roc_auc" in metrics
    assert (
        metrics["churn_90d/model/roc_auc"]
        == result.evaluation[
            next(
                i
                for i, r in enumerate(result.evaluation)
                if (r["head"], r["predictor"], r["segment"]) == ("churn_90d", "model", "all")
            )
        ]["roc_auc"]
    )
    assert params["split.test_start"] == result.split.as_dict()["test_start"]
    assert params["lightgbm.max_trees"] == "150"
    # counts are parameters, not metrics (MLflow's compare view offers metrics first)
    assert not [k for k in metrics if k.endswith(("/n", "/positives", "/best_iteration"))]
    # the forecasts' figures beside the heads' (training/forecast.py)
    assert 0.8 <= metrics["forecast_health_90d/model/coverage"] <= 0.97
    assert metrics["nps_detractor/model/roc_auc"] > 0.6
    n_test = next(
        r["n"]
        for r in result.evaluation
        if (r["head"], r["predictor"], r["segment"]) == ("churn_90d", "model", "all")
    )
    assert params["test.churn_90d.all.n"] == str(int(n_test))
    assert int(params["churn_90d.best_iteration"]) == result.heads["churn_90d"].best_iteration
    for head, parts in result.part_rows.items():  # every head's own split, under its name
        assert {p: int(params[f"rows.{head}.{p}"]) for p in parts} == parts
        assert params[f"split.{head}.gap_days"] == str(result.splits[head].gap_days)
    assert params["heads"] == str(list(result.heads))
    assert run.info.run_name.startswith("train-") and "-isotonic-s0-" in run.info.run_name
    experiment = client.get_experiment(tracked.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert len(tags["radar.data_fingerprint"]) == 16
    assert tags["radar.git_commit"] != ""

    artifacts = {f.path for f in client.list_artifacts(tracked.run_id)}
    assert {"evaluation.json", "split.json", "global_drivers.csv", "data", *LABELS} <= artifacts
    for head in LABELS:
        files = {Path(f.path).name for f in client.list_artifacts(tracked.run_id, head)}
        assert {f"{name}.png" for name in FIGURES} <= files
        shap_png, importance_png = (
            Path(mlflow.artifacts.download_artifacts(f"{run.info.artifact_uri}/{head}/{f}.png"))
            for f in ("shap_summary", "feature_importance")
        )
        assert shap_png.read_bytes() != importance_png.read_bytes()
    evaluation = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/evaluation.json")
    assert len(evaluation) == len(result.evaluation)
    children = mlflow.search_runs(
        experiment_ids=[tracked.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{tracked.run_id}'",
    )
    assert sorted(children["tags.radar.head"]) == sorted(LABELS)
    gaps = dict(zip(children["tags.radar.head"], children["params.split.gap_days"], strict=True))
    assert gaps == {h: str(horizon_days(h)) for h in LABELS}  # each head's own horizon
    split = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/split.json")
    assert split["heads"]["renewal_likelihood"]["gap_days"] == 180
    assert (children["tags.test.n"].astype(int) > 0).all()
    assert not [c for c in children if c.endswith(("/n", "/positives"))]
    # artifacts live beside the sqlite file, not in the working directory
    assert (tmp_path / "mlruns").is_dir()

    assert str(client.get_model_version_by_alias("renewal-radar", "challenger").version) == "1"
    first = promote("renewal-radar", rows_of_test_window)
    assert first.promoted and "no champion yet" in first.reason

    model = mlflow.pyfunc.load_model("models:/renewal-radar@champion")
    rows = data.frame.sample(300, random_state=3)
    p = model.predict(rows[data.spec.names])
    assert list(p.columns) == [f"p_{h}" for h in LABELS]
    assert ((p >= 0) & (p <= 1)).all().all()
    np.testing.assert_allclose(p.to_numpy(), result.bundle.predict(rows).to_numpy())


def test_a_worse_challenger_is_not_promoted_and_says_why(trained, registry):
    data, result = trained
    log_training(result, data, uri=registry)
    assert promote("renewal-radar", rows_of_test_window).promoted
    weak_cfg = TrainConfig.from_yaml(
        **{
            "lightgbm.max_trees": 2,
            "lightgbm.num_leaves": 2,
            "shap_sample": 50,
            "min_positives": 20,
        }
    )
    weak = train(data, weak_cfg)
    tracked = log_training(weak, data, uri=registry)
    decision = promote("renewal-radar", rows_of_test_window)
    assert not decision.promoted
    assert decision.version == tracked.version == "2"
    assert "ROC-AUC" in decision.reason and "2026-" in decision.reason
    assert set(decision.comparison["head"]) == set(LABELS)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("renewal-radar", "champion").version) == "1"
    assert client.get_model_version("renewal-radar", "2").tags["promotion"] == decision.reason

    worse = decision.comparison.set_index(["head", "metric"])
    assert (worse.loc[("churn_90d", "roc_auc"), "high"] < 0) and "interval" in decision.reason

    # the same model again: every difference is exactly 0, so it is non-inferior
    log_training(result, data, uri=registry)
    equal = promote("renewal-radar", rows_of_test_window)
    assert equal.promoted and equal.version == "3" and equal.previous_champion == "1"
    assert (equal.comparison[["difference", "low", "high"]] == 0).all().all()
    assert equal.comparison["ok"].all() and len(equal.comparison) == 2 * len(LABELS)
    assert str(client.get_model_version_by_alias("renewal-radar", "champion").version) == "3"

    comparison = compare_runs("renewal-radar", last=2)
    newest, older = comparison.runs  # version 3 (champion, and still challenger) and 2
    assert comparison.roles == {newest: "champion", older: ""}
    assert comparison.versions == {newest: "3", older: "2"}
    values, deltas = comparison.values, comparison.deltas
    auc = "churn_90d/model/roc_auc"
    assert values.loc[auc, newest] > values.loc[auc, older]
    assert (deltas[newest] == 0).all()  # the champion against itself
    np.testing.assert_allclose(deltas[older], values[older] - values[newest])
    for head in LABELS:  # the operating point (scikit-learn's precision_recall_fscore_support)
        for name in ("precision", "recall", "f1"):
            assert 0 <= values.loc[f"{head}/model/{name}", newest] <= 1
    assert "lightgbm.max_trees" in comparison.info.index  # params that differ between the runs
    table = comparison.table()
    assert list(table.columns) == [f"{newest[:8]} champion v3", f"{older[:8]} v2"]
    assert table.loc[auc].iloc[0] == f"{values.loc[auc, newest]:.4f}"
    assert table.loc[auc].iloc[1] == f"{values.loc[auc, older]:.4f} ({deltas.loc[auc, older]:+.4f})"
    assert deltas.loc[auc, older] < 0
    # the champion stays in the comparison when it is not among the latest runs
    log_training(result, data, uri=registry)
    latest = compare_runs("renewal-radar", last=1)
    assert len(latest.runs) == 2 and latest.roles[latest.runs[1]] == "champion"
    assert latest.roles[latest.runs[0]] == "challenger"


def test_cli_train_promote_compare_and_mlflow_run(long_features, tmp_path):
    """The documented commands, end to end, in fresh processes."""
    env = clean_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = tmp_path / "train.yaml"
    cfg.write_text("lightgbm:\n  max_trees: 60\nshap_sample: 100\nmin_positives: 20\n")

    def radar(*args):
        return run_radar(*args, cwd=tmp_path, env=env)

    out = radar("train", "--features", str(long_features), "--config", str(cfg), "--promote")
    assert out.returncode == 0, out.stderr
    assert "version 1 as @challenger" in out.stdout and "becomes the champion" in out.stdout
    out = radar("train", "--features", str(tmp_path / "nowhere"))
    assert out.returncode == 1 and "run `radar features" in out.stderr
    out = radar(
        "train", "--features", str(long_features), "--config", str(cfg), "--calibration", "sigmoid"
    )
    assert out.returncode == 1 and "calibration" in out.stderr

    project = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "run",
            str(project),
            "-e",
            "train",
            "-P",
            f"features={long_features}",
            "-P",
            f"config={cfg}",
            "-P",
            "seed=3",
            "-P",
            "calibration=platt",
            "--env-manager",
            "local",
            "--experiment-name",
            "renewal-radar",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "version 2 as @challenger" in run.stdout
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    launched = mlflow.search_runs(
        experiment_names=["renewal-radar"],
        filter_string="tags.`radar.kind` = 'train'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    ).iloc[0]
    assert launched["params.seed"] == "3" and launched["params.calibration"] == "platt"
    assert launched["params.lightgbm.max_trees"] == "60"  # from the config file

    out = radar("promote", "--resamples", "200")
    assert out.returncode == 0, out.stderr
    assert "paired bootstrap intervals" in out.stdout
    for head in LABELS:  # each head's difference with its interval, ROC-AUC and log loss
        assert len(re.findall(rf"{head}[\s│]+(ROC-AUC|log loss)[\s│].* \.\. ", out.stdout)) == 2
    assert "version 2 replaces version 1" in out.stdout or "not promoted" in out.stdout
    out = radar("promote", "--roc-auc-margin", "-1")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    out = radar("compare", "--last", "2")
    assert out.returncode == 0, out.stderr
    assert "churn_90d/model/roc_auc" in out.stdout and "churn_90d/model/f1" in out.stdout
    assert "champion" in out.stdout
    assert "…" not in out.stdout  # not a terminal: the whole table, no header cut
    out = radar("compare", "--last", "2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    roles = {r["run_id"]: r["role"] for r in report["runs"]}
    assert report["champion"] in roles and roles[report["champion"]] == "champion"
    assert sorted(r["version"] for r in report["runs"]) == ["1", "2"]
    for r in report["runs"]:
        assert 0 <= r["metrics"]["churn_90d/model/f1"] <= 1
        own = r["metrics"]["churn_90d/model/roc_auc"]
        champion = next(x for x in report["runs"] if x["role"] == "champion")
        best = champion["metrics"]["churn_90d/model/roc_auc"]
        assert r["delta_vs_champion"]["churn_90d/model/roc_auc"] == pytest.approx(own - best)
    assert json.loads((long_features / "manifest.json").read_text())["rows"] > 0


def test_no_champion_says_what_to_run(trained, registry):
    """A store trained into without --promote: the default champion URI names the way out."""
    from training.registry import CHALLENGER, DEFAULT_MODEL_URI, load_model, resolve_version

    data, result = trained
    log_training(result, data, uri=registry)  # registered as @challenger, not promoted
    for call in (load_model, resolve_version):
        with pytest.raises(ValueError) as info:
            call(DEFAULT_MODEL_URI, registry)
        message = str(info.value)
        assert "has the alias 'champion'" in message and "radar promote" in message
        assert f"@{CHALLENGER}" in message
    challenger = load_model(DEFAULT_MODEL_URI.replace("champion", CHALLENGER), registry)
    assert challenger.version == "1" and challenger.bundle.heads
