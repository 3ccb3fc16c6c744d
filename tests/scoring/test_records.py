from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.catalogue import FEATURE_BY_NAME, LABELS, RENEWAL_LABEL, SIGNAL, TIMING
from scoring.batch import score_dataset
from scoring.records import portfolio_summary, score_snapshots, write_scores
from training.registry import ScoringModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(trained) -> ScoringModel:
    return ScoringModel(trained[1].bundle, uri="test", name="renewal-radar", version="7")


@pytest.fixture(scope="module")
def as_of(long_features) -> str:
    return json.loads((long_features / "manifest.json").read_text())["as_of_dates"][-1]


@pytest.fixture(scope="module")
def scored(long_data, as_of, model):
    return score_dataset(long_data, as_of, model)


def test_every_active_account_gets_a_full_record(scored, long_features, as_of):
    snaps = pd.read_parquet(long_features / "snapshots.parquet")
    active = snaps.loc[snaps["as_of"] == pd.Timestamp(as_of), "account_id"]
    r = scored.records
    assert sorted(r["account_id"]) == sorted(active)
    # renewal likelihood only where the next renewal falls within 180 days
    near = (r["days_to_renewal"] > 0) & (r["days_to_renewal"] <= 180)
    assert 0 < near.sum() < len(r)
    assert r.loc[~near, f"p_{RENEWAL_LABEL}"].isna().all()
    assert (r.loc[~near, f"drivers_{RENEWAL_LABEL}"].map(len) == 0).all()
    for label in LABELS:
        rows = near if label == RENEWAL_LABEL else slice(None)
        assert r.loc[rows, f"p_{label}"].between(0, 1).all()
        assert r.loc[rows, f"drivers_{label}"].map(len).between(0, 5).all()
        # Up to 5, each of half a point or more: a 1% risk has few drivers worth showing.
        assert r.loc[rows, f"drivers_{label}"].map(len).max() == 5
    assert (r["p_churn_30d"] <= r["p_churn_90d"]).all()
    np.testing.assert_allclose(r["arr_at_risk_90d"], r["p_churn_90d"] * r["arr"])
    assert r["play"].notna().all() and r["play_reason"].str.len().gt(20).all()
    assert set(r["value_growth_segment"]) <= {
        "Champions",
        "Stars",
        "Potentials",
        "Defenders",
        "Core",
        "Basics",
        "At Risk",
        "Declining",
        "Dormant",
    }
    assert (r["model_version"] == "7").all()
    # expansion is never the play of an unhealthy account
    unhealthy = (r["health_score"] < 70) | r["health_score"].isna()
    assert not (unhealthy & (r["play"] == "expansion_conversation")).any()


def test_features_match_the_feature_pipeline(scored, long_features, as_of, model):
    """Scoring raw data at T gives the same probabilities as scoring the T snapshots."""
    snaps = pd.read_parquet(long_features / "snapshots.parquet")
    at_t = snaps[snaps["as_of"] == pd.Timestamp(as_of)]
    direct = score_snapshots(at_t, model).records.set_index("account_id").sort_index()
    from_raw = scored.records.set_index("account_id").sort_index()
    cols = [f"p_{h}" for h in LABELS] + ["health_score", "play"]
    pd.testing.assert_frame_equal(direct[cols], from_raw[cols])


def test_drivers_add_up_to_the_prediction(scored):
    r = scored.records
    for label in LABELS:
        r = scored.records.dropna(subset=[f"p_{label}"])
        total = (
            r[f"baseline_{label}"]
            + r[f"drivers_{label}"].map(lambda ds: sum(d["effect"] for d in ds))
            + r[f"remainder_{label}"]
        )
        np.testing.assert_allclose(total, r[f"p_{label}"], atol=1e-9)
        first = r[f"drivers_{label}"].iloc[0][0]
        assert first["direction"] == ("raises" if first["effect"] > 0 else "lowers")
        assert first["sentence"].endswith(".")


