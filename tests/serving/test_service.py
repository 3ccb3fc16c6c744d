"""The scoring service, end to end: a real BentoML server in a subprocess."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from features.catalogue import LABELS
from serving.schemas import BulkItem, ScoreResponse
from tests.serving.conftest import KEY, post, start, wait_live

pytestmark = pytest.mark.slow


def test_score_by_id_matches_radar_score(server, reference):
    ids = list(reference.index[:5])
    r = post(server, "/v1/score/accounts", {"account_ids": [*ids, "NOPE"]})
    assert r.status_code == 200, r.text
    # Answered whole, not chunked (WholeResponseMiddleware).
    assert r.headers["content-length"] == str(len(r.content))
    assert "transfer-encoding" not in r.headers
    body = r.json()
    assert body["errors"] == [{"account_id": "NOPE", "error": "unknown account"}]
    assert [x["account_id"] for x in body["results"]] == ids
    for rec in body["results"]:
        ref = reference.loc[rec["account_id"]]
        for h in LABELS:
            if pd.isna(ref[f"p_{h}"]):  # renewal likelihood without a renewal near: none
                assert rec[f"p_{h}"] is None and rec["drivers"][h] == []
                continue
            assert rec[f"p_{h}"] == pytest.approx(ref[f"p_{h}"], abs=1e-12)
            got = [(d["feature"], round(d["effect"], 12)) for d in rec["drivers"][h]]
            want = [(d["feature"], round(d["effect"], 12)) for d in ref[f"drivers_{h}"]]
            assert got == want
        assert rec["play"] == ref["play"] and rec["play_reason"] == ref["play_reason"]
        assert rec["health_score"] == pytest.approx(ref["health_score"])
        assert rec["value_growth_segment"] == ref["value_growth_segment"]
        assert rec["model_version"] == "renewal-radar v1"


def test_bulk_endpoint_keeps_order_and_reports_unknown_ids(server, reference):
    ids = list(reference.index[:40]) + ["NOPE"]
    r = post(server, "/v1/score/bulk", {"account_ids": ids})
    assert r.status_code == 200, r.text
    items = r.json()
    assert [i["account_id"] for i in items] == ids
    assert items[-1]["result"] is None and items[-1]["error"] == "unknown account"
    p = [i["result"]["p_churn_90d"] for i in items[:-1]]
    np.testing.assert_allclose(p, reference.loc[ids[:-1], "p_churn_90d"], atol=1e-12)


def test_every_answer_holds_to_the_published_schema(server, reference):
    """The service builds its JSON without validating it at run time: check every account."""
    items = TypeAdapter(list[BulkItem])
    r = post(server, "/v1/score/bulk", {"account_ids": [*reference.index, "NOPE"]})
    assert r.status_code == 200, r.text
    # Validating and writing back changes nothing: no field missing, extra or of another type.
    assert json.loads(items.dump_json(items.validate_json(r.content))) == r.json()
    r = post(server, "/v1/score/accounts", {"account_ids": [reference.index[0], "NOPE"]})
    assert json.loads(ScoreResponse.model_validate_json(r.content).model_dump_json()) == r.json()


def test_keep_alive_connections_are_closed_after_32_answers(server):
    """So that clients with a connection pool spread over the workers (KeepAliveLimitMiddleware)."""
    with httpx.Client(base_url=server) as client:
        answers = [client.get("/livez").headers.get("connection") for _ in range(33)]
    assert answers[:31] == [None] * 31
    assert answers[31] == "close" and answers[32] is None  # a new connection, counted afresh


def test_what_if_lower_seat_use_never_lowers_churn_risk(server, long_features, reference):
    snaps = pd.read_parquet(long_features / "snapshots.parquet")
    row = snaps[snaps["as_of"] == snaps["as_of"].max()].iloc[0]
    from features.catalogue import FEATURES

    def features(**change):
        out = {}
        for f in FEATURES:
            v = row[f.name]
            out[f.name] = None if pd.isna(v) else (str(v) if f.categorical else float(v))
        return out | change

    r = post(
        server,
        "/v1/score/snapshots",
        {
            "snapshots": [
                {
                    "account_id": row["account_id"],
                    "as_of": str(row["as_of"].date()),
                    "features": features(),
                },
                {"account_id": row["account_id"], "features": features(seat_utilisation=0.05)},
            ]
        },
    )
    assert r.status_code == 200, r.text
    same, worse = r.json()["results"]
    ref = reference.loc[row["account_id"]]
    assert same["p_churn_90d"] == pytest.approx(ref["p_churn_90d"], abs=1e-12)
    assert same["health_score"] == pytest.approx(ref["health_score"])
    assert worse["p_churn_90d"] >= same["p_churn_90d"]
    assert worse["health_components"]["usage"] <= same["health_components"]["usage"]


def test_bad_input_gets_400_naming_each_field(server):
    r = post(
        server,
        "/v1/score/snapshots",
        {
            "snapshots": [
                {"account_id": "x", "features": {"seat_utilisaton": 0.2, "plan_tier": "gold"}}
            ]
        },
    )
    assert r.status_code == 400
    locs = {tuple(d["loc"][-2:]) for d in r.json()["detail"]}
    assert ("features", "seat_utilisaton") in locs and ("features", "plan_tier") in locs
    assert post(server, "/v1/score/accounts", {"account_ids": []}).status_code == 400
    assert post(server, "/v1/score/accounts", {"ids": ["A"]}).status_code == 400
    r = httpx.post(
        f"{server}/v1/score/accounts",
        content=b"{not json",
        headers={"X-API-Key": KEY, "content-type": "application/json"},
    )
    assert r.status_code == 400


def test_oversized_request_gets_413(server):
    r = post(server, "/v1/score/bulk", {"account_ids": ["A" * 50] * 5000})
    assert r.status_code == 413 and "larger than 200000 bytes" in r.text


def test_api_key_guards_scoring_but_not_health(server):
    assert post(server, "/v1/score/accounts", {"account_ids": ["x"]}, key=None).status_code == 401
    assert (
        post(server, "/v1/score/accounts", {"account_ids": ["x"]}, key="wrong").status_code == 401
    )
    r = httpx.post(f"{server}/v1/model", json={}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(f"{server}{path}").status_code == 200, path


def test_model_info_and_openapi(server):
    info = post(server, "/v1/model", {}).json()
    assert info["model_name"] == "renewal-radar" and info["model_version"] == "1"
    assert info["training_window"]["gap_days"] == 90
    assert 0.5 < info["test_metrics"]["churn_90d/roc_auc"] <= 1
    assert len(info["features"]) == 72 and info["accounts"] > 100
    doc = httpx.get(f"{server}/docs.json").json()
    assert {"/v1/score/accounts", "/v1/score/snapshots", "/v1/score/bulk", "/v1/model"} <= set(
        doc["paths"]
    )
    text = json.dumps(doc)
    assert "Share of purchased seats" in text and "A000042" in text  # descriptions, examples


def test_service_without_its_model_never_becomes_ready(long_features, registry, tmp_path):
    log = tmp_path / "server.log"
    proc, url = start(long_features, registry, log, "--model-uri", "models:/renewal-radar@gone")
    try:
        wait_live(proc, url, log)
        time.sleep(1)
        assert httpx.get(f"{url}/readyz").status_code == 503
        r = httpx.post(f"{url}/v1/score/accounts", json={"account_ids": ["x"]})
        assert r.status_code == 503  # the reason is in the log, not given to callers
        assert "cannot load model models:/renewal-radar@gone" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(30)


def test_schema_driven_fuzzing_finds_no_server_error(server):
    """Schemathesis cases from /docs.json, bounded in number, against every endpoint."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{server}/docs.json")
    failures, calls = [], []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(base_url=server, headers={"X-API-Key": KEY}, timeout=30)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.path} -> {response.status_code}: {response.text[:200]}"
                )

        check()
    assert not failures, "\n".join(failures[:10])
    assert len(calls) >= 50 and 200 in calls and 400 in calls  # it did explore both sides
