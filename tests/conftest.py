from __future__ import annotations

import os

# Before anything loads NumPy, LightGBM or scikit-learn (their thread pools read these once, at
# load), and inherited by every `radar` subprocess, notebook kernel and server the tests start.
# `make test` runs two workers on two cores, each with two OpenBLAS and two OpenMP threads:
# idle threads spinning for work took the CPU the other worker needed. One OpenBLAS thread
# (the logistic models' small matrices gain nothing from two) and OpenMP threads that sleep
# when idle: training the `trained` fixture's models took 3.9 s of CPU instead of 32 s, on a
# loaded machine; LightGBM's predictions are bit for bit the same, the logistic baselines'
# figures equal to about 1e-13 (summation order).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil
from pathlib import Path

import pytest

from features.config import FeatureConfig
from features.pipeline import run_features
from features.synthetic.dataset import generate_dataset
from training.config import TrainConfig
from training.train import from_snapshots, train

# MLflow's per-file download bars only clutter test logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


# The default (10 product features, 30 usage columns) made every test that trains on
# long_features about 80% slower (fixture setup 69 s -> 126 s, a second training 64 s -> 113 s);
# two keep the columns in every training, scoring and serving test. The default itself is
# covered by tests/features (engine against reference, leaks, manifest).
SUITE_PRODUCT_FEATURES = 2


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """A small synthetic dataset (300 accounts x 12 months), generated once per session."""
    out = tmp_path_factory.mktemp("data") / "small"
    generate_dataset(out, accounts=300, months=12, seed=11)
    return out


@pytest.fixture(scope="session")
def usage_only(small_dataset, tmp_path_factory):
    """The small dataset as a business without contracts has it: accounts, usage, invoices."""
    from features.contract import load_dataset

    out = tmp_path_factory.mktemp("usage_only") / "data"
    out.mkdir()
    for name in ("accounts", "usage", "invoices"):
        shutil.copy(small_dataset / f"{name}.parquet", out)
    return load_dataset(out)


@pytest.fixture
def data_copy(small_dataset, tmp_path) -> Path:
    """A private copy of the small dataset's contract tables, free to corrupt."""
    dst = tmp_path / "data"
    shutil.copytree(small_dataset, dst, ignore=shutil.ignore_patterns("ground_truth"))
    return dst


@pytest.fixture(scope="session")
def long_data(tmp_path_factory) -> Path:
    """800 synthetic accounts over 24 months: long enough for the time split."""
    out = tmp_path_factory.mktemp("long") / "data"
    generate_dataset(out, accounts=800, months=24, seed=5)
    return out


@pytest.fixture(scope="session")
def long_features(long_data) -> Path:
    """``radar features`` output of :func:`long_data`."""
    out = long_data.parent / "features"
    run_features(long_data, out, FeatureConfig(product_feature_columns=SUITE_PRODUCT_FEATURES))
    return out


@pytest.fixture(scope="session")
def small_config() -> TrainConfig:
    # 800 accounts give the 30-day churn head about 25 positives per validation window: below
    # the default floor of 30, so the suite's small portfolio lowers it.
    return TrainConfig.from_yaml(
        **{"lightgbm.max_trees": 150, "shap_sample": 200, "min_positives": 20}
    )


@pytest.fixture(scope="session")
def trained(long_features, small_config):
    """(training data, training result) of the small config on :func:`long_features`."""
    from training.forecast import attach_forecasts

    data = from_snapshots(long_features, small_config)
    result = train(data, small_config)
    attach_forecasts(result, data, small_config)  # health ahead, satisfaction: ~1.3 s of CPU
    return data, result


@pytest.fixture(scope="session")
def registry(trained, tmp_path_factory) -> str:
    """A SQLite MLflow registry holding the trained model, promoted to champion."""
    from training.workflow import register

    uri = f"sqlite:///{tmp_path_factory.mktemp('svc') / 'mlflow.db'}"
    data, result = trained
    register(result, data, uri=uri, promote=True)
    return uri


def pytest_collection_modifyitems(config, items) -> None:
    """Modules holding a slow test run first, each module's tests kept together.

    `make test` shares the tests between two xdist workers as they free up: a two-minute test
    collected last keeps one worker busy while the other has nothing left to do. Starting the
    long modules first leaves the short ones to even out the end. Within each group the
    collection order stands, and a module is never split (its module fixtures start once):
    `make test` hands whole files to the workers in this order (--dist loadfile
    --no-loadscope-reorder).
    """
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow_modules)
