"""Data as teams have it: a one-row-per-customer table, short histories, heads with no events.

Each shape is built here and run through the ``radar`` command in a fresh process; the test
reads the figures the command prints.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from features.io import file_record
from features.store import FILES_KEY
from tests.cli import clean_env
from tests.cli import radar as run_radar
from tests.serving.table_round_trip import check_round_trip
from training.config import TrainConfig
from training.splits import adaptive_time_split, random_split
from training.train import from_table, train


def churn_table(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """One row per customer, no date: Yes/No label and flags, integers, blanks, an id column."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 73, n)
    monthly = rng.normal(70, 30, n).clip(18, 120).round(2)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    partner = rng.choice(["Yes", "No"], n)
    calls = rng.poisson(1.5, n)
    logit = (
        -0.9
        - 0.045 * (tenure - 30)
        + 1.3 * (contract == "Month-to-month")
        + 0.015 * (monthly - 70)
        + 0.25 * calls
        - 0.4 * (partner == "Yes")
    )
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    total = (monthly * tenure).round(2).astype(str)
    total[rng.random(n) < 0.01] = " "  # as exported: a blank cell for new customers
    return pd.DataFrame(
        {
            "customerID": [f"{i:04d}-{rng.integers(10**5):05d}" for i in range(n)],
            "tenure": tenure,
            "Contract": contract,
            "Partner": partner,
            "PaperlessBilling": rng.choice(["true", "false"], n),
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "SupportCalls": calls,
            "Churn": np.where(churn, "Yes", "No"),
        }
    )


def figures(stdout: str, head: str) -> dict[str, float]:
    """ROC-AUC per predictor from the printed test table."""
    out = {}
    for predictor in ("model", "logistic"):
        m = re.search(rf"{re.escape(head)}\s*│\s*{predictor}\s*│\s*([0-9.]+)", stdout)
        if m:
            out[predictor] = float(m[1])
    return out


def rows_of(stdout: str, head: str) -> dict[str, tuple[int, int, float]]:
    """(rows, positives, label rate) per part from the printed label table."""
    out = {}
    cells = r"\s*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│\s*([0-9.]+)"
    pattern = rf"{re.escape(head)}\s*│\s*(train|validation|test){cells}"
    for part, rows, pos, rate in re.findall(pattern, stdout):
        out[part] = (int(rows.replace(",", "")), int(pos.replace(",", "")), float(rate))
    return out


@pytest.fixture
def radar(tmp_path):
    env = clean_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    return lambda *args: run_radar(*args, cwd=tmp_path, env=env)


@pytest.mark.slow
def test_single_snapshot_table_trains_on_a_random_split_and_says_so(tmp_path, radar):
    path = tmp_path / "customers.csv"
    churn_table().to_csv(path, index=False)
    out = radar("train", "--table", str(path), "--label", "Churn", "--max-trees", "100")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    text = out.stdout + out.stderr
    assert "label Churn: 'No' -> 0, 'Yes' -> 1" in text
    assert "customerID: text with 4,000 distinct values" in text
    assert "evaluation is not temporal" in text
    parts = rows_of(out.stdout, "Churn")
    assert {p: r[0] for p, r in parts.items()} == {"train": 2800, "validation": 600, "test": 600}
    rates = [r[2] for r in parts.values()]
    assert max(rates) - min(rates) < 0.01  # stratified
    auc = figures(out.stdout, "Churn")
    assert auc["model"] > 0.72 and auc["logistic"] > 0.72, auc
    assert "registered renewal-radar-Churn version 1 as @challenger" in out.stdout
    # the model scores the table's rows: `radar score --table`, its pyfunc, `/v1/score/rows`
    check_round_trip(path, tmp_path, radar, f"sqlite:///{tmp_path / 'mlflow.db'}")

    # integers, blanks in a number, true/false text and Yes/No flags all train as features
    data = from_table(path, "Churn")
    assert data.spec.numeric == (
        "tenure",
        "PaperlessBilling",
        "MonthlyCharges",
        "TotalCharges",
        "SupportCalls",
    )
    assert set(data.spec.categorical) == {"Contract", "Partner"}
    assert data.frame["TotalCharges"].isna().sum() > 0

    # the champion is judged on the same random test rows when another run is promoted
    assert radar("promote", "--model", "renewal-radar-Churn").returncode == 0
    again = radar("train", "--table", str(path), "--label", "Churn", "--seed", "3", "--promote")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "random test part (seed 0)" in again.stdout


