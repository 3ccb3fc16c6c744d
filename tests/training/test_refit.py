"""``refit: true``: honest figures as before, served heads refitted on the freshest labels."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from training.linear import kind_of
from training.model import ModelBundle
from training.tracking import log_training
from training.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def refitted(trained, small_config):
    data, _ = trained
    return train(data, small_config.model_copy(update={"refit": True}))


def test_refit_keeps_the_honest_figures_and_serves_heads_fitted_on_fresher_labels(
    trained, refitted, tmp_path
):
    data, honest = trained
    result = refitted
    assert result.evaluation == honest.evaluation  # the honest evaluation, unchanged
    assert "refit" not in honest.bundle.metadata
    refit = result.bundle.metadata["refit"]
    assert set(refit) == set(result.bundle.heads)
    t = data.frame["as_of"]
    x = result.bundle.spec.matrix(data.frame)
    for head, r in refit.items():
        split = result.splits[head]
        known = data.frame[head].notna()
        fit = known & (t <= split.validation_end)
        cal = known & t.between(split.test_start, split.test_end)
        assert r["fit_end"] == str(split.validation_end.date())
        assert (r["calibration_start"], r["calibration_end"]) == (
            str(split.test_start.date()),
            str(split.test_end.date()),
        )
        assert (r["fit_rows"], r["calibration_rows"]) == (int(fit.sum()), int(cal.sum()))
        parts = honest.part_rows[head]
        assert r["fit_rows"] >= parts["train"] + parts["validation"]  # and any gap between
        assert r["calibration_rows"] == parts["test"]
        # a gap as long as the horizon between the fitted labels and the calibration window
        assert (split.test_start - split.validation_end).days >= split.gap_days
        served = result.bundle.heads[head]
        assert (
            kind_of(served.booster)
            == r["model"]
            == honest.bundle.metadata["model_choice"][head]["chosen"]
        )
        p_new = served.proba(x[cal.to_numpy()])
        p_old = honest.bundle.heads[head].proba(x[cal.to_numpy()])
        assert not np.allclose(p_new, p_old)  # a different model is served
        y = data.frame.loc[cal, head].to_numpy(float)
        # recalibrated on that window: its mean probability is its observed rate (within
        # 0.02: centred isotonic blocks and their log-odds tails keep the mean only nearly)
        assert p_new.mean() == pytest.approx(y.mean(), abs=0.02)

    loaded = ModelBundle.load(result.bundle.save(tmp_path / "bundle"))
    rows = data.frame.sample(300, random_state=0)
    pd.testing.assert_frame_equal(loaded.predict(rows), result.bundle.predict(rows))

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = log_training(result, data, uri=uri)
    run = MlflowClient().get_run(tracked.run_id)
    assert run.data.tags["radar.refit"] == "true" and run.data.params["refit"] == "True"
    head = next(iter(refit))
    assert run.data.params[f"{head}.refit.fit_rows"] == str(refit[head]["fit_rows"])
    assert mlflow.artifacts.load_dict(f"runs:/{tracked.run_id}/refit.json") == refit
