"""Snapshots: the engine agrees with the reference, nothing leaks from after T, files are whole."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from features.catalogue import (
    FEATURE_NAMES,
    FEATURES,
    HORIZONS,
    KEY_COLUMNS,
    features_for,
    product_feature_columns,
)
from features.config import FeatureConfig
from features.contract import Dataset, load_dataset
from features.engine import compute, compute_features
from features.leakage import differences, label_leak_check, leak_check
from features.pipeline import build_snapshots
from features.reference import reference_features
from features.snapshots import active_snapshots, as_of_dates
from radar.cli import app

ACTIVITY = FeatureConfig(activity_churn_days=30)


@pytest.fixture(scope="module")
def dataset(small_dataset) -> Dataset:
    return load_dataset(small_dataset)


@pytest.fixture(scope="module")
def run(dataset):
    return build_snapshots(dataset, FeatureConfig())


def assert_same(a: pd.DataFrame, b: pd.DataFrame, columns) -> None:
    assert differences(a, b, list(columns)) == {}


def test_engine_matches_reference(dataset):
    cfg = FeatureConfig()
    snaps = active_snapshots(dataset, as_of_dates(dataset, cfg))
    engine, chosen = compute(dataset, snaps, cfg)
    reference = reference_features(dataset, snaps, cfg)
    product = [f.name for f in product_feature_columns(chosen)]
    assert list(engine.columns) == [*KEY_COLUMNS, *FEATURE_NAMES, *product]
    assert list(reference.columns) == list(engine.columns)
    assert (engine["account_id"] == reference["account_id"]).all()
    assert_same(engine, reference, [*FEATURE_NAMES, *product])
    # Not vacuous: the values vary and most are known.
    assert engine["active_user_days_30d"].nunique() > 100
    assert engine["open_tickets"].max() > 0 and engine["champion_lost_90d"].max() > 0
    # The most used product features, by events up to the last as-of date; ties by name.
    usage = dataset["usage"][dataset["usage"]["date"] <= snaps["as_of"].max()]
    totals = usage.groupby("feature")["events"].sum()
    expected = sorted(totals.index, key=lambda name: (-totals[name], name))[:10]
    assert chosen == tuple(expected) and len(chosen) == min(10, len(totals))
    for name in product:
        assert engine[name].nunique() > 1, name
    for name in product[:3]:  # the most used feature's columns
        assert engine[name].notna().mean() > 0.3 and engine[name].nunique() > 20, name


def test_engine_matches_reference_weekly(dataset):
    # Weekly as-of dates make many more, shorter lookup buckets and overlapping windows.
    cfg = FeatureConfig(freq="weekly", start="2025-09-01")
    snaps = active_snapshots(dataset, as_of_dates(dataset, cfg))
    engine = compute_features(dataset, snaps, cfg)
    assert_same(engine, reference_features(dataset, snaps, cfg), list(engine.columns)[2:])


def test_engine_result_does_not_depend_on_parallelism(dataset):
    cfg = FeatureConfig()
    snaps = active_snapshots(dataset, as_of_dates(dataset, cfg))
    one = compute_features(dataset, snaps, cfg, threads=1)
    three = compute_features(dataset, snaps, cfg, threads=3)  # usage read in three parts
    pd.testing.assert_frame_equal(one, three)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["contracts", "activity"])
@settings(
    max_examples=5,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pick=st.integers(0, 9), seed=st.integers(0, 2**16))
def test_nothing_after_t_changes_the_t_snapshot(dataset, usage_only, shape, pick, seed):
    # Without contracts, labels come from the activity log itself (`--activity-churn-days`):
    # they must not read past T + 90 days either.
    ds, cfg = (dataset, None) if shape == "contracts" else (usage_only, ACTIVITY)
    dates = as_of_dates(ds, cfg or FeatureConfig())
    T = pd.Timestamp(dates[min(pick, len(dates) - 1)])
    assert leak_check(ds, T, seed, cfg) == {}
    if cfg is not None:
        assert label_leak_check(ds, T, seed, cfg) == {}


def test_snapshot_table_shape_and_labels(run):
    s = run.snapshots
    assert not s.duplicated(list(KEY_COLUMNS)).any()
    m = run.manifest
    chosen = tuple(m["product_features"])
    assert m["rows"] == len(s) and m["features"] == [f.name for f in features_for(chosen)]
    assert len(chosen) == 10 and m["config"]["product_features"] == list(chosen)
    assert set(m["features"]) <= set(s.columns)
    end = pd.Timestamp(m["data_end"])
    for h in HORIZONS:
        for kind in ("churn", "expansion"):
            col = s[f"{kind}_{h}d"]
            unknown = s["as_of"] + pd.Timedelta(days=h) > end
            assert col[unknown].isna().all() and col[~unknown].notna().all()
            assert set(col.dropna().unique()) <= {0.0, 1.0}
        assert (s[f"churn_{h}d"].fillna(0) <= s["churn_90d"].fillna(1)).all()
    assert 0.005 < s["churn_90d"].mean() < 0.2 and 0.05 < s["expansion_90d"].mean() < 0.4


def test_windows_before_history_are_missing(run):
    s = run.snapshots
    first = s["as_of"].min()  # 90 days into the data: 180-day windows are not full yet
    at_first = s[s["as_of"] == first]
    assert at_first["usage_trend_90d"].isna().all() and at_first["training_180d"].isna().all()
    assert at_first["tickets_90d"].notna().all()
    later = s[s["as_of"] > first + pd.Timedelta(days=200)]
    assert later["training_180d"].notna().all()


def test_catalogue_is_complete():
    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names))
    for f in FEATURES:
        assert f.family in {"usage", "engagement", "relationship", "support", "commercial"}
        assert len(f.description) >= 9 and f.unit


def test_missing_optional_tables_say_what_is_not_computed(data_copy):
    (data_copy / "weekly_active_users.parquet").unlink()
    (data_copy / "milestones.parquet").unlink()
    ds = load_dataset(data_copy)
    result = build_snapshots(ds, FeatureConfig())
    s = result.snapshots
    assert s["seat_utilisation"].isna().all() and s["milestones_on_time_rate"].isna().all()
    assert s["health_score"].notna().all()  # weights of the missing metrics are spread
    assert result.manifest["not_computed"]["milestones"] == [
        "milestones_achieved",
        "milestones_overdue",
        "milestones_on_time_rate",
    ]
    assert "seat_utilisation" in result.manifest["not_computed"]["weekly_active_users"]


def test_weekly_snapshots(dataset):
    result = build_snapshots(dataset, FeatureConfig(freq="weekly", start="2025-09-01"))
    dates = pd.DatetimeIndex(result.snapshots["as_of"].unique())
    assert (dates.day_of_week == 6).all() and len(dates) >= 8


def test_cli_writes_files_and_writes_nothing_on_bad_input(data_copy, tmp_path):
    runner = CliRunner()
    out = tmp_path / "features"
    ok = runner.invoke(
        app, ["features", "--data", str(data_copy), "--out", str(out), "--health", "seed002"]
    )
    assert ok.exit_code == 0, ok.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["health_scheme"]["name"] == "seed002"
    said = " ".join(ok.output.split())  # no text in this data: said once
    assert said.count("no ticket or survey text: the text features are absent") == 1
    assert set(manifest["input"]["fingerprint"]) >= {"accounts", "usage"}
    snaps = pd.read_parquet(out / "snapshots.parquet")
    assert len(snaps) == manifest["rows"]
    assert set(snaps["health_band"]) <= {"thriving", "healthy", "at_risk", "critical", "lost"}

    bad_out = tmp_path / "bad"
    df = pd.read_parquet(data_copy / "support_tickets.parquet")
    df.loc[3, "severity"] = "apocalyptic"
    df.to_parquet(data_copy / "support_tickets.parquet")
    bad = runner.invoke(app, ["features", "--data", str(data_copy), "--out", str(bad_out)])
    assert bad.exit_code == 1
    assert "support_tickets.severity" in bad.output and "apocalyptic" in bad.output
    assert not bad_out.exists()
    cfg = runner.invoke(
        app, ["features", "--data", str(data_copy), "--out", str(bad_out), "--health", "seed999"]
    )
    assert cfg.exit_code == 1 and "bad feature configuration" in cfg.output
    freq = runner.invoke(
        app, ["features", "--data", str(data_copy), "--out", str(bad_out), "--freq", "daily"]
    )
    assert freq.exit_code == 1 and "freq" in freq.output and not bad_out.exists()
    late = runner.invoke(
        app,
        [
            "features",
            "--data",
            str(data_copy),
            "--out",
            str(bad_out),
            "--start",
            "2031-01-01",
            "--end",
            "2031-02-01",
        ],
    )
    assert late.exit_code == 1 and not bad_out.exists()