def test_grouped_random_split_keeps_each_entity_in_one_part():
    rng = np.random.default_rng(1)
    entity = pd.Series(rng.integers(0, 300, 3000), name="customer")
    y = pd.Series((rng.random(3000) < 0.3).astype(float))
    y[:50] = np.nan
    split = random_split(y, 0, entity)
    part = split.assign(y)
    assert part[:50].isna().all() or part[:50].notna().any()  # unknown labels: maybe no part
    by_entity = pd.DataFrame({"e": entity, "p": part}).dropna().groupby("e")["p"].nunique()
    assert (by_entity == 1).all()
    shares = part.value_counts(normalize=True)
    assert 0.6 < shares["train"] < 0.8 and 0.1 < shares["test"] < 0.2


def test_bad_time_inf_and_too_small_tables_are_refused_with_options(tmp_path, radar):
    table = churn_table(600)
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    out = radar("train", "--table", str(path), "--label", "Churn", "--time", "tenure")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "t.csv.tenure: values like 1" in out.stderr or "t.csv.tenure: values like" in out.stderr
    assert "numbers, not dates" in out.stderr

    # 600 customers: too few for a held-out split, so cross-validated, every figure with its
    # interval (it used to be refused: "validation has 90 rows")
    (tmp_path / "cv.yaml").write_text("cv_repeats: 2\nshap_sample: 50\n")
    args = ("--max-trees", "30", "--config", str(tmp_path / "cv.yaml"))
    out = radar("train", "--table", str(path), "--label", "Churn", *args)
    assert out.returncode == 0, out.stderr[-3000:]
    text = " ".join(out.stdout.split())
    assert "Cross-validated (5 folds x 2 repeats): mean (95% interval)" in text
    assert re.search(r"Churn │ model │ 0\.\d{3} \(0\.\d{3}-0\.\d{3}\)", text), text
    assert "registered renewal-radar-Churn version 1" in text

    table.loc[7, "MonthlyCharges"] = np.inf
    table.to_csv(path, index=False)
    out = radar("train", "--table", str(path), "--label", "Churn")
    assert out.returncode == 1 and "t.csv.MonthlyCharges: row 8: inf is infinite" in " ".join(
        out.stderr.split()
    )


@pytest.mark.slow
def test_constant_and_chance_heads_are_not_registered(tmp_path):
    table = churn_table(4000, seed=2)
    path = tmp_path / "noise.csv"
    cfg = TrainConfig.from_yaml(**{"lightgbm.max_trees": 30, "shap_sample": 50})
    table.assign(Churn="No").to_csv(path, index=False)
    with pytest.raises(ValueError, match="Churn: skipped, the label has no positives"):
        train(from_table(path, "Churn"), cfg)
    noise = np.random.default_rng(0).random(len(table)) < 0.3
    table.assign(Churn=np.where(noise, "yes", "NO")).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"Churn: not registered, validation ROC-AUC 0\.5\d+"):
        train(from_table(path, "Churn"), cfg)
    # a single feature that never varies: nothing to split on
    table[["Churn"]].assign(flat=1.0).assign(Churn=np.where(noise, 1, 0)).to_csv(path, index=False)
    with pytest.raises(ValueError, match="Churn: not registered, the model is constant"):
        train(from_table(path, "Churn"), cfg)


def test_a_short_history_shrinks_the_windows_never_the_gap():
    times = pd.Series(pd.date_range("2024-11-30", periods=12, freq="ME"))
    labelled = times <= "2025-07-31"
    split, note = adaptive_time_split(times, labelled, 90, 90, 90)
    assert split.as_dict() == {
        "train_start": "2024-11-30",
        "train_end": "2024-12-31",
        "validation_start": "2025-04-30",
        "validation_end": "2025-04-30",
        "test_start": "2025-07-31",
        "test_end": "2025-07-31",
        "gap_days": 90,
    }
    assert "1 test and 1 validation" in note
    with pytest.raises(ValueError, match="supports label horizons up to 89 days"):
        adaptive_time_split(times[2:], labelled[2:], 90, 90, 90)


