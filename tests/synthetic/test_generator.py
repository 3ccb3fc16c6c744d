"""The synthetic generator: deterministic, valid, realistic, honest about its ground truth."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.catalogue import HORIZONS
from features.contract import validate_dataset
from features.schema import TABLES
from features.synthetic.dataset import (
    TARGET_RANGES,
    generate_dataset,
    load_world,
    oracle_table,
    realised_labels,
)
from features.synthetic.oracle import Oracle
from features.synthetic.process import SyntheticConfig
from radar.cli import app
from tests.synthetic.mc import monte_carlo


def _digest(path) -> dict[str, str]:
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    """A portfolio big enough for stable figures (8,000 accounts x 24 months)."""
    return generate_dataset(tmp_path_factory.mktemp("p") / "data", 8000, 24, seed=2)


def test_deterministic_for_a_seed(tmp_path, small_dataset):
    again = generate_dataset(tmp_path / "again", accounts=300, months=12, seed=11)
    assert _digest(again.path) == _digest(small_dataset)
    other = generate_dataset(tmp_path / "other", accounts=300, months=12, seed=12)
    assert _digest(other.path) != _digest(small_dataset)


def test_output_is_valid_and_complete(small_dataset):
    report = validate_dataset(small_dataset)
    assert report.ok, report.summary()
    # The built-in world records no CSM actions (yet): that optional table is absent.
    assert report.missing_optional == ["csm_actions"]
    for name in [n for n in TABLES if n not in report.missing_optional]:
        assert len(pd.read_parquet(small_dataset / f"{name}.parquet")) > 0, name
    gt = small_dataset / "ground_truth"
    assert {p.name for p in gt.iterdir()} >= {
        "accounts.parquet",
        "latent_monthly.parquet",
        "oracle.parquet",
        "summary.json",
        "process.yaml",
    }


def test_usage_is_sparse_and_narrow(small_dataset):
    schema = pd.read_parquet(small_dataset / "usage.parquet").dtypes
    assert str(schema["account_id"]) == "category" and str(schema["feature"]) == "category"
    usage = pd.read_parquet(small_dataset / "usage.parquet")
    assert (usage["active_users"] > 0).all()  # rows only where there was activity
    weekend = pd.to_datetime(usage["date"]).dt.day_of_week >= 5
    assert weekend.mean() < 0.15


@pytest.mark.slow
def test_portfolio_figures_in_realistic_ranges(portfolio):
    s = portfolio.summary
    for key, (lo, hi) in TARGET_RANGES.items():
        assert lo <= s[key] <= hi, f"{key} = {s[key]:.3f} outside {lo}-{hi}"
    segs = s["by_segment"]
    # Mixed patterns across segments: bigger customers file more tickets and are happier.
    assert segs["enterprise"]["mean_nps"] > segs["smb"]["mean_nps"]
    assert segs["enterprise"]["tickets"] / segs["enterprise"]["accounts"] > 3 * (
        segs["smb"]["tickets"] / segs["smb"]["accounts"]
    )


@pytest.mark.slow
def test_oracle_consistency(portfolio):
    o = portfolio.oracle
    for kind in ("churn", "expansion"):
        assert (o[f"p_{kind}_30d"] <= o[f"p_{kind}_90d"] + 1e-6).all()
        assert o[f"p_{kind}_30d"].between(0, 1).all()
    world = portfolio.world
    idx = pd.Series(np.arange(world.n), index=world.account_ids())
    ok = o["as_of"] + pd.Timedelta(days=90) <= pd.Timestamp(world.window_end)
    labels = realised_labels(world, o.loc[ok, "as_of"], idx[o.loc[ok, "account_id"]].to_numpy())
    p = o.loc[ok, "p_churn_90d"].to_numpy()
    churned = labels["churn_90d"].to_numpy()
    # Churned accounts had high oracle risk, on average; and the oracle is calibrated.
    assert p[churned].mean() > 3 * p[~churned].mean()
    assert abs(p.mean() - churned.mean()) < 0.01
    e = o.loc[ok, "p_expansion_90d"].to_numpy()
    assert abs(e.mean() - labels["expansion_90d"].mean()) < 0.01


@pytest.mark.slow
def test_oracle_matches_monte_carlo(small_dataset):
    world = load_world(small_dataset)
    oracle = Oracle(world)
    for as_of in ("2025-03-31", "2025-06-14"):
        probs = oracle.probabilities(as_of).sort_values("p_churn_90d")
        picks = probs.iloc[[0, len(probs) // 2, -8, -3, -1]]
        for _, row in picks.iterrows():
            i = int(row["account_index"])
            for h in HORIZONS:
                churn, expand = monte_carlo(world, i, as_of, h, draws=200_000, seed=i)
                assert abs(row[f"p_churn_{h}d"] - churn) < 0.005, (as_of, i, h)
                assert abs(row[f"p_expansion_{h}d"] - expand) < 0.005, (as_of, i, h)


def test_oracle_any_date_and_reload(small_dataset):
    world = load_world(small_dataset)
    stored = pd.read_parquet(small_dataset / "ground_truth" / "oracle.parquet")
    again = oracle_table(world, np.array(["2025-04-30"], dtype="datetime64[D]"))
    ref = stored[stored["as_of"] == "2025-04-30"].reset_index(drop=True)
    pd.testing.assert_frame_equal(again, ref, check_dtype=False)
    mid = Oracle(world).probabilities("2025-05-17")
    assert len(mid) > 0 and (mid["p_churn_30d"] <= mid["p_churn_90d"] + 1e-6).all()
    with pytest.raises(ValueError, match="outside the simulated window"):
        Oracle(world).probabilities("2030-01-31")


def test_no_observed_column_copies_the_latent_state(small_dataset):
    latent = pd.read_parquet(small_dataset / "ground_truth" / "latent_monthly.parquet")
    accounts_gt = pd.read_parquet(small_dataset / "ground_truth" / "accounts.parquet")
    hidden = np.concatenate(
        [latent["health"], latent["x"], accounts_gt["mu"], accounts_gt["growth"]]
    ).round(6)
    for name in TABLES:
        if not (small_dataset / f"{name}.parquet").exists():
            continue  # an optional table the world does not write
        df = pd.read_parquet(small_dataset / f"{name}.parquet")
        for col in df.select_dtypes("number").columns:
            shared = np.intersect1d(df[col].dropna().astype(float).round(6), hidden)
            assert len(shared) == 0 or np.all(shared == np.round(shared)), (name, col)


def test_labels_only_inside_the_window(small_dataset):
    subs = pd.read_parquet(small_dataset / "subscriptions.parquet")
    end = pd.Timestamp("2025-10-31")
    assert subs["start_date"].max() <= end
    tickets = pd.read_parquet(small_dataset / "support_tickets.parquet")
    assert tickets["resolved_date"].max() <= end  # resolutions after the end are not known yet


def test_cli_generate_prints_figures_and_bad_config_writes_nothing(tmp_path):
    runner = CliRunner()
    out = tmp_path / "g"
    result = runner.invoke(
        app, ["generate", "--accounts", "120", "--months", "6", "--seed", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "oracle_auc_churn_90d" in result.output and (out / "usage.parquet").exists()
    summary = json.loads((out / "ground_truth" / "summary.json").read_text())
    assert summary["accounts"] == 120

    zero = runner.invoke(app, ["generate", "--accounts", "0", "--out", str(tmp_path / "z")])
    assert zero.exit_code == 2 and "accounts" in zero.output and not (tmp_path / "z").exists()

    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("latent:\n  phi: high\n")
    bad = runner.invoke(
        app,
        ["generate", "--accounts", "50", "--out", str(tmp_path / "none"), "--config", str(bad_cfg)],
    )
    assert bad.exit_code == 1 and "latent.phi" in bad.output
    assert not (tmp_path / "none").exists()
    late = runner.invoke(
        app,
        ["generate", "--accounts", "50", "--out", str(tmp_path / "late"), "--start", "2025-01-15"],
    )
    assert late.exit_code == 1 and "first day of a month" in late.output
    assert not (tmp_path / "late").exists()


def test_config_overrides_from_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("segment_mix: [0.2, 0.3, 0.5]\ndecisions:\n  churn_health: 2.0\n")
    cfg = SyntheticConfig.from_yaml(path, start="2023-01-01")
    assert cfg.segment_mix == (0.2, 0.3, 0.5)
    assert cfg.decisions.churn_health == 2.0 and cfg.start == "2023-01-01"
