from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from features.catalogue import LABELS
from tests.cli import clean_env
from tests.cli import radar as run_radar
from training.backtest import TEST_DAYS, backtest, log_backtest, origin_dates
from training.config import TrainConfig
from training.intervals import INTERVAL_METRICS
from training.train import from_snapshots


def test_origins_are_the_last_labelled_date_of_each_month():
    weekly = pd.Series(pd.date_range("2026-01-04", "2026-06-28", freq="W-SUN"))
    labelled = weekly <= pd.Timestamp("2026-05-20")
    got = origin_dates(weekly, labelled, 3)
    assert got == [pd.Timestamp(d) for d in ("2026-03-29", "2026-04-26", "2026-05-17")]
    monthly = pd.Series(pd.date_range("2025-01-31", periods=12, freq="ME"))
    assert origin_dates(monthly, monthly < "2025-11-01", 2) == [
        pd.Timestamp("2025-09-30"),
        pd.Timestamp("2025-10-31"),
    ]
    with pytest.raises(ValueError, match="no snapshot has known labels"):
        origin_dates(monthly, monthly < "2000-01-01", 2)


@pytest.mark.slow
def test_backtest_trains_honestly_at_each_origin_and_logs_one_run(long_features, tmp_path):
    cfg = TrainConfig.from_yaml(**{"lightgbm.max_trees": 60, "backtest.resamples": 60})
    data = from_snapshots(long_features, cfg)
    result = backtest(data, cfg, origins=2)

    labelled = data.frame[list(LABELS)].notna().all(axis=1)
    last = data.frame.loc[labelled, "as_of"].max()
    assert result.origins[-1] == last and result.origins[0] < last
    for origin, split in zip(result.origins, result.splits, strict=True):
        s = {k: pd.Timestamp(v) if k != "gap_days" else v for k, v in split.items()}
        gap = pd.Timedelta(days=s["gap_days"])
        assert s["gap_days"] == 90 and s["test_end"] == origin
        assert s["test_start"] > origin - pd.Timedelta(days=TEST_DAYS)
        # every training and validation label window had closed by the origin
        assert s["validation_end"] + gap <= s["test_start"]
        assert s["train_end"] + gap <= s["validation_start"]

    t = result.table
    # Every head the history allows at each origin (renewal likelihood's 180-day gap may not
    # fit a short one; it is then skipped by name).
    assert {"churn_90d", "expansion_30d", "expansion_90d"} <= set(t["head"])
    assert len(t) == t["head"].nunique() * 2 * 4 * len(INTERVAL_METRICS)
    assert set(t["predictor"]) == {"model", "logistic", "rule_score", "oracle"}
    assert (t["low"] <= t["high"]).all()
    auc = t[t["metric"] == "roc_auc"]
    assert ((auc["low"] <= auc["value"]) & (auc["value"] <= auc["high"])).all()
    assert (auc["high"] - auc["low"]).between(0.01, 0.5).all()
    model = auc[auc["predictor"] == "model"].set_index(["head", "origin"])["value"]
    assert (model > 0.6).all()
    n = t.groupby(["head", "origin"])["n"].nunique()
    assert (n == 1).all()  # every predictor on the same rows

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = log_backtest(result, data, uri)
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.data.tags["radar.kind"] == "backtest" and run.info.run_name.startswith("backtest-")
    history = client.get_metric_history(run_id, "churn_90d/model/roc_auc")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1]
    np.testing.assert_allclose(
        [m.value for m in sorted(history, key=lambda m: m.step)],
        model.loc["churn_90d"].sort_index().to_numpy(),
    )
    files = {f.path for f in client.list_artifacts(run_id, "backtest")}
    assert {f"backtest/{m}.png" for m in INTERVAL_METRICS} <= files
    logged = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"{run.info.artifact_uri}/backtest/metrics.csv")
    )
    assert len(logged) == len(t)


@pytest.mark.slow
def test_cli_backtest_prints_the_whole_table(long_features, tmp_path):
    env = clean_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    out = run_radar(
        "backtest",
        "--features",
        str(long_features),
        "--origins",
        "1",
        "--max-trees",
        "30",
        "--resamples",
        "50",
        "--out",
        str(tmp_path / "bt.csv"),
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "…" not in out.stdout
    for head in ("churn_90d", "expansion_90d"):  # heads with enough positives at one origin
        assert head in out.stdout
    assert "oracle ROC-AUC" in out.stdout and "MLflow run" in out.stdout
    table = pd.read_csv(tmp_path / "bt.csv")
    assert len(table) == table["head"].nunique() * 4 * len(INTERVAL_METRICS)
    bad = run_radar("backtest", "--features", str(tmp_path / "none"), cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "radar features" in bad.stderr and "Traceback" not in bad.stderr