@pytest.mark.slow
def test_a_head_with_no_positives_is_skipped_and_the_others_register(
    long_features, tmp_path, radar
):
    """A product with no upsell: both expansion labels are 0 everywhere."""
    import shutil

    own = tmp_path / "features"
    shutil.copytree(long_features, own)
    snaps = pd.read_parquet(own / "snapshots.parquet")
    for col in ("expansion_30d", "expansion_90d"):
        snaps[col] = snaps[col].where(snaps[col].isna(), 0.0)
    snaps.to_parquet(own / "snapshots.parquet")
    # The store refuses a snapshot file not written with its manifest: record the new one.
    manifest = json.loads((own / "manifest.json").read_text())
    manifest[FILES_KEY]["snapshots.parquet"] = file_record(own / "snapshots.parquet")
    (own / "manifest.json").write_text(json.dumps(manifest))
    cfg = tmp_path / "train.yaml"
    cfg.write_text("lightgbm:\n  max_trees: 60\nshap_sample: 100\nmin_positives: 20\n")
    out = radar("train", "--features", str(own), "--config", str(cfg))
    assert out.returncode == 0, out.stderr[-3000:]
    err = " ".join(out.stderr.split())
    for head in ("expansion_30d", "expansion_90d"):
        assert f"{head}: skipped, the label has no positives" in err
    assert "(heads: churn_30d, churn_90d, renewal_likelihood)" in " ".join(out.stdout.split())
    for head in ("churn_30d", "churn_90d"):
        auc = figures(out.stdout, head)
        assert auc["model"] > 0.7 and auc["logistic"] > 0.7, (head, auc)


@pytest.mark.slow
def test_twelve_monthly_snapshots_train_all_four_heads(tmp_path, radar):
    """A year of history: each head's gap is its horizon, the windows shrink to fit."""
    data, features = tmp_path / "data", tmp_path / "features"
    out = radar(
        "generate", "--accounts", "1500", "--months", "12", "--seed", "3", "--out", str(data)
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert radar("validate", "--data", str(data)).returncode == 0
    # 12 monthly as-of dates: from the first month end (windows longer than the history so
    # far are missing, not invented)
    out = radar("features", "--data", str(data), "--out", str(features), "--start", "2024-11-30")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "at 12 as-of dates" in " ".join(out.stdout.split())
    out = radar("train", "--features", str(features), "--max-trees", "80")
    assert out.returncode == 0, out.stderr[-3000:]
    text = " ".join(out.stdout.split())
    assert "(heads: churn_30d, churn_90d, expansion_30d, expansion_90d)" in text
    assert "churn_30d: train 2024-11-30..2025-03-31" in text and "gap 30 days" in text
    assert "churn_90d: train 2024-11-30..2024-12-31" in text and "gap 90 days" in text
    for head in ("churn_30d", "churn_90d", "expansion_30d", "expansion_90d"):
        parts = rows_of(out.stdout, head)
        assert all(rows >= 500 and pos >= 30 for rows, pos, _ in parts.values()), parts
        auc = figures(out.stdout, head)
        assert auc["model"] > 0.7 and auc["logistic"] > 0.68, (head, auc)


@pytest.mark.slow
def test_a_tables_horizon_is_kept_in_the_bundle_and_said_in_sentences(tmp_path):
    """``--horizon 60`` for a table of one's own: the bundle keeps it, the words say 60-day."""
    from features.words import outcome_words, reason_sentence

    path = tmp_path / "customers.csv"
    churn_table(4000, seed=4).to_csv(path, index=False)
    cfg = TrainConfig.from_yaml(**{"lightgbm.max_trees": 30, "shap_sample": 50})
    bundle = train(from_table(path, "Churn", horizon=60), cfg).bundle
    assert bundle.metadata["horizons"] == {"Churn": 60} and bundle.horizon("Churn") == 60
    assert outcome_words("Churn", bundle.horizon("Churn")) == "60-day Churn chance"
    assert "60-day" in reason_sentence("usage", 0.1, "Churn", bundle.horizon("Churn"))
    # a catalogue head without a kept horizon reads it from its name
    assert bundle.horizon("churn_30d") == 30
