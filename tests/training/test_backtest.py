from __future__ import annotations

import dataclasses

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from features.catalogue import LABELS
from tests.cli import clean_env
from tests.cli import radar as run_radar
from training.backtest import (
    TEST_DAYS,
    backtest,
    choose_models,
    known_at,
    log_backtest,
    origin_dates,
    refit_verdicts,
)
from training.config import TrainConfig
from training.data import FeatureSpec
from training.intervals import INTERVAL_METRICS
from training.linear import LIGHTGBM, PREFERENCE, TIE, kind_of
from training.train import TrainingData, from_snapshots, train


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


def test_known_at_blanks_every_label_not_known_at_the_origin():
    dates = pd.date_range("2025-01-31", periods=12, freq="ME")
    frame = pd.DataFrame(
        {
            "as_of": np.repeat(dates, 2),
            "x": np.arange(24.0),
            "churn_30d": np.tile([0.0, 1.0], 12),
            "churn_90d": np.tile([1.0, 0.0], 12),
            "renewal_likelihood": 1.0,
        }
    )
    data = TrainingData(
        frame, FeatureSpec(("x",)), ("churn_30d", "churn_90d", "renewal_likelihood")
    )
    origin = pd.Timestamp("2025-09-30")
    got = known_at(data, origin)
    assert got["as_of"].max() == origin  # nothing after the origin
    for label, h in (("churn_30d", 30), ("churn_90d", 90), ("renewal_likelihood", 180)):
        closed = got["as_of"] + pd.Timedelta(days=h) <= origin
        assert got.loc[closed, label].notna().all(), label
        assert got.loc[~closed, label].isna().all(), label
        assert closed.any() and not closed.all()
    assert frame["churn_90d"].notna().all()  # the caller's frame is untouched


def test_refit_verdicts_count_origins_with_evidence():
    rows = []
    for i, (low, high) in enumerate([(-0.02, -0.01), (-0.03, -0.001), (-0.01, 0.01)]):
        for metric, diff, lo, hi in (("log_loss", (low + high) / 2, low, high),
                                     ("roc_auc", 0.001, -0.01, 0.012)):  # fmt: skip
            rows.append(
                {
                    "head": "churn_90d",
                    "origin": pd.Timestamp(2025, 1 + i, 28),
                    "metric": metric,
                    "difference": diff,
                    "low": lo,
                    "high": hi,
                    "observed_rate": 0.1,
                    "honest_mean": 0.13,
                    "refit_mean": 0.105,
                }  # fmt: skip
            )
    worse = [dict(r, head="churn_30d", low=-r["high"], high=-r["low"]) for r in rows]
    v = refit_verdicts(pd.DataFrame(rows + worse))
    assert v["churn_90d"]["verdict"] == "refit"
    assert (v["churn_90d"]["log_loss_better"], v["churn_90d"]["log_loss_worse"]) == (2, 0)
    assert v["churn_90d"]["mean_predicted_over_observed"] == pytest.approx(
        {"honest": 1.3, "refit": 1.05}
    )
    assert v["churn_30d"]["verdict"] == "honest"


def test_fixed_lightgbm_without_recorded_candidates_fits_no_linear_model(trained, monkeypatch):
    data, full = trained
    cfg = full.config.model_copy(
        update={"record_candidates": False, "heads": ("churn_90d",), "shap_sample": 10}
    )
    import training.train as t

    def refuse(*_a, **_k):
        raise AssertionError("the linear candidate was fitted")

    monkeypatch.setattr(t, "linear_head", refuse)
    result = train(dataclasses.replace(data, labels=("churn_90d",)), cfg)
    choice = result.bundle.metadata["model_choice"]["churn_90d"]
    assert choice["chosen"] == LIGHTGBM and set(choice["validation_roc_auc"]) == {LIGHTGBM}
    assert choice["validation_roc_auc"][LIGHTGBM] == pytest.approx(
        full.bundle.metadata["model_choice"]["churn_90d"]["validation_roc_auc"][LIGHTGBM]
    )


@pytest.fixture(scope="module")
def refit_backtest(long_features):
    """One origin, two heads, with the refit comparison and every candidate tested."""
    cfg = TrainConfig.from_yaml(
        **{
            "heads": ["churn_90d", "expansion_90d"],
            "lightgbm.max_trees": 25,
            "backtest.resamples": 50,
            "backtest.refit": True,
            "backtest.candidates": True,
            "shap_sample": 10,
            "min_positives": 20,
        }
    )
    data = from_snapshots(long_features, cfg)
    return data, backtest(data, cfg, origins=1)


@pytest.mark.slow
def test_backtest_candidates_choose_each_heads_model(refit_backtest):
    _, result = refit_backtest
    t = result.table[result.table["metric"] == "roc_auc"].set_index(["head", "predictor"])
    kinds = ("lightgbm", "logistic", "blend")
    assert {f"candidate_{k}" for k in kinds} <= set(t.index.get_level_values("predictor"))
    for head in ("churn_90d", "expansion_90d"):
        # the configured model is LightGBM, and no 30-day head caps it: the same predictions
        assert t.loc[(head, "candidate_lightgbm"), "value"] == pytest.approx(
            t.loc[(head, "model"), "value"]
        )
    choices = choose_models(result)
    assert set(choices) == {"churn_90d", "expansion_90d"}
    for head, c in choices.items():
        means = {k: t.loc[(head, f"candidate_{k}"), "value"] for k in kinds}
        assert c["mean_test_roc_auc"] == pytest.approx(means) and c["origins"] == 1
        best = max(means.values())
        # the preferred kind among those within the tie of the best
        assert means[c["chosen"]] >= best - TIE
        assert c["chosen"] == next(k for k in PREFERENCE if means[k] >= best - TIE)


