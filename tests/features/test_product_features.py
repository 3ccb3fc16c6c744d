"""Per-product-feature usage columns: patterns in the catalogue, the choice, missing seats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.catalogue import (
    FEATURE_BY_NAME,
    SIGNAL,
    product_feature_columns,
    product_feature_slugs,
)
from features.config import FeatureConfig
from features.contract import load_dataset
from features.engine import compute
from features.pipeline import mask_unknown_history
from features.snapshots import active_snapshots, as_of_dates
from features.words import format_value, sentence
from radar.cli import app
from training.config import LightGBMConfig
from training.data import FeatureSpec
from training.model import lightgbm_params

ACTIVITY = FeatureConfig(activity_churn_days=30)


def test_slugs_are_lower_case_and_unique():
    names = ["Reports", "reports", "Data Export!", "???", "API v2"]
    assert product_feature_slugs(names) == {
        "Reports": "reports",
        "reports": "reports_2",
        "Data Export!": "data_export",
        "???": "feature",
        "API v2": "api_v2",
    }


def test_the_registry_resolves_pattern_names():
    cols = product_feature_columns(["Reports"])
    assert [f.name for f in cols] == [
        "usage_reports_per_seat_30d",
        "usage_reports_per_seat_90d",
        "usage_reports_trend_30d",
    ]
    for f in cols:
        assert f.name in FEATURE_BY_NAME and FEATURE_BY_NAME[f.name] == f
        # Like the overall usage features: more use never raises churn risk.
        assert f.family == "usage" and f.role == SIGNAL and f.churn_effect == -1
        assert f.effect_on("expansion_90d") == 1
    assert [f.window for f in cols] == [30, 90, 60]
    assert "usage" in cols[2].source and "subscriptions" not in cols[2].source
    for bad in ("usage__per_seat_30d", "usage_Reports_per_seat_30d", "reports_per_seat_30d"):
        assert bad not in FEATURE_BY_NAME and FEATURE_BY_NAME.get(bad) is None
        with pytest.raises(KeyError):
            FEATURE_BY_NAME[bad]
    # Static names win: the overall trend is not a product feature called "".
    assert FEATURE_BY_NAME["usage_trend_30d"].description.startswith("change in active")


def test_reasons_read_in_words():
    said = sentence("usage_data_export_per_seat_30d", 4.25, -0.031, "churn_90d")
    assert said == (
        "Use of data export per seat, last 30 days: 4.2; this lowers 90-day churn risk by "
        "3.1 points."
    )
    trend = sentence("usage_reports_trend_30d", -0.4, 0.05, "churn_30d")
    assert trend.startswith("Change in use of reports, last 30 days against the 30 before: -40%")
    assert format_value("usage_reports_per_seat_90d", np.nan) == "no data"


def test_model_spec_and_monotone_directions_cover_the_columns():
    spec = FeatureSpec.from_catalogue(("Reports", "Billing"))
    product = [c for c in spec.names if c.startswith("usage_") and "_per_seat_" in c]
    assert len(product) == 4 and len(FeatureSpec.from_catalogue().names) + 6 == len(spec.names)
    params = lightgbm_params(LightGBMConfig(), spec, "churn_90d", seed=1, threads=1)
    directions = dict(zip(spec.names, params["monotone_constraints"], strict=True))
    assert directions["usage_billing_trend_30d"] == -1
    assert directions["usage_reports_per_seat_90d"] == -1


def test_no_seats_means_use_per_account(usage_only):
    # Accounts without contracts have no seats: their product-feature use is per account
    # (the engine-vs-reference test checks the values); the trend needs no seats.
    dates = as_of_dates(usage_only, ACTIVITY)[-2:]
    snaps = active_snapshots(usage_only, dates, ACTIVITY)
    out, chosen = compute(usage_only, snaps, ACTIVITY.model_copy(update={"product_features": None}))
    assert len(chosen) == 10
    slug = product_feature_slugs(chosen)[chosen[0]]
    per_30, per_90 = out[f"usage_{slug}_per_seat_30d"], out[f"usage_{slug}_per_seat_90d"]
    assert per_30.notna().all() and (per_30 > 0).mean() > 0.3
    assert (per_30 == per_30.round()).all()  # whole events per account, not per seat
    assert (per_90 >= per_30).all()
    assert out[f"usage_{slug}_trend_30d"].notna().mean() > 0.3


def test_zero_seats_and_a_fixed_choice(data_copy):
    subs = pd.read_parquet(data_copy / "subscriptions.parquet")
    zero = subs["account_id"] == subs["account_id"].iloc[0]
    subs.loc[zero, "seats"] = 0
    subs.to_parquet(data_copy / "subscriptions.parquet", index=False)
    ds = load_dataset(data_copy)
    cfg = FeatureConfig(product_features=("reports", "no_such_feature"))
    dates = as_of_dates(ds, cfg)[-1:]
    out, chosen = compute(ds, active_snapshots(ds, dates), cfg)
    assert chosen == ("reports", "no_such_feature")  # as configured, even without events
    mine = out[out["account_id"] == subs["account_id"].iloc[0]]
    # zero seats: per account, so at least what any one seat of the same use would show
    assert len(mine) == 1 and mine["usage_reports_per_seat_30d"].notna().all()
    assert (mine["usage_reports_per_seat_30d"] == mine["usage_reports_per_seat_30d"].round()).all()
    others = out[out["account_id"] != subs["account_id"].iloc[0]]
    assert others["usage_reports_per_seat_30d"].notna().mean() > 0.5
    assert (out["usage_no_such_feature_per_seat_30d"].dropna() == 0).all()
    off = FeatureConfig(product_feature_columns=0)
    none, chosen = compute(ds, active_snapshots(ds, dates), off)
    assert chosen == () and not any(c.startswith("usage_reports") for c in none.columns)


def test_cli_option_and_manifest(small_dataset, tmp_path):
    out = tmp_path / "f"
    got = CliRunner().invoke(
        app,
        [
            "features",
            "--data",
            str(small_dataset),
            "--out",
            str(out),
            "--product-feature-columns",
            "2",
        ],
    )
    assert got.exit_code == 0, got.output
    m = json.loads((out / "manifest.json").read_text())
    assert len(m["product_features"]) == 2 and m["config"]["product_feature_columns"] == 2
    assert m["config"]["product_features"] == m["product_features"]
    said = " ".join(got.output.split())
    assert f"usage columns for 2 product features: {', '.join(m['product_features'])}" in said
    snaps = pd.read_parquet(out / "snapshots.parquet")
    product = [c for c in snaps.columns if c.endswith(("_per_seat_30d", "_per_seat_90d"))]
    assert len(product) == 4 and set(product) <= set(m["features"])
    # Windows that start before the usage log does are unknown, as for every feature.
    start = pd.Timestamp(m["history_start"])
    early = snaps.assign(as_of=start + pd.Timedelta(days=45))
    masked = mask_unknown_history(early, start, tuple(m["product_features"]))
    assert masked[[c for c in product if c.endswith("_90d")]].isna().all().all()
    assert masked[[c for c in product if c.endswith("_30d")]].notna().any().all()
    bad = CliRunner().invoke(
        app,
        ["features", "--data", str(small_dataset), "--out", str(tmp_path / "b")]
        + ["--product-feature-columns", "-1"],
    )
    assert bad.exit_code == 1 and "product_feature_columns" in bad.output


def test_scoring_builds_exactly_the_bundles_columns(small_dataset):
    from types import SimpleNamespace

    from scoring.snapshot import dated_snapshot
    from training.registry import feature_config

    trained = FeatureConfig(product_features=("api", "Reports")).model_dump(mode="json")
    cfg = feature_config(SimpleNamespace(metadata={"feature_config": trained}))
    assert cfg.product_features == ("api", "Reports")
    # A bundle from before the columns carries none: scoring builds none either.
    old = {k: v for k, v in trained.items() if not k.startswith("product_feature")}
    assert feature_config(SimpleNamespace(metadata={"feature_config": old})).product_features == ()
    snap = dated_snapshot(load_dataset(small_dataset), None, cfg)
    product = [c for c in snap.rows.columns if c.startswith(("usage_api", "usage_reports"))]
    assert product == [f.name for f in product_feature_columns(("api", "Reports"))]
    assert len(product) == 6 and snap.feature_config.product_features == ("api", "Reports")
