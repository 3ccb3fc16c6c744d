"""The one door to a dated snapshot: every command that scores raw data builds it there."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.config import FeatureConfig
from features.contract import Dataset, load_dataset
from radar.cli import app
from scoring import snapshot
from scoring.snapshot import dated_snapshot

NOW = pd.Timestamp("2031-01-01")


class CalledError(ValueError):
    """What the stand-in door raises once it has seen its arguments (the command exits 1)."""


@pytest.fixture
def door(monkeypatch, small_dataset):
    """The door replaced by a recorder; commands get a stand-in model with a non-default
    feature configuration (the door must be handed the model, whose configuration it reads)."""
    calls: list[dict] = []

    def recorder(data, as_of, model, **kwargs):
        calls.append({"data": data, "as_of": as_of, "model": model, **kwargs})
        raise CalledError("the door was called")

    cfg = FeatureConfig(health="seed002", product_feature_columns=3)
    model = SimpleNamespace(
        bundle=SimpleNamespace(metadata={"feature_config": cfg.model_dump(mode="json")}),
        label="stand-in",
    )
    monkeypatch.setattr(snapshot, "dated_snapshot", recorder)
    for module in ("radar.common", "radar.monitor"):
        monkeypatch.setattr(f"{module}.load_model", lambda uri, tracking: model)
    accounts = pd.read_parquet(small_dataset / "accounts.parquet")["account_id"][:5]
    logged = pd.DataFrame(
        {"account_id": accounts, "as_of": pd.Timestamp("2025-06-30"), "p_churn_90d": 0.1}
    )
    monkeypatch.setattr("monitoring.predictions.read", lambda log: logged)
    monkeypatch.setattr("monitoring.report.reference_for", lambda m: None)
    return SimpleNamespace(calls=calls, model=model)


def test_every_command_that_scores_raw_data_goes_through_the_door(door, small_dataset, tmp_path):
    data = str(small_dataset)
    options = ["--now", str(NOW.date()), "--future-rows", "exclude"]
    commands = {
        "score": [
            "score", "--data", data, "--as-of", "2025-06-30", "--out", str(tmp_path / "s.csv"),
        ],
        "score on Spark": [
            "score", "--data", data, "--as-of", "latest", "--out", str(tmp_path / "spark"),
            "--engine", "spark",
        ],
        "brief": ["brief", "--data", data, "--all", "--out", str(tmp_path / "briefs")],
        "kpis": ["kpis", "--data", data],
        "monitor": ["monitor", "--data", data, "--out", str(tmp_path / "monitor")],
    }  # fmt: skip
    runner = CliRunner()
    for what, args in commands.items():
        before = len(door.calls)
        got = runner.invoke(app, [*args, *options])
        assert got.exit_code == 1 and "the door was called" in got.output, (what, got.output)
        assert len(door.calls) == before + 1, what
        call = door.calls[-1]
        assert call["model"] is door.model, what
        if what == "monitor":  # opens the data once (outcomes too), with the data options
            assert isinstance(call["data"], Dataset)
            assert call["as_of"] == pd.Timestamp("2025-06-30")
        else:
            assert call["data"] == data and call["now"] == NOW and call["future"] == "exclude"
    assert door.calls[0]["as_of"] == pd.Timestamp("2025-06-30") and door.calls[1]["as_of"] is None
    assert door.calls[1]["engine"].engine == "spark"  # only the engine comes from the command
    assert door.calls[2]["history"] is not None and "subscriptions" in door.calls[2]["tables"]


def test_the_snapshot_is_built_with_the_models_configuration_and_a_typed_date(small_dataset):
    ds = load_dataset(small_dataset)
    cfg = FeatureConfig(health="seed002", product_feature_columns=2)
    snap = dated_snapshot(ds, None, cfg)
    assert isinstance(snap.as_of, pd.Timestamp) and snap.as_of == snap.coverage[1]
    assert (snap.rows["as_of"] == snap.as_of).all() and snap.rows["account_id"].is_unique
    assert snap.feature_config.health == "seed002"
    usage = [c for c in snap.rows if c.startswith("usage_") and "_per_seat_" in c]
    # the configuration's product-feature count (2), not the default (10)
    assert len({c.split("_per_seat_")[0] for c in usage}) == 2
    assert len(snap.missing) == len(snap.rows) and snap.uplift is not None
    first = snap.coverage[0]
    with pytest.raises(ValueError, match="outside the data"):
        dated_snapshot(ds, first - pd.Timedelta(days=1), cfg)
    with pytest.raises(ValueError, match="--future-rows"):
        dated_snapshot(ds, None, cfg, future="ignore")
