from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from features.catalogue import LABELS
from tests.cli import clean_env
from tests.cli import radar as run_radar
from training.config import TrainConfig
from training.tracking import compare_runs, log_training, promote, rows_of_test_window
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


def test_run_is_logged_registered_promoted_and_served(trained, registry, tmp_path):
    data, result = trained
    tracked = log_training(result, data, uri=registry)
    client = MlflowClient()
    run = client.get_run(tracked.run_id)

    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
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
    assert len(tags["radar.data_fingerprint"]) == 16
    assert tags["radar.git_commit"] != ""

    artifacts = {f.path for f in client.list_artifacts(tracked.run_id)}
    assert {"evaluation.json", "split.json", "global_drivers.csv", "data", *LABELS} <= artifacts
    for head in LABELS:
        files = {Path(f.path).name for f in client.list_artifacts(tracked.run_id, head)}
        assert {f"{name}.png" for name in FIGURES} <= files
    evaluation = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/evaluation.json")
    assert len(evaluation) == len(result.evaluation)
    children = mlflow.search_runs(
        experiment_ids=[tracked.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{tracked.run_id}'",
    )
    assert sorted(children["tags.radar.head"]) == sorted(LABELS)
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

    table = compare_runs("renewal-radar", last=5)
    assert table.shape[1] == 2
    assert float(table.loc["churn_90d/model/roc_auc"].iloc[1]) > float(
        table.loc["churn_90d/model/roc_auc"].iloc[0]
    )
    assert "lightgbm.max_trees" in table.index  # params that differ between the runs


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

    out = radar("promote")
    assert out.returncode == 0, out.stderr
    assert "version 2" in out.stdout
    out = radar("compare", "--last", "2")
    assert out.returncode == 0, out.stderr
    assert "churn_90d/model/roc_auc" in out.stdout
    assert json.loads((long_features / "manifest.json").read_text())["rows"] > 0
