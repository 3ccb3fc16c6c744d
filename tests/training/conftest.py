from __future__ import annotations

import os
from pathlib import Path

import pytest

from features.config import FeatureConfig
from features.pipeline import run_features
from features.synthetic.dataset import generate_dataset
from training.config import TrainConfig
from training.train import from_snapshots, train

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session")
def long_features(tmp_path_factory) -> Path:
    """Snapshots of 800 synthetic accounts over 24 months: long enough for the time split."""
    root = tmp_path_factory.mktemp("train")
    generate_dataset(root / "data", accounts=800, months=24, seed=5)
    run_features(root / "data", root / "features", FeatureConfig())
    return root / "features"


@pytest.fixture(scope="session")
def small_config() -> TrainConfig:
    return TrainConfig.from_yaml(**{"lightgbm.max_trees": 150, "shap_sample": 200})


@pytest.fixture(scope="session")
def trained(long_features, small_config):
    data = from_snapshots(long_features, small_config)
    return data, train(data, small_config)
