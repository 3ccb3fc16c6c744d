"""One scoring core: the service's records equal `radar score`'s, whatever the snapshot store."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pandas as pd
import pytest

from features.config import FeatureConfig
from features.context import expansion_uplift
from features.contract import load_dataset
from features.health import month_before
from features.pipeline import build_snapshots, run_features
from features.snapshots import data_end
from features.store import SnapshotStore
from scoring.batch import score_dataset
from scoring.plays import ScoringConfig
from scoring.schema import api_records
from serving.pages.views import score_positions
from serving.state import nearest_dates, state_from_store
from tests.cli import clean_env
from training.registry import ScoringModel

pytestmark = pytest.mark.slow


def same(a, b, path="") -> None:
    """Equal values, floats within 1e-9 (NaN equal to NaN and None)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or math.isnan(a) or math.isnan(b):
            assert (a is None or math.isnan(a)) and (b is None or math.isnan(b)), path
        else:
            assert a == pytest.approx(b, abs=1e-9), path
    else:
        assert a == b, path


def configs(long_data) -> dict[str, FeatureConfig]:
    end = data_end(load_dataset(long_data), FeatureConfig())
    return {
        "monthly": FeatureConfig(),
        "weekly": FeatureConfig(freq="weekly", start=(end - pd.Timedelta(days=70)).date()),
        "tiers": FeatureConfig(tier_features={"starter": 2, "professional": 5, "enterprise": 12}),
    }


@pytest.mark.parametrize("name", ["monthly", "weekly", "tiers"])
def test_service_and_radar_score_give_identical_records(name, long_data, trained, tmp_path):
    cfg = configs(long_data)[name]
    run_features(long_data, tmp_path / "features", cfg)
    store = SnapshotStore.open(tmp_path / "features")
    # The model carries the feature configuration it was trained on: this one.
    bundle = dataclasses.replace(
        trained[1].bundle,
        metadata={**trained[1].bundle.metadata, "feature_config": cfg.model_dump(mode="json")},
    )
    model = ScoringModel(bundle, uri="test", name="renewal-radar", version="1")
    scoring = ScoringConfig()
    state = state_from_store(store, model, scoring)
    heads = list(bundle.heads)
    served = api_records(score_positions(state, scoring, list(range(len(state.rows)))), heads)
    batch = score_dataset(long_data, state.as_of, model, scoring).records
    columns = {c: batch[c].to_numpy() for c in batch.columns}
    columns["as_of"] = batch["as_of"].to_numpy().astype("datetime64[s]")
    columns["renewal_date"] = batch["renewal_date"].to_numpy().astype("datetime64[s]")
    expected = api_records(columns, heads)
    assert len(served) == len(expected) == len(batch) > 100
    by_id = {r["account_id"]: r for r in expected}
    for record in served:
        same(record, by_id[record["account_id"]], record["account_id"])
    # Names and owners come from the store's context, never from ids.
    names = load_dataset(long_data)["accounts"].set_index("account_id")["name"]
    assert all(r["name"] == names[r["account_id"]] for r in served)
    # Some accounts changed health over the month, and it is shown.
    assert sum(r["health_change"] not in (None, 0) for r in served) > 10


def test_health_change_is_against_a_calendar_month_before_with_weekly_snapshots(long_data):
    ds = load_dataset(long_data)
    end = data_end(ds, FeatureConfig())
    cfg = FeatureConfig(freq="weekly", start=(end - pd.Timedelta(days=40)).date())
    snaps = build_snapshots(ds, cfg).snapshots
    t = snaps["as_of"].max()
    month_ago = pd.Timestamp(month_before(pd.DatetimeIndex([t]))[0])
    assert month_ago not in set(snaps["as_of"])  # not a Sunday: not one of the snapshots
    before = build_snapshots(ds, cfg, dates=pd.DatetimeIndex([month_ago])).snapshots
    prev = before.set_index("account_id")["health_score"]
    now = snaps[snaps["as_of"] == t].set_index("account_id")
    want = now["health_score"] - prev.reindex(now.index)
    pd.testing.assert_series_equal(now["health_change"], want, check_names=False)
    assert want.notna().sum() > 100


def test_month_before_is_one_calendar_month_and_month_ends_stay_month_ends():
    got = month_before(pd.DatetimeIndex(["2026-03-31", "2026-04-30", "2026-04-12", "2026-01-31"]))
    assert [str(d.date()) for d in got] == ["2026-02-28", "2026-03-31", "2026-03-12", "2025-12-31"]


def test_the_store_serves_names_and_uplift_from_any_working_folder(
    long_data, long_features, trained, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # neither the data's folder nor where `radar features` ran
    store = SnapshotStore.open(long_features)
    assert store.input_directory == long_data.resolve()
    assert not json.loads((long_features / "manifest.json").read_text())["input"][
        "directory"
    ].startswith("/")
    model = ScoringModel(trained[1].bundle, uri="test")
    state = state_from_store(store, model, ScoringConfig())
    raw = load_dataset(long_data)
    names = raw["accounts"].set_index("account_id")["name"]
    got = state.rows.col("name")
    assert all(got[i] == names[a] for a, i in state.position.items())
    assert state.uplift == pytest.approx(expansion_uplift(raw["subscriptions"], state.as_of))


def test_importing_the_service_loads_neither_ibis_nor_duckdb():
    code = (
        "import sys, serving.service; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ibis', 'duckdb')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_nearest_dates_are_the_held_dates_either_side():
    held = [pd.Timestamp(d) for d in ("2026-01-31", "2026-02-28", "2026-03-31")]
    assert nearest_dates(held, pd.Timestamp("2026-02-10")) == held[:2]
    assert nearest_dates(held, pd.Timestamp("2025-06-30")) == held[:1]
    assert nearest_dates(held, pd.Timestamp("2027-01-01")) == held[2:]


def test_a_store_that_does_not_fit_the_model_is_refused_with_the_reason(long_features, trained):
    """A table's model over snapshots answered ready with all-missing probabilities."""
    from training.data import FeatureSpec
    from training.model import ModelBundle

    store = SnapshotStore.open(long_features)
    bundle = trained[1].bundle
    table_model = dataclasses.replace(
        bundle, metadata={**bundle.metadata, "source": {"kind": "table", "path": "/x/t.csv"}}
    )
    model = ScoringModel(table_model, uri="x", name="renewal-radar-Churn", version="1")
    with pytest.raises(RuntimeError, match=r"t\.csv.*it scores rows only.*without --features"):
        state_from_store(store, model, ScoringConfig())
    foreign = ModelBundle(FeatureSpec(("tenure", "MonthlyCharges")), {}, {})
    model = ScoringModel(foreign, uri="x", name="other", version="2")
    with pytest.raises(RuntimeError, match=r"lack 2 of its 2 feature columns \(tenure, Monthly"):
        state_from_store(store, model, ScoringConfig())
