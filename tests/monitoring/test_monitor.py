"""radar monitor on two synthetic worlds, the same until a shift (a price change and a product
incident wave from 2026-07) and one without: the shift is flagged, the other is ok."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig
from features.pipeline import run_features
from features.synthetic.dataset import generate_dataset
from features.synthetic.process import SyntheticConfig
from monitoring.predictions import append, read
from monitoring.report import monitor, reference_for
from scoring.records import score_snapshots
from tests.cli import clean_env
from tests.cli import radar as run_radar
from tests.conftest import SUITE_PRODUCT_FEATURES
from training.config import TrainConfig
from training.promotion import promote
from training.registry import load_model
from training.tracking import log_training, rows_of_test_window
from training.train import from_snapshots, train

pytestmark = pytest.mark.slow
SHIFT = "2026-07"
INCIDENT = {"month": SHIFT, "churn_logit": 1.0, "utilisation_logit": -1.0}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """Both worlds (same seed: identical before the shift), a champion trained before it on
    the unshifted one, and each world's monthly scores from the shift on in its log."""
    root = tmp_path_factory.mktemp("monitor")
    out = {}
    for name, shift in (("base", {}), ("shifted", INCIDENT)):
        generate_dataset(root / name / "data", 1500, 30, 3, SyntheticConfig(shift=shift))
        # The suite's two product features (tests/conftest.py): the shift is in seat use.
        feature_cfg = FeatureConfig(product_feature_columns=SUITE_PRODUCT_FEATURES)
        run_features(root / name / "data", root / name / "features", feature_cfg)
        out[name] = root / name
    uri = f"sqlite:///{root / 'mlflow.db'}"
    cfg = TrainConfig.from_yaml(**{"lightgbm.max_trees": 150, "shap_sample": 100})
    data = from_snapshots(out["base"] / "features", cfg)
    before = data.frame["as_of"] < pd.Timestamp(f"{SHIFT}-01")
    result = train(dataclasses.replace(data, frame=data.frame[before]), cfg)
    log_training(result, data, uri=uri)
    promote("renewal-radar", rows_of_test_window)
    model = load_model("models:/renewal-radar@champion", uri)
    for w in out.values():
        frame = from_snapshots(w / "features", cfg).frame
        for t in sorted(frame.loc[frame["as_of"] >= pd.Timestamp(f"{SHIFT}-01"), "as_of"].unique()):
            s = score_snapshots(frame[frame["as_of"] == t], model)
            append(s.records, s.metadata, w / "predictions")
    return out, model, uri


def _report(world, model):
    return monitor(world / "data", read(world / "predictions"), reference_for(model), model)


def test_without_a_shift_the_verdict_is_ok(worlds):
    out, model, _ = worlds
    report = _report(out["base"], model)
    assert report["verdict"] == "ok", report["reasons"]
    judged = {h: r for h, r in report["realised_vs_predicted"].items() if r.get("matured", 1)}
    # The fixed-window heads are judged; renewal likelihood's outcome needs the renewal
    # date, which the monitor's outcome table does not carry yet.
    assert {"churn_30d", "churn_90d", "expansion_30d", "expansion_90d"} <= set(judged)
    for head, r in judged.items():
        c = r["recent"]
        assert c["observed_events"] >= 40, head  # enough matured outcomes to judge
        # deciles of isotonic (stepwise) probabilities: tied edges merge some bins
        assert abs(c["ratio"] - 1) < 0.25 and 5 <= len(r["by_decile"]) <= 10
        assert {s["segment"] for s in r["by_segment"]} == {"enterprise", "mid_market", "smb"}
    # Renewal likelihood follows the contract calendar (days to renewal), whose mix moves
    # with the months; the fixed-window heads' scores do not drift without a shift.
    scores = report["drift"]["scores"]
    assert max(v for h, v in scores.items() if h != "renewal_likelihood") < 0.1
    quarters = report["forecast_accuracy"]["quarter"]
    assert [q["as_of"] for q in quarters] == ["2026-09-30", "2026-12-31"]
    for q in quarters:  # |forecast - actual| / actual, checked by hand
        want = abs(q["churned_arr_forecast"] - q["churned_arr_actual"]) / q["churned_arr_actual"]
        assert q["churned_arr_error"] == pytest.approx(want) and want >= 0
        assert q["churned_arr_ratio"] == pytest.approx(
            q["churned_arr_forecast"] / q["churned_arr_actual"]
        )
        assert q["expanded_arr_actual"] > 0
    assert len(report["forecast_accuracy"]["month"]) >= 6


def test_a_shift_is_flagged_in_the_right_feature_with_a_calibration_gap(worlds):
    out, model, _ = worlds
    report = _report(out["shifted"], model)
    assert report["verdict"] == "retrain"
    kinds = {r["kind"] for r in report["reasons"]}
    assert {"calibration", "feature_drift"} <= kinds
    drifted = next(r for r in report["reasons"] if r["kind"] == "feature_drift")["features"]
    assert drifted[0] == "seat_utilisation"  # the incident wave cut observed seat use
    gaps = {r["head"] for r in report["reasons"] if r["kind"] == "calibration"}
    assert "churn_90d" in gaps  # the price change: more churn than the model expects
    c = report["realised_vs_predicted"]["churn_90d"]["recent"]
    assert c["ratio"] < 0.8 and c["z"] > 3


def test_cli_monitor_writes_json_and_html_and_logs_to_mlflow(worlds, tmp_path):
    out, _, uri = worlds
    env = clean_env(MLFLOW_TRACKING_URI=uri)
    # The simulated world runs past today's date: --now after its end, as for `radar score`.
    data = str(out["shifted"] / "data")
    args = ("monitor", "--data", data, "--out", str(tmp_path / "m"), "--now", "2027-12-31")
    done = run_radar(*args, "--log", str(out["shifted"] / "predictions"), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "verdict: retrain" in done.stdout and "seat_utilisation" in done.stdout
    report = json.loads((tmp_path / "m" / "monitor.json").read_text())
    assert report["verdict"] == "retrain" and report["reasons"]
    page = (tmp_path / "m" / "monitor.html").read_text()
    assert "retrain" in page and "Forecast error" in page and "seat_utilisation" in page
    assert np.isfinite(report["drift"]["features"][0]["psi"])
    empty = run_radar(*args, "--log", str(tmp_path / "none"), cwd=tmp_path, env=env)
    assert empty.returncode == 1 and "radar score" in empty.stderr
    assert "Traceback" not in empty.stderr