def test_model_per_head_fixes_a_heads_model(trained):
    data, full = trained
    cfg = full.config.model_copy(
        update={
            "heads": ("churn_90d",),
            "shap_sample": 10,
            "model_per_head": {"churn_90d": "logistic"},
        }
    )
    result = train(dataclasses.replace(data, labels=("churn_90d",)), cfg)
    choice = result.bundle.metadata["model_choice"]["churn_90d"]
    assert choice["chosen"] == "logistic" and "model_per_head" in choice["reason"]
    assert kind_of(result.bundle.heads["churn_90d"].booster) == "logistic"
    with pytest.raises(ValueError, match="model_per_head"):
        TrainConfig.from_yaml(**{"model_per_head": {"churn_90d": "forest"}})


@pytest.mark.slow
def test_backtest_refit_compares_what_was_served_then(refit_backtest, tmp_path):
    data, result = refit_backtest
    r = result.refit
    origin = result.origins[0]
    assert set(r["head"]) == {"churn_90d", "expansion_90d"} and set(r["origin"]) == {origin}
    assert set(r["metric"]) == {"roc_auc", "log_loss"}
    t = pd.to_datetime(data.frame["as_of"])
    window = (t > origin - pd.Timedelta(days=TEST_DAYS)) & (t <= origin)
    for head, g in r.groupby("head"):
        known = data.frame.loc[window, head].dropna()
        assert (g["n"] == len(known)).all() and (g["positives"] == known.sum()).all()
        assert g["observed_rate"].iloc[0] == pytest.approx(known.mean())
        np.testing.assert_allclose(g["difference"], g["refit"] - g["honest"], atol=1e-12)
        assert ((g["low"] <= g["difference"]) & (g["difference"] <= g["high"])).all()
        assert (g["honest"] != g["refit"]).all()  # two different models served
    # the honest model served then was fitted and calibrated on labels known at the origin
    assert (r[r["metric"] == "roc_auc"]["honest"] > 0.6).all()
    verdicts = refit_verdicts(r)
    assert set(verdicts) == {"churn_90d", "expansion_90d"}
    assert {v["verdict"] for v in verdicts.values()} <= {"refit", "honest", "either"}

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = log_backtest(result, data, uri)
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.data.params["backtest.refit"] == "True"
    got = run.data.metrics["churn_90d/refit_minus_honest/log_loss"]
    want = r[(r["head"] == "churn_90d") & (r["metric"] == "log_loss")]["difference"].iloc[0]
    assert got == pytest.approx(want)
    files = {f.path for f in client.list_artifacts(run_id, "backtest")}
    assert {
        "backtest/refit.csv",
        "backtest/refit_verdicts.json",
        "backtest/model_choice.json",
    } <= files


@pytest.mark.slow
def test_backtest_trains_honestly_at_each_origin_and_logs_one_run(long_features, tmp_path):
    cfg = TrainConfig.from_yaml(**{"lightgbm.max_trees": 60, "backtest.resamples": 60})
    data = from_snapshots(long_features, cfg)
    result = backtest(data, cfg, origins=2)

    labelled = data.frame[list(LABELS)].notna().all(axis=1)
    last = data.frame.loc[labelled, "as_of"].max()
    assert result.origins[-1] == last and result.origins[0] < last
    for origin, split in zip(result.origins, result.splits, strict=True):
        s = {k: pd.Timestamp(v) if k != "gap_days" else v for k, v in split.items() if k != "heads"}
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
    assert len(logged) == len(t) + len(result.missing)  # a head missing at an origin: a row


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
        "--refit",
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
    notes = table[table["note"].notna()]  # heads the training refused at the origin, named
    tested = table[table["note"].isna()]
    assert len(tested) == tested["head"].nunique() * 4 * len(INTERVAL_METRICS)
    for head, note in zip(notes["head"], notes["note"], strict=True):
        assert note.startswith(f"{head}: ") and head not in set(tested["head"])
        assert f"not tested at {notes['origin'].iloc[0]}: {head}: " in out.stdout
    refit = pd.read_csv(tmp_path / "bt_refit.csv")
    assert set(refit["metric"]) == {"roc_auc", "log_loss"} and len(refit) > 0
    assert "refit minus honest" in out.stdout
    for head in refit["head"].unique():  # one verdict line per head compared
        assert any(
            line.startswith(f"{head}: ") and "mean predicted / observed" in line
            for line in out.stdout.splitlines()
        ), head
    bad = run_radar("backtest", "--features", str(tmp_path / "none"), cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "radar features" in bad.stderr and "Traceback" not in bad.stderr
