"""``radar monitor`` with a model trained on a non-default feature configuration, on data without
contracts: today's snapshot is built with the model's configuration, so drift compares exactly
the columns the model was trained on (before, the default configuration was used: other health
components and product-feature columns, and on usage-only data an error asking for
``--activity-churn-days``, which ``radar monitor`` did not take)."""

from __future__ import annotations

import shutil

import pytest

from features.config import FeatureConfig
from features.pipeline import run_features
from monitoring.predictions import append, read
from monitoring.report import Reference, importance, monitor
from scoring.records import score_snapshots
from training.registry import ScoringModel
from training.train import from_snapshots, train

pytestmark = pytest.mark.slow
CONFIG = FeatureConfig(health="seed002", product_feature_columns=3, activity_churn_days=60)


def test_monitor_compares_the_models_own_columns_on_usage_only_data(
    long_data, small_config, tmp_path
):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("accounts", "usage", "invoices"):  # no contracts: labels from activity
        shutil.copy(long_data / f"{name}.parquet", data)
    run_features(data, tmp_path / "features", CONFIG)
    training = from_snapshots(tmp_path / "features", small_config)
    model = ScoringModel(train(training, small_config).bundle, uri="t", name="m", version="1")
    names = model.bundle.spec.names
    product = {c.split("_per_seat_")[0] for c in names if "_per_seat_" in c}
    assert len(product) == 3  # the model's product-feature count, not the default 10

    frame = training.frame
    dates = sorted(frame["as_of"].unique())
    window = frame[frame["as_of"] <= dates[-7]].reset_index(drop=True)
    reference = Reference(
        window,
        model.bundle.predict(window),
        (str(dates[0]), str(dates[-7])),
        model.label,
        importance(model.bundle),
    )
    log = tmp_path / "predictions"
    for t in dates[-3:]:
        s = score_snapshots(frame[frame["as_of"] == t], model)
        append(s.records, s.metadata, log)
    report = monitor(data, read(log), reference, model)

    compared = {f["feature"]: f for f in report["drift"]["features"]}
    assert set(compared) == set(names)  # every trained column, nothing else, none skipped
    latest = frame[frame["as_of"] == dates[-1]]
    for col in ("health_score", *[c for c in names if "_per_seat_" in c][:2]):
        if col in compared and compared[col]["current_mean"] is not None:
            assert compared[col]["current_mean"] == pytest.approx(
                latest[col].mean(), rel=1e-9, nan_ok=True
            )
    assert report["verdict"] in ("ok", "watch", "retrain")
