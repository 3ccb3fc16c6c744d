"""Data scientists' reports say what they did: missing heads named, promotion words, per-head
windows, run descriptions and the job's duration (issue 29, item 7)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from monitoring.report import log_report
from radar.common import console
from radar.train import _print_backtest, _print_promotion
from training.backtest import (
    BacktestResult,
    log_backtest,
    missing_heads,
    table_with_notes,
    write_table,
)
from training.config import PromotionConfig, TrainConfig
from training.intervals import INTERVAL_METRICS
from training.promotion import Promotion, shortfall_words, window_words
from training.run_notes import CLASSIC_ML_QUERY, DESCRIPTION_TAG, experiment_link
from training.tracking import compare_runs

D = pd.Timestamp
ORIGINS = [D("2026-07-31"), D("2026-08-31"), D("2026-09-30")]
REFUSED = "churn_30d: too few positives in the validation window (12, at least 20)"


def fabricated(started: float | None = None) -> BacktestResult:
    """Three origins; churn_30d trained at the last one only (the issue's `--origins 3`)."""
    rows = []
    for i, origin in enumerate(ORIGINS):
        for head in ("churn_90d", "churn_30d") if i == 2 else ("churn_90d",):
            for m in INTERVAL_METRICS:
                rows.append({"head": head, "origin": origin, "predictor": "model", "metric": m,
                             "value": 0.8, "low": 0.75, "high": 0.85, "n": 400.0,
                             "positives": 40.0})  # fmt: skip
    missing = [m for o in ORIGINS[:2] for m in missing_heads(
        ["churn_30d", "churn_90d"], {"churn_90d": None}, ["other: x", REFUSED], o)]  # fmt: skip
    cfg = TrainConfig.from_yaml(experiment="radar-notes-test")
    return BacktestResult(
        pd.DataFrame(rows), ORIGINS, [], cfg, missing=tuple(missing), started=started
    )


def test_a_head_missing_at_an_origin_is_named_in_terminal_csv_and_mlflow(tmp_path, registry):
    unnamed = missing_heads(["churn_30d"], {}, [], ORIGINS[0])
    assert unnamed[0]["reason"] == "churn_30d: not trained at this origin"
    job_seconds = 462.0  # the 7.7-minute backtest, logged in a second
    result = fabricated(started=time.time() - job_seconds)
    assert [(m["head"], m["origin"]) for m in result.missing] == [
        ("churn_30d", ORIGINS[0]), ("churn_30d", ORIGINS[1])
    ]  # fmt: skip
    assert all(m["reason"] == REFUSED for m in result.missing)
    # Terminal
    with console.capture() as out:
        _print_backtest(result)
    printed = " ".join(out.get().split())
    assert f"not tested at 2026-07-31: {REFUSED}" in printed
    assert f"not tested at 2026-08-31: {REFUSED}" in printed
    # CSV: one row per missing head and origin, in origin order, with the reason
    (path,) = write_table(result, tmp_path / "backtest.csv")
    csv = pd.read_csv(path)
    notes = csv[csv["note"].notna()]
    assert list(notes["head"]) == ["churn_30d", "churn_30d"] and set(notes["note"]) == {REFUSED}
    assert list(notes["origin"]) == ["2026-07-31", "2026-08-31"]
    assert len(csv) == len(result.table) + 2 and len(table_with_notes(result)) == len(csv)
    # MLflow: description, tag, artifacts; the run lasts as long as the job
    before = time.time()  # the session's store, in an experiment of its own
    run_id = log_backtest(result, SimpleNamespace(source={}), registry)
    run = MlflowClient().get_run(run_id)
    note = run.data.tags[DESCRIPTION_TAG]
    assert "3 monthly origin(s)" in note and f"at 2026-07-31, {REFUSED}" in note
    assert run.data.tags["radar.missing_heads"] == "churn_30d@2026-07-31; churn_30d@2026-08-31"
    assert run.info.start_time == int(result.started * 1000)
    assert (run.info.end_time - run.info.start_time) / 1000 >= job_seconds
    assert run.info.start_time < before * 1000 - job_seconds * 900
    assert run.data.tags.get("mlflow.user") is not None  # the tags start_run would set
    base = run.info.artifact_uri
    with open(mlflow.artifacts.download_artifacts(f"{base}/backtest/missing_heads.json")) as f:
        logged = json.load(f)
    assert logged[0] == {"head": "churn_30d", "origin": "2026-07-31", "reason": REFUSED}
    metrics = pd.read_csv(mlflow.artifacts.download_artifacts(f"{base}/backtest/metrics.csv"))
    assert (metrics["note"] == REFUSED).sum() == 2
    # The monitor's run too: a description with its reasons and what it left out; the job's
    # start.
    report = {"verdict": "ok", "reasons": [], "model": "m v1", "data": "d",
              "left_out": [{"kind": "feature_drift", "text": "tenure_days: PSI 0.29 ..."}],
              "realised_vs_predicted": {},
              "drift": {"current_as_of": "2026-10-31", "scores": {}}}  # fmt: skip
    started = time.time() - 30
    monitor_run = MlflowClient().get_run(log_report(report, [], "radar-notes-test", started))
    assert monitor_run.info.start_time == int(started * 1000)
    assert monitor_run.data.tags[DESCRIPTION_TAG] == (
        "Monitor of m v1 at 2026-10-31: verdict ok.\n\n- left out: tenure_days: PSI 0.29 ..."
    )


def comparison_row(**kw) -> pd.DataFrame:
    row = {"head": "churn_90d", "metric": "log_loss", "challenger": 0.2000, "champion": 0.2050,
           "difference": -0.0050, "low": -0.0200, "high": 0.0120, "margin": 0.0041, "ok": False,
           "missing": False, "rows": 900}  # fmt: skip
    return pd.DataFrame([row | kw])


def test_promotion_says_not_shown_non_inferior_with_the_interval_never_worse():
    r = next(comparison_row().itertuples(index=False))
    words = shortfall_words(r, 0.95)
    assert words.startswith("churn_90d: not shown non-inferior on log loss")
    assert "difference -0.0050 (better on these rows)" in words
    assert "95% interval -0.0200 .. +0.0120" in words
    assert "its upper end +0.0120 is beyond the margin +0.0041" in words
    auc = next(comparison_row(metric="roc_auc", challenger=0.80, champion=0.81,
                              difference=-0.01, low=-0.04, high=0.02,
                              margin=0.01).itertuples(index=False))  # fmt: skip
    assert "(worse on these rows)" in shortfall_words(auc, 0.95)
    assert "its lower end -0.0400 is beyond the margin -0.0100" in shortfall_words(auc, 0.95)
    refused = Promotion(False, "2", "1", "not promoted: " + words, comparison_row())
    with console.capture() as out:
        _print_promotion(refused, PromotionConfig())
    printed = " ".join(out.get().split())
    assert "not shown non-inferior" in printed and "worse" not in printed.split("rows)")[-1]
    # The test windows in words: each head's own
    params = {
        "split.test_start": "2026-07-01",
        "split.test_end": "2026-07-31",
        "split.churn_30d.test_start": "2026-09-01",
        "split.churn_30d.test_end": "2026-09-30",
        "split.churn_90d.test_start": "2026-07-01",
        "split.churn_90d.test_end": "2026-07-31",
    }
    assert window_words(params) == (
        "churn_30d 2026-09-01..2026-09-30, churn_90d 2026-07-01..2026-07-31"
    )  # fmt: skip
    assert window_words({"split.kind": "random", "split.seed": "3"}) == (
        "random test part (seed 3)"
    )


def test_training_runs_say_what_they_did_and_compare_shows_each_heads_window(trained, registry):
    _, result = trained
    mlflow.set_tracking_uri(registry)
    # The session's registry: version 1 is this result's run (other tests log more runs).
    first = MlflowClient().get_model_version("renewal-radar", "1")
    run_id = first.tags.get("run_id") or first.run_id
    comparison = compare_runs("renewal-radar", 100, "renewal-radar")
    run = MlflowClient().get_run(run_id)
    note = run.data.tags[DESCRIPTION_TAG]
    assert note.startswith(f"Training of {len(result.heads)} head(s)")
    for head, split in result.splits.items():
        window = f"{head} {split.test_start.date()}..{split.test_end.date()}"
        assert window in note
        assert comparison.info.loc[f"test window {head}", run_id] == window.split(" ", 1)[1]
    assert "test window" not in comparison.info.index  # no single window for every head
    # The run started when training did: its duration is the job's.
    assert run.info.start_time == int(result.started * 1000)
    children = MlflowClient().search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'"
    )
    assert children and all(
        c.data.tags[DESCRIPTION_TAG].startswith(f"Head {c.data.tags['radar.head']}")
        for c in children
    )
    # MLflow 3.17's UI takes its view from the address: the link opens the classic-ML one.
    assert experiment_link("http://mlflow:5000/", "7") == (
        f"http://mlflow:5000/#/experiments/7?{CLASSIC_ML_QUERY}"
    )
    assert experiment_link(registry, "7") is None
