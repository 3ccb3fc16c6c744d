from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.catalogue import LABELS, RENEWAL_LABEL
from training.metrics import METRICS
from training.model import ModelBundle
from training.train import LOGISTIC, MODEL, ORACLE, RULE, from_snapshots, from_table, metric, train

pytestmark = pytest.mark.slow


def test_every_head_and_baseline_is_evaluated_overall_and_per_segment(trained):
    _, result = trained
    segments = {"all", "enterprise", "mid_market", "smb"}
    for head in LABELS:
        for predictor in (MODEL, LOGISTIC, RULE, ORACLE):
            rows = [
                r for r in result.evaluation if (r["head"], r["predictor"]) == (head, predictor)
            ]
            assert {r["segment"] for r in rows} == segments
            overall = next(r for r in rows if r["segment"] == "all")
            assert set(METRICS) <= set(overall)
            assert overall["n"] == result.part_rows[head]["test"]
            assert 0.5 < overall["roc_auc"] <= 1
    # the model ranks 90-day churn far better than the rule-based health score
    assert metric(result.evaluation, "churn_90d", MODEL, "roc_auc") > metric(
        result.evaluation, "churn_90d", RULE, "roc_auc"
    )


def test_calibration_improves_or_keeps_validation_log_loss(trained):
    _, result = trained
    for head in result.heads.values():
        # Centred isotonic (strictly increasing, through block centres) with blocks pooled to
        # a minimum size (no probability resting on a handful of rows) is not the exact
        # isotonic fit: on a window with ~25 positives it may cost a little log loss.
        raw, calibrated = head.validation_log_loss_raw, head.validation_log_loss_calibrated
        assert calibrated <= raw * 1.03, (head.label, raw, calibrated)


def test_thirty_day_never_above_ninety_day(trained):
    data, result = trained
    p = result.bundle.predict(data.frame)
    assert (p["p_churn_30d"] <= p["p_churn_90d"]).all()
    assert (p["p_expansion_30d"] <= p["p_expansion_90d"]).all()
    assert ((p > 0) & (p < 1)).all().all()


def test_bundle_round_trips_through_files(trained, tmp_path):
    data, result = trained
    loaded = ModelBundle.load(result.bundle.save(tmp_path / "bundle"))
    sample = data.frame.sample(500, random_state=0)
    pd.testing.assert_frame_equal(loaded.predict(sample), result.bundle.predict(sample))
    assert loaded.spec == result.bundle.spec
    assert {h: b.threshold for h, b in loaded.heads.items()} == {
        h: b.threshold for h, b in result.bundle.heads.items()
    }


def test_same_seed_same_model(trained, small_config):
    data, result = trained
    again = train(data, small_config)
    sample = data.frame.sample(500, random_state=1)
    pd.testing.assert_frame_equal(again.bundle.predict(sample), result.bundle.predict(sample))
    assert again.evaluation == result.evaluation


def test_unknown_levels_and_absent_columns_are_missing_not_errors(trained):
    data, result = trained
    rows = data.frame.head(20).copy()
    rows["plan_tier"] = "platinum"
    p = result.bundle.predict(rows.drop(columns=["seat_utilisation", "segment"]))
    assert p.notna().all().all() and len(p) == 20


@pytest.mark.parametrize(
    "feature, change",
    [
        ("open_critical_tickets", lambda s: s.fillna(0) + 3),
        ("executive_sponsor_present", lambda s: s * 0.0),
        ("seat_utilisation", lambda s: s * 0.5),
    ],
    ids=["more open critical tickets", "losing the executive sponsor", "falling seat use"],
)
def test_churn_risk_never_falls_when_things_get_worse(trained, feature, change):
    data, result = trained
    rows = data.frame.sample(2000, random_state=2)
    worse = rows.assign(**{feature: change(rows[feature])})
    before, after = result.bundle.predict(rows), result.bundle.predict(worse)
    for col in ("p_churn_30d", "p_churn_90d"):
        assert (after[col] >= before[col] - 1e-12).all(), col
    # renewing is the opposite of churning at the decision: the same change never raises it
    assert (after["p_renewal_likelihood"] <= before["p_renewal_likelihood"] + 1e-12).all()


def test_bring_your_own_table(long_features, small_config, tmp_path):
    snaps = pd.read_parquet(long_features / "snapshots.parquet")
    own = pd.DataFrame(
        {
            "customer": snaps["account_id"],
            "snapshot_date": snaps["as_of"].dt.strftime("%Y-%m-%d"),
            "churned": snaps["churn_90d"].map({1.0: "1", 0.0: "0"}),
            "seats_used": snaps["seat_utilisation"],
            "tickets": snaps["tickets_90d"],
            "plan": snaps["plan_tier"],
            "region": snaps["segment"],
        }
    )
    path = tmp_path / "own.csv"
    own.to_csv(path, index=False)
    data = from_table(path, "churned", "snapshot_date", horizon=90, segment="region")
    assert data.spec.numeric == ("seats_used", "tickets")
    assert set(data.spec.categorical) == {"plan", "region"}  # customer: too many levels
    result = train(data, small_config)
    assert list(result.bundle.heads) == ["churned"]
    assert result.split.gap_days == 90
    assert {r["predictor"] for r in result.evaluation} == {MODEL, LOGISTIC}
    assert 0.5 < metric(result.evaluation, "churned", MODEL, "roc_auc") < 1


