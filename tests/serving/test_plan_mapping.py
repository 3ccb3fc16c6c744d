"""`radar score` reads plan names through the plan mapping the model was trained with."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig
from scoring.batch import score_dataset
from scoring.plays import ScoringConfig
from training.registry import ScoringModel, feature_config

pytestmark = pytest.mark.slow

NAMES = {"starter": "Basic", "professional": "Team Plus", "enterprise": "Enterprise 2024"}
MAPPING = {"basic": "starter", "Team Plus": "professional", "enterprise-2024": "enterprise"}


def with_config(trained, cfg: FeatureConfig) -> ScoringModel:
    bundle = trained[1].bundle
    meta = {**bundle.metadata, "feature_config": cfg.model_dump(mode="json")}
    return ScoringModel(dataclasses.replace(bundle, metadata=meta), uri="test", version="1")


def test_radar_score_maps_free_text_plans_as_radar_features_does(long_data, trained, tmp_path):
    renamed = tmp_path / "data"
    shutil.copytree(long_data, renamed, ignore=shutil.ignore_patterns("ground_truth"))
    subs = pd.read_parquet(renamed / "subscriptions.parquet")
    subs["plan_tier"] = subs["plan_tier"].map(NAMES)
    subs.to_parquet(renamed / "subscriptions.parquet")

    mapped = with_config(trained, FeatureConfig(plan_tiers=MAPPING))
    assert feature_config(mapped.bundle).plan_tiers == MAPPING  # carried in the bundle
    plain = with_config(trained, FeatureConfig())
    scoring = ScoringConfig()
    want = score_dataset(long_data, None, plain, scoring).records.set_index("account_id")
    got = score_dataset(renamed, None, mapped, scoring).records.set_index("account_id")
    assert len(got) == len(want) > 100
    got = got.loc[want.index]
    # The tiers, and so everything scored from them, are those of the original plan names.
    assert (got["plan_tier"] == want["plan_tier"]).all()
    assert set(want["plan_tier"]) == {"starter", "professional", "enterprise"}
    for head in trained[1].bundle.heads:
        np.testing.assert_allclose(got[f"p_{head}"], want[f"p_{head}"], atol=1e-12)

    # Without the mapping only "Enterprise 2024" is not a tier either: no tier at all, and the
    # tier-based adoption is missing, so the probabilities move.
    unmapped = score_dataset(renamed, None, plain, scoring).records.set_index("account_id")
    assert unmapped["plan_tier"].isna().all()
    moved = np.abs(unmapped.loc[want.index, "p_churn_90d"] - want["p_churn_90d"]) > 1e-6
    assert moved.mean() > 0.1
