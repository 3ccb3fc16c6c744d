"""The API contract for applications, against the real server (the shared ``server`` fixture).

What-if by account, ``as_of`` by id, bulk ``include`` and NDJSON, the portfolio summary,
model fields on every record, ``Server-Timing`` and the served-probability histogram.
"""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from features.catalogue import FEATURES, HEALTH_FORECASTS, LABELS
from features.store import SnapshotStore
from scoring.records import portfolio_summary, score_store_rows
from scoring.schema import AccountScore, Portfolio, PortfolioBlock
from serving.schemas import ALWAYS, PARTS
from tests.serving.conftest import KEY, post
from training.registry import ScoringModel

pytestmark = pytest.mark.slow
ACCOUNTS = "/v1/score/accounts"


def ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def problem(r: httpx.Response) -> dict:
    """A 400 problem document, its errors by field."""
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert isinstance(body["detail"], str)
    return {e["field"]: e["message"] for e in body["errors"]}


def test_what_if_by_account_recomputes_rules_and_says_what_changed(
    server, reference, long_features
):
    a, b = reference.index[:2]
    answer = ok(post(server, ACCOUNTS, {"account_ids": [a, b]}))
    plain = {r["account_id"]: r for r in answer["results"]}
    snaps = SnapshotStore.open(long_features).snapshots(["account_id", "as_of", "seat_utilisation"])
    latest = snaps[snaps["as_of"] == snaps["as_of"].max()].set_index("account_id")
    same = float(latest.loc[a, "seat_utilisation"])
    body = {"account_ids": [a, b], "overrides": {a: {"seat_utilisation": same}}}
    got = {r["account_id"]: r for r in ok(post(server, ACCOUNTS, body))["results"]}
    # The snapshot's own value again: the rules recomputed give the store's record back.
    assert got[a]["what_if"] == {"seat_utilisation": same} and got[b]["what_if"] is None
    for k in ("p_churn_90d", "p_expansion_90d", "health_score", "health_coverage"):
        assert got[a][k] == pytest.approx(plain[a][k], abs=1e-12), k
    assert (got[a]["alerts"], got[a]["triggers"]) == (plain[a]["alerts"], plain[a]["triggers"])
    # The other account as it is (up to TreeSHAP's rounding in a batch of another size).
    assert got[b]["p_churn_90d"] == pytest.approx(plain[b]["p_churn_90d"], abs=1e-12)
    assert (got[b]["play"], got[b]["alerts"]) == (plain[b]["play"], plain[b]["alerts"])

    change = {"seat_utilisation": 0.95, "usage_trend_30d": -0.6}
    r = ok(post(server, ACCOUNTS, {"account_ids": [a], "overrides": {a: change}}))
    (rec,) = r["results"]
    assert rec["what_if"] == change
    assert {"usage_decline", "usage_collapse"} <= set(rec["alerts"])
    assert "seats_over_80" in rec["triggers"]
    assert rec["health_components"]["usage"] != plain[a]["health_components"]["usage"]
    body = {"account_ids": [a], "overrides": {a: {"seat_utilisation": 0.02}}}
    low = ok(post(server, ACCOUNTS, body))
    assert low["results"][0]["p_churn_90d"] >= plain[a]["p_churn_90d"]  # monotone, as trained


def test_what_if_by_account_refuses_unknown_names_ids_and_ranges(server, reference):
    a = reference.index[0]
    errors = problem(
        post(server, ACCOUNTS, {"account_ids": [a], "overrides": {a: {"seat_utilization": 0.2}}})
    )
    assert errors == {
        f"overrides.{a}.seat_utilization": (
            "seat_utilization: unknown feature; did you mean seat_utilisation?"
        )
    }
    errors = problem(
        post(server, ACCOUNTS, {"account_ids": [a], "overrides": {"A999999": {"seats": 3}}})
    )
    assert errors == {"overrides.A999999": "A999999 is not in account_ids"}
    errors = problem(
        post(
            server,
            ACCOUNTS,
            {"account_ids": [a], "overrides": {a: {"seats": -5, "plan_tier": "gold"}}},
        )
    )
    assert set(errors) == {f"overrides.{a}.seats", f"overrides.{a}.plan_tier"}
    assert "greater than or equal to 0" in errors[f"overrides.{a}.seats"]