def test_timing_context_and_family_reasons_add_up_to_the_prediction(scored):
    for label in LABELS:
        r = scored.records[scored.records[f"p_{label}"].notna()]  # renewal: within 180 days
        total = (
            r[f"baseline_{label}"]
            + r[f"timing_{label}"].map(lambda t: t["effect"])
            + r[f"context_{label}"].map(lambda t: t["effect"])
            + r[f"reasons_{label}"].map(lambda rs: sum(x["effect"] for x in rs))
        )
        np.testing.assert_allclose(total, r[f"p_{label}"], atol=1e-9)
        assert r[f"timing_{label}"].map(lambda t: t["sentence"].endswith(".")).all()


def test_no_reason_is_the_calendar_missing_data_or_a_value_read_backwards(
    scored, model, long_features, as_of
):
    typical = model.bundle.metadata["typical"]
    r = scored.records
    snaps = pd.read_parquet(long_features / "snapshots.parquet")
    values = snaps[snaps["as_of"] == pd.Timestamp(as_of)].set_index("account_id")
    checked = 0
    for label in LABELS:
        rows = zip(r["account_id"], r[f"drivers_{label}"], r[f"reasons_{label}"], strict=True)
        for account, drivers, reasons in rows:
            for d in drivers:
                f = FEATURE_BY_NAME[d["feature"]]
                assert f.role != TIMING and d["value"] != "no data"
                assert abs(d["effect"]) >= 0.005
                if f.role == SIGNAL:  # never "a healthier value raises churn risk"
                    v = float(values.loc[account, f.name])
                    side = np.sign(v - typical[f.name]) * f.effect_on(label)
                    assert side * np.sign(d["effect"]) > 0, (account, label, d)
                    checked += 1
            for reason in reasons:
                for e in reason["evidence"]:
                    f = FEATURE_BY_NAME[e["feature"]]
                    assert f.role == SIGNAL and e["value"] != "no data"
                    assert np.sign(e["effect"]) == np.sign(reason["effect"])
                    assert e["feature"] in typical and e["typical"] is not None
    assert checked > 100


def test_scoring_twice_gives_identical_output(scored, long_data, as_of, model, tmp_path):
    again = score_dataset(long_data, as_of, model)
    pd.testing.assert_frame_equal(again.records, scored.records)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_scores(scored, a)
    write_scores(again, b)
    assert pd.read_parquet(a).to_json() == pd.read_parquet(b).to_json()


