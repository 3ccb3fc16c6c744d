from __future__ import annotations

import json

import pandas as pd
import pytest

from features.catalogue import LABELS
from monitoring.predictions import read as read_predictions
from tests.cli import radar

pytestmark = pytest.mark.slow


def test_score_and_explain_commands(registry, long_data, long_features, tmp_path):
    as_of = json.loads((long_features / "manifest.json").read_text())["as_of_dates"][-1]
    out = radar(
        "score",
        "--data",
        str(long_data),
        "--as-of",
        as_of,
        "--out",
        str(tmp_path / "scores.csv"),
        "--tracking-uri",
        registry,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) > 100 and (scores["model_version"].astype(str) == "1").all()
    assert (scores["model_name"] == "renewal-radar").all()
    assert "Portfolio at" in out.stdout and "plays:" in out.stdout
    # every run appends to the prediction log (default predictions/ in the working folder)
    logged = read_predictions(tmp_path / "predictions")
    assert len(logged) == len(scores) and set(logged["as_of"].dt.date.astype(str)) == {as_of}
    assert (logged["model_version"] == "renewal-radar v1").all()
    assert list((tmp_path / "predictions").iterdir())[0].name == f"as_of={as_of}"
    by_id = logged.set_index("account_id")["p_churn_90d"]
    assert by_id[scores["account_id"]].to_numpy() == pytest.approx(scores["p_churn_90d"])

    out = radar(
        "explain",
        "--features",
        str(long_features),
        "--global",
        "--out",
        str(tmp_path / "explain"),
        "--sample",
        "300",
        "--tracking-uri",
        registry,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    table = pd.read_csv(tmp_path / "explain" / "global_drivers.csv")
    assert set(table["head"]) == set(LABELS)
    assert (tmp_path / "explain" / "churn_90d_shap_summary.png").stat().st_size > 1000

    account = scores["account_id"].iloc[0]
    out = radar(
        "explain",
        "--features",
        str(long_features),
        "--account",
        account,
        "--tracking-uri",
        registry,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "churn_90d" in out.stdout and "play:" in out.stdout and "points" in out.stdout


def test_score_refuses_bad_input_clearly(registry, long_data, tmp_path):
    out = radar(
        "score",
        "--data",
        str(long_data),
        "--as-of",
        "someday",
        "--out",
        str(tmp_path / "s.parquet"),
        "--tracking-uri",
        registry,
        cwd=tmp_path,
    )
    assert out.returncode == 1 and "--as-of 'someday' is not a date" in out.stderr
    out = radar(
        "score",
        "--data",
        str(long_data),
        "--as-of",
        "2025-06-30",
        "--out",
        str(tmp_path / "s.parquet"),
        "--model-uri",
        "models:/renewal-radar@nope",
        "--tracking-uri",
        registry,
        cwd=tmp_path,
    )
    assert out.returncode == 1 and "cannot load models:/renewal-radar@nope" in out.stderr
    out = radar(
        "score",
        "--data",
        str(tmp_path / "missing"),
        "--as-of",
        "2025-06-30",
        "--out",
        str(tmp_path / "s.parquet"),
        "--tracking-uri",
        registry,
        cwd=tmp_path,
    )
    assert out.returncode == 1 and "does not exist" in out.stderr
    assert not (tmp_path / "s.parquet").exists()


def test_serve_refuses_bad_settings_before_starting(long_features, tmp_path):
    out = radar(
        "serve", "--features", str(long_features), "--keepalive-requests", "0", cwd=tmp_path
    )
    assert out.returncode == 2
    said = " ".join(out.stderr.replace("│", " ").split())  # typer boxes and wraps its message
    assert (
        "Invalid value for '--keepalive-requests': Input should be greater than or equal to 1"
        in said
    )


def test_cli_default_model_is_the_scoring_default():
    from radar.common import CHAMPION_URI
    from training.registry import DEFAULT_MODEL_URI

    assert CHAMPION_URI == DEFAULT_MODEL_URI