def test_snapshots_what_if_lists_the_features_it_did_not_get(server):
    r = ok(
        post(
            server,
            "/v1/score/snapshots",
            {"snapshots": [{"account_id": "X1", "features": {"seat_utilisation": 0.4}}]},
        )
    )
    (rec,) = r["results"]
    # The served model's features: the catalogue's and its product-feature columns.
    info = ok(httpx.get(f"{server}/v1/model", headers={"X-API-Key": KEY}))
    names = [f["name"] for f in info["features"]]
    assert set(f.name for f in FEATURES) <= set(names)
    # It used to say missing_inputs: [] (full data) for one feature of 72.
    assert set(rec["missing_inputs"]) == set(names) - {"seat_utilisation"}
    assert rec["health_coverage"] is None or rec["health_coverage"] < 1


def test_as_of_scores_any_held_date_and_names_the_nearest_otherwise(server, long_features, trained):
    info = ok(httpx.get(f"{server}/v1/model", headers={"X-API-Key": KEY}))
    dates = info["snapshot_dates"]
    assert dates[-1] == info["snapshot_as_of"] and len(dates) > 3
    earlier = dates[-4]
    store = SnapshotStore.open(long_features)
    frame = store.snapshots()
    at = frame[frame["as_of"] == pd.Timestamp(earlier)].reset_index(drop=True)
    model = ScoringModel(trained[1].bundle, uri="x", name="renewal-radar", version="1")
    want = score_store_rows(store, at, model).records.set_index("account_id")
    ids = list(want.index[:3])
    got = ok(post(server, ACCOUNTS, {"account_ids": ids, "as_of": earlier}))["results"]
    assert [r["as_of"] for r in got] == [earlier] * 3
    for rec in got:
        ref = want.loc[rec["account_id"]]
        for h in LABELS:
            if pd.isna(ref[f"p_{h}"]):
                assert rec[f"p_{h}"] is None
            else:
                assert rec[f"p_{h}"] == pytest.approx(ref[f"p_{h}"], abs=1e-12)
        assert rec["churn_risk_top_decile"] == ref["churn_risk_top_decile"]  # its own decile
        assert rec["play"] == ref["play"]
    bulk = ok(post(server, "/v1/score/bulk", {"account_ids": ids, "as_of": earlier}))
    assert [i["result"]["as_of"] for i in bulk] == [earlier] * 3

    missing = (pd.Timestamp(dates[-2]) + pd.Timedelta(days=3)).date().isoformat()
    errors = problem(post(server, ACCOUNTS, {"account_ids": ids, "as_of": missing}))
    assert f"no snapshots at {missing}" in errors["as_of"]
    assert f"the nearest dates held are {dates[-2]}, {dates[-1]}" in errors["as_of"]


