"""``radar effects``: clear one-line errors on bad input; a run with plots on a good table."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from effects.artefact import read_accounts, read_summary
from tests.cli import clean_env
from tests.cli import radar as run_radar
from tests.effects.test_estimate import _confounded


@pytest.fixture
def radar(tmp_path):
    env = clean_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db")
    return lambda *args: run_radar(*args, cwd=tmp_path, env=env)


def _actions(data, plays: list[str], dates: list[str]) -> None:
    ids = pd.read_parquet(data / "accounts.parquet")["account_id"]
    n = len(plays)
    pd.DataFrame(
        {
            "account_id": ids.iloc[:n].to_numpy(),
            "date": pd.to_datetime(dates),
            "action": "play_started",
            "play": plays,
            "outcome": None,
            "owner": "csm_001",
            "reason": None,
            "cta_id": [f"P{i}" for i in range(n)],
        }
    ).to_parquet(data / "csm_actions.parquet", index=False)


def _fails_with(proc, text: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert text in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1


def test_without_csm_actions(radar, data_copy):
    _fails_with(radar("effects", "--data", str(data_copy)), "no play records: effects cannot")


def test_unknown_play(radar, data_copy):
    _actions(data_copy, ["adoption_plan", "magic_play"], ["2025-03-02", "2025-03-02"])
    _fails_with(radar("effects", "--data", str(data_copy)), "unknown play 'magic_play'")


def test_dates_out_of_range(radar, data_copy):
    _actions(data_copy, ["adoption_plan"], ["2031-01-01"])
    _fails_with(radar("effects", "--data", str(data_copy)), "outside the data's range")


def test_a_bad_setting_is_named(radar, data_copy, tmp_path):
    (tmp_path / "effects.yaml").write_text(
        "max_accounts: 5\nnuisance_max_rows: 10\noutcome: expansion_90d\nfragile_below: 2\n"
    )
    proc = radar("effects", "--data", str(data_copy), "--config", str(tmp_path / "effects.yaml"))
    _fails_with(proc, "bad effects configuration")
    assert "max_accounts" in proc.stderr and "nuisance_max_rows" in proc.stderr
    # Expansion is not a churn label: refused, not shown with churn's words.
    said = "outcome: Value error, effects are estimated on a churn label (churn_30d, churn_90d)"
    assert f"{said} (got 'expansion_90d')" in proc.stderr
    assert "fragile_below: Input should be less than 1 (got 2)" in proc.stderr


@pytest.mark.slow  # builds the small dataset's snapshots: about 20 s
def test_too_few_plays(radar, data_copy):
    _actions(data_copy, ["value_review"] * 8, ["2025-06-02"] * 8)
    _fails_with(radar("effects", "--data", str(data_copy)), "too few plays to estimate")


@pytest.mark.slow  # two commands and one estimate: about 45 s
def test_own_table_prints_effects_and_logs_a_run(radar, tmp_path):
    df, _ = _confounded(3000, seed=2)
    df = df.rename(columns={"treatment": "play_run", "outcome": "churned"})
    df["play_run"] = df["play_run"].replace({"none": ""})
    df.to_parquet(tmp_path / "own.parquet")
    proc = radar(
        "effects",
        "--table",
        "own.parquet",
        "--treatment",
        "play_run",
        "--outcome",
        "churned",
        "--worklist",
        "worklist.csv",
        "--out",
        "saved",
    )
    assert proc.returncode == 0, proc.stderr
    summary = read_summary(tmp_path / "saved")  # what the service's pages read
    play = next(p for p in summary["plays"] if p["play"] == "adoption_plan")
    assert play["effect"]["high"] < 0 and play["treated"] > 50
    assert play["saved_arr"]["low"] < play["saved_arr"]["estimate"] < play["saved_arr"]["high"]
    assert play["cost"] == play["treated"] * 8.0 * 100.0  # default hours and hourly cost
    assert summary["program"]["saved_arr"]["estimate"] == pytest.approx(
        sum(p["saved_arr"]["estimate"] for p in summary["plays"])
    )
    assert set(play["by_segment"]) == {"enterprise", "mid_market", "smb"}
    saved = read_accounts(tmp_path / "saved")
    assert len(saved) == 3000 and saved["account_id"].is_unique
    assert (saved["saved_low_adoption_plan"] <= saved["saved_high_adoption_plan"]).all()
    assert "adoption_plan" in proc.stdout and "naive treated - untreated" in proc.stdout
    assert "no unmeasured confounding" in proc.stdout
    wl = pd.read_csv(tmp_path / "worklist.csv")
    assert {"account_id", "play", "basis", "expected_saved_arr", "hours"} <= set(wl.columns)
    assert set(wl["basis"]) <= {"evidence", "no evidence yet"}
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    run = mlflow.search_runs(experiment_names=["radar-effects"], output_format="list")[0]
    assert run.data.metrics["effect_adoption_plan_high"] < 0
    rv = play["robustness"]
    assert 0 < rv["interval"] < rv["estimate"] < 1  # the interval excludes zero
    assert run.data.metrics["robustness_adoption_plan"] == pytest.approx(rv["interval"])
    assert "robust to unseen confounding" in proc.stdout
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "effects")}
    assert {"effects/forest.png", "effects/uplift.png", "effects/worklist.csv"} <= arts
    bad = radar("effects", "--table", "own.parquet", "--treatment", "nope", "--outcome", "churned")
    _fails_with(bad, "no column 'nope'")