def test_own_table_with_a_bad_label_or_date_names_the_row(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"t": ["2025-01-31", "2025-02-28"], "y": [0, 2], "x": [1.0, 2.0]}).to_csv(
        path, index=False
    )
    with pytest.raises(ValueError, match=r"bad.csv.y: row 2: 2 is not a 0/1 label"):
        from_table(path, "y", "t")
    pd.DataFrame({"t": ["2025-01-31", "soon"], "y": [0, 1], "x": [1.0, 2.0]}).to_csv(
        path, index=False
    )
    with pytest.raises(ValueError, match=r"bad.csv.t: row 2: 'soon' is not a date"):
        from_table(path, "y", "t")
    with pytest.raises(ValueError, match="column 'label' not found"):
        from_table(path, "label", "t")


def test_model_is_near_the_oracle_on_synthetic_data(trained):
    _, result = trained
    for head in LABELS:
        gap = metric(result.evaluation, head, ORACLE, "roc_auc") - metric(
            result.evaluation, head, MODEL, "roc_auc"
        )
        assert gap < 0.08, head  # a small portfolio: the 20k-account figure is in the README
        assert metric(result.evaluation, head, MODEL, "ece") < 0.05
    assert np.isfinite(result.heads["churn_90d"].contributions).all()


def test_renewal_likelihood_has_its_own_split_and_is_evaluated(trained):
    data, result = trained
    head = result.heads[RENEWAL_LABEL]
    own, shared = result.splits[RENEWAL_LABEL], result.splits["churn_90d"]
    # its label looks up to 180 days ahead: so does the gap of its own windows
    assert own.gap_days == 180 and shared.gap_days == 90
    assert own.train_end + pd.Timedelta(days=180) <= own.validation_start
    assert own.validation_end + pd.Timedelta(days=180) <= own.test_start
    assert result.bundle.metadata["splits"][RENEWAL_LABEL] == own.as_dict()
    # trained and evaluated only on rows with a known outcome at the decision
    part = own.assign(data.frame["as_of"])
    for p in ("train", "validation", "test"):
        rows = data.frame[(part == p).to_numpy(dtype=bool)]
        assert result.part_rows[RENEWAL_LABEL][p] == int(rows[RENEWAL_LABEL].notna().sum()) > 100
    assert head.test["y"].notna().all()
    assert len(head.test) == result.part_rows[RENEWAL_LABEL]["test"]
    auc = {p: metric(result.evaluation, RENEWAL_LABEL, p, "roc_auc") for p in (MODEL, ORACLE)}
    assert auc[ORACLE] > 0.75  # the truth ranks renewals well
    assert 0.65 < auc[MODEL] <= auc[ORACLE] + 0.02
    assert metric(result.evaluation, RENEWAL_LABEL, MODEL, "ece") < 0.05
    # renewals are common: the calibrated mean matches the test window's rate
    p = result.bundle.predict(data.frame.loc[head.test.index])[f"p_{RENEWAL_LABEL}"]
    assert abs(p.mean() - head.test["y"].astype(float).mean()) < 0.05


def test_history_too_short_for_the_renewal_split_says_which_head(trained, small_config):
    data, _ = trained
    late = data.frame[data.frame["as_of"] >= "2025-07-31"]
    result = train(dataclasses.replace(data, frame=late), small_config)
    # The 180-day head is skipped, by name; the 30/90-day heads still train and register.
    assert RENEWAL_LABEL not in result.bundle.heads and "churn_90d" in result.bundle.heads
    assert any(RENEWAL_LABEL in w for w in result.warnings), result.warnings


def test_label_outside_the_rate_band_is_named(long_features, small_config, trained):
    """A head whose positive rate lies outside the band trains, and a warning names it."""
    band = (0.5, 0.95)  # the suite's churn label (a few percent) lies below this band
    cfg = small_config.model_copy(update={"heads": ("churn_90d",), "label_rate_band": band})
    result = train(from_snapshots(long_features, cfg), cfg)
    named = [w for w in result.warnings if "positive rate outside 50%-95%" in w]
    assert len(named) == 1 and named[0].startswith("churn_90d:"), result.warnings
    assert "train " in named[0] and "validation " in named[0] and "test " in named[0]
    assert "churn_90d" in result.bundle.heads  # warned, not refused
    _, default = trained  # the default band: the suite's labels are unremarkable
    assert not [w for w in default.warnings if "positive rate outside" in w], default.warnings


def test_rule_baseline_missing_on_every_training_row_is_left_out_with_a_note(
    long_features, small_config, trained
):
    cfg = small_config.model_copy(update={"heads": ("churn_90d",)})
    data = from_snapshots(long_features, cfg)
    split = trained[1].bundle.metadata["splits"]["churn_90d"]
    in_train = data.frame[data.time] <= pd.Timestamp(split["train_end"])
    data.frame.loc[in_train, data.health] = np.nan
    result = train(data, cfg)
    assert any("rule-score baseline" in w and w.startswith("churn_90d:") for w in result.warnings)
    predictors = {r["predictor"] for r in result.evaluation}
    assert "rule_score" not in predictors and "logistic" in predictors