def test_brand_new_account_and_missing_optional_tables(long_data, as_of, model, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(long_data, data, ignore=shutil.ignore_patterns("ground_truth"))
    for name in ("weekly_active_users", "milestones"):
        (data / f"{name}.parquet").unlink()
    t = pd.Timestamp(as_of)
    accounts = pd.read_parquet(data / "accounts.parquet")
    new = accounts.iloc[[0]].assign(account_id="NEW001", customer_since=t - pd.Timedelta(days=3))
    pd.concat([accounts, new]).to_parquet(data / "accounts.parquet", index=False)
    subs = pd.read_parquet(data / "subscriptions.parquet")
    row = (
        subs[subs["change_type"] == "new"]
        .iloc[[0]]
        .assign(
            account_id="NEW001",
            start_date=t - pd.Timedelta(days=3),
            end_date=t + pd.Timedelta(days=362),
        )
    )
    pd.concat([subs, row]).to_parquet(data / "subscriptions.parquet", index=False)

    scores = score_dataset(data, as_of, model)
    r = scores.records.set_index("account_id")
    new_rec = r.loc["NEW001"]
    assert all(0 < new_rec[f"p_{h}"] < 1 for h in LABELS if h != RENEWAL_LABEL)
    # renewal likelihood only with a renewal within 180 days (a monthly plan: next month)
    near = 0 < new_rec["days_to_renewal"] <= 180
    assert (
        (0 < new_rec[f"p_{RENEWAL_LABEL}"] < 1) if near else np.isnan(new_rec[f"p_{RENEWAL_LABEL}"])
    )
    assert "usage" in new_rec["missing_inputs"]
    assert "weekly_active_users (table not provided)" in new_rec["missing_inputs"]
    assert "milestones (table not provided)" in r["missing_inputs"].iloc[0]
    assert new_rec["lifecycle_stage"] == "onboarding"
    assert scores.metadata["missing_optional_tables"] == [
        "weekly_active_users",
        "milestones",
        "csm_actions",
    ]


def test_as_of_outside_the_data_is_refused(long_data, model):
    with pytest.raises(ValueError, match="outside the data"):
        score_dataset(long_data, "2031-01-31", model)


@pytest.mark.parametrize("ext", [".parquet", ".csv", ".jsonl"])
def test_written_formats_round_trip(scored, tmp_path, ext):
    path = write_scores(scored, tmp_path / f"scores{ext}")
    summary = json.loads((tmp_path / f"scores{ext}.summary.json").read_text())
    assert summary["summary"]["all"]["accounts"] == len(scored.records)
    if ext == ".parquet":
        back = pd.read_parquet(path)
        meta = json.loads(pq.read_schema(path).metadata[b"renewal_radar"])
        assert meta["metadata"]["model"] == "renewal-radar v7"
        assert back["drivers_churn_90d"].iloc[0][0]["sentence"].endswith(".")
    elif ext == ".csv":
        back = pd.read_csv(path)
        assert json.loads(back["drivers_churn_90d"].iloc[0])[0]["feature"]
    else:
        back = pd.read_json(path, lines=True)
        assert isinstance(back["drivers_churn_90d"].iloc[0], list)
    assert len(back) == len(scored.records)
    assert list(tmp_path.glob(".*tmp*")) == []
    with pytest.raises(ValueError, match="unknown output format"):
        write_scores(scored, tmp_path / "scores.xlsx")


def test_portfolio_summary_by_hand():
    records = pd.DataFrame(
        {
            "segment": ["smb", "smb", "enterprise"],
            "arr": [10_000.0, 30_000.0, 200_000.0],
            "arr_at_risk_30d": [1_000.0, 0.0, 2_000.0],
            "arr_at_risk_90d": [2_000.0, 3_000.0, 10_000.0],
            "expected_expansion_arr_30d": [0.0, 0.0, 0.0],
            "expected_expansion_arr_90d": [0.0, 1_000.0, 20_000.0],
            "health_band": ["red", "green", None],
            "play": ["usage_recovery", "value_review", "value_review"],
            "disagreement": [None, "x", None],
        }
    )
    s = portfolio_summary(records)
    assert s["all"]["expected_churned_arr_90d"] == 15_000
    assert s["smb"]["expected_grr_next_quarter"] == pytest.approx(1 - 5_000 / 40_000)
    assert s["smb"]["expected_nrr_next_quarter"] == pytest.approx(1 - 5_000 / 40_000 + 0.025)
    assert s["enterprise"]["health_distribution"] == {"no score": 1}
    assert s["plays"] == {"value_review": 2, "usage_recovery": 1}
    assert s["disagreements"] == 1


def test_the_checker_passes_every_record_and_fails_one_edited_to_contradict_itself(
    scored, tmp_path
):
    """Issue 29: every label, play and sentence of a generated portfolio agrees with its figures."""
    from scoring.consistency import check
    from scoring.records import Scores

    r = scored.records
    counts = check(r)
    assert counts["total"] == 0, counts
    # The same record, edited to contradict itself, one rule at a time.
    edits = {
        "segment": {"value_growth_segment": "Champions", "growth_tier": "high"},
        "cited_figures": {
            "play_reason": "Keep the value visible: no health score, 90-day churn risk 97%."
        },
        "play_preconditions": {"play": "expansion_conversation", "plan_tier": "enterprise"},
        "renewal_risk": {"renewal_risk": "high", "days_to_renewal": 484.0},
    }
    row = r.index[r["value_growth_segment"] != "Champions"][0]
    for rule, change in edits.items():
        bad = r.copy()
        for col, v in change.items():
            bad[col] = bad[col].astype(object)
            bad.at[row, col] = v
        assert check(bad)[rule] >= 1, rule
    # `radar check` counts them on the file edited to contradict itself: exit 1 with --strict.
    from typer.testing import CliRunner

    from radar.cli import app

    write_scores(Scores(bad, scored.summary, scored.metadata), tmp_path / "bad.parquet")
    found_csv = tmp_path / "c.csv"
    args = ["check", "--scores", str(tmp_path / "bad.parquet"), "--strict", "--out", str(found_csv)]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 1, out.output
    found = pd.read_csv(found_csv)
    assert list(found["rule"]) == ["renewal_risk"]
