from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from features.synthetic.dataset import generate_dataset


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """A small synthetic dataset (300 accounts x 12 months), generated once per session."""
    out = tmp_path_factory.mktemp("data") / "small"
    generate_dataset(out, accounts=300, months=12, seed=11)
    return out


@pytest.fixture
def data_copy(small_dataset, tmp_path) -> Path:
    """A private copy of the small dataset's contract tables, free to corrupt."""
    dst = tmp_path / "data"
    shutil.copytree(small_dataset, dst, ignore=shutil.ignore_patterns("ground_truth"))
    return dst