def test_bulk_include_leaves_parts_out_and_ndjson_answers_line_by_line(server, reference):
    ids = [*reference.index[:5], "NOPE"]
    full = ok(post(server, "/v1/score/bulk", {"account_ids": ids}))
    part = ok(post(server, "/v1/score/bulk", {"account_ids": ids, "include": ["probabilities"]}))
    rec = part[0]["result"]
    assert set(rec) == set(ALWAYS) | set(PARTS["probabilities"])
    assert rec == {k: full[0]["result"][k] for k in rec}
    assert part[-1] == {"account_id": "NOPE", "result": None, "error": "unknown account"}
    # the forecasts served as `radar score` writes them (health ahead in the health part)
    want = reference.loc[ids[0]]
    for f in (*HEALTH_FORECASTS, *(f"{n}_low" for n in HEALTH_FORECASTS), "p_nps_detractor"):
        got = full[0]["result"][f]
        assert got is None if pd.isna(want[f]) else got == pytest.approx(want[f])
    assert set(HEALTH_FORECASTS) <= set(PARTS["health"])
    assert set(ALWAYS) | set().union(*PARTS.values()) == set(AccountScore.model_fields)
    errors = problem(post(server, "/v1/score/bulk", {"account_ids": ids, "include": ["shap"]}))
    assert list(errors) == ["include[0]"]

    many = [*list(reference.index) * (1 + 1_200 // len(reference)), "NOPE"][-1_201:]
    r = httpx.post(
        f"{server}/v1/score/bulk",
        json={"account_ids": many, "include": ["probabilities", "play"]},
        headers={"X-API-Key": KEY, "Accept": "application/x-ndjson"},
        timeout=120,
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    lines = r.text.splitlines()
    assert len(lines) == len(many)  # two pieces of 1,000 and 201
    items = [json.loads(line) for line in lines]
    assert [i["account_id"] for i in items] == many
    first = next(i for i in items if i["account_id"] == ids[0])
    assert first["result"]["p_churn_90d"] == full[0]["result"]["p_churn_90d"]
    assert first["result"]["play"] == full[0]["result"]["play"]


def test_portfolio_is_what_radar_score_prints(server, reference):
    got = ok(httpx.get(f"{server}/v1/portfolio", headers={"X-API-Key": KEY}))
    Portfolio.model_validate(got)
    want = portfolio_summary(reference.reset_index())
    assert got["as_of"] == str(reference["as_of"].iloc[0].date())
    assert got["model_version"] == "1" and got["training_run_id"]
    assert set(PortfolioBlock.model_fields) == set(want["all"])  # the schema is the summary's
    for key, value in want["all"].items():
        assert got["all"][key] == (pytest.approx(value) if isinstance(value, float) else value)
    segments = [k for k in want if k not in ("all", "plays", "disagreements")]
    assert set(got["segments"]) == set(segments)
    assert got["plays"] == want["plays"] and got["disagreements"] == want["disagreements"]
    seg = segments[0]
    one = ok(post(server, "/v1/portfolio", {"segment": seg}))
    assert one["segment"] == seg and one["all"]["accounts"] == want[seg]["accounts"]
    assert one["all"]["expected_churned_arr_90d"] == pytest.approx(
        want[seg]["expected_churned_arr_90d"]
    )
    errors = problem(post(server, "/v1/portfolio", {"segment": "galactic"}))
    assert errors["segment"].startswith("no segment 'galactic'; one of ")


def test_records_name_the_model_answers_carry_server_timing_metrics_the_probabilities(
    server, reference
):
    r = post(server, ACCOUNTS, {"account_ids": [reference.index[0]]})
    (rec,) = ok(r)["results"]
    assert (rec["model_name"], rec["model_version"]) == ("renewal-radar", "1")
    info = ok(httpx.get(f"{server}/v1/model", headers={"X-API-Key": KEY}))
    assert rec["training_run_id"] == info["training_run_id"] and rec["training_run_id"]
    timing = r.headers["server-timing"]
    assert timing.startswith("score;dur=") and ", total;dur=" in timing
    assert float(timing.split("score;dur=")[1].split(",")[0]) > 0
    assert "total;dur=" in httpx.get(f"{server}/livez").headers["server-timing"]
    metrics = httpx.get(f"{server}/metrics").text
    for head in ("churn_90d", "expansion_90d"):
        line = next(
            x
            for x in metrics.splitlines()
            if x.startswith("radar_served_probability_count") and f'head="{head}"' in x
        )
        assert float(line.split()[-1]) >= 1
    assert 'radar_served_probability_bucket{head="churn_90d",le="0.1"}' in metrics
