"""Bad values of this session's new options: one line, exit 1 (or typer's usage error), no trace."""

from __future__ import annotations

import numpy as np

from features.config import FeatureConfig
from features.contract import load_dataset
from features.engine import SPEND
from features.pipeline import build_snapshots
from tests.cli import radar


def _refused(proc, text: str, code: int = 1) -> None:
    said = proc.stdout + proc.stderr
    assert proc.returncode == code, said
    assert text in " ".join(said.split()) and "Traceback" not in said


def test_holdout_without_plays_and_out_of_range_are_refused(tmp_path):
    out = tmp_path / "g"
    _refused(
        radar("generate", "--accounts", "5", "--out", str(out), "--holdout", "0.1", cwd=tmp_path),
        "give --plays with it",
    )
    _refused(
        radar("generate", "--out", str(out), "--plays", "--holdout", "1.5", cwd=tmp_path),
        "--holdout",
        code=2,
    )
    assert not out.exists()  # nothing written


def test_compact_log_of_a_missing_folder_is_one_line(tmp_path):
    _refused(
        radar("compact-log", "--log", str(tmp_path / "nowhere"), cwd=tmp_path), "no such folder"
    )


def test_a_bad_spend_features_setting_names_it(tmp_path, small_dataset):
    cfg = tmp_path / "features.yaml"
    cfg.write_text("spend_features: sometimes\n")
    proc = radar(
        "features", "--data", str(small_dataset), "--out", str(tmp_path / "f"),
        "--config", str(cfg), cwd=tmp_path,
    )  # fmt: skip
    _refused(proc, "spend_features")


def test_spend_features_are_missing_with_contracts_and_on_when_asked(small_dataset):
    ds = load_dataset(small_dataset)
    dates = [np.datetime64("2025-08-31")]
    auto = build_snapshots(ds, FeatureConfig(product_feature_columns=0), dates=dates)
    assert auto.manifest["config"]["spend_features"] is False
    assert auto.snapshots[list(SPEND)].isna().all().all()
    on = build_snapshots(
        ds, FeatureConfig(product_feature_columns=0, spend_features=True), dates=dates
    )
    assert on.manifest["config"]["spend_features"] is True
    # (spend_365d reaches before this young history begins: missing, as every long window)
    assert on.snapshots["spend_30d"].notna().all() and (on.snapshots["spend_30d"] > 0).any()
    # every other column is the same: the switch touches the spend columns only
    rest = [c for c in auto.snapshots.columns if c not in SPEND]
    assert auto.snapshots[rest].equals(on.snapshots[rest])
