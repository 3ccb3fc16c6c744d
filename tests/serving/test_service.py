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
        assert (rec["model_name"], rec["model_version"]) == ("renewal-radar", "1")
        assert rec["training_run_id"] and rec["what_if"] is None


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
    from features.catalogue import features_for

    manifest = json.loads((long_features / "manifest.json").read_text())
    model = features_for(manifest["product_features"])  # the bundle's columns, these included

    def features(**change):
        out = {}
        for f in model:
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
    # A product-feature column fits the catalogue's pattern but must be one of the model's.
    alien = features() | {"usage_no_such_thing_per_seat_30d": 1.0}
    r = post(
        server,
        "/v1/score/snapshots",
        {"snapshots": [{"account_id": row["account_id"], "features": alien}]},
    )
    assert "usage_no_such_thing_per_seat_30d" in problem_of(r, 400)["detail"]


def problem_of(r: httpx.Response, status: int) -> dict:
    """The problem document (RFC 9457) of an error answer."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and isinstance(body["detail"], str)
    return body


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
    fields = {e["field"] for e in problem_of(r, 400)["errors"]}
    assert fields == {"snapshots[0].features.seat_utilisaton", "snapshots[0].features.plan_tier"}
    problem_of(post(server, "/v1/score/accounts", {"account_ids": []}), 400)
    problem_of(post(server, "/v1/score/accounts", {"ids": ["A"]}), 400)
    problem_of(post(server, "/v1/score/bulk", {"account_ids": []}), 400)
    r = httpx.post(
        f"{server}/v1/score/accounts",
        content=b"{not json",
        headers={"X-API-Key": KEY, "content-type": "application/json"},
    )
    problem_of(r, 400)
    r = httpx.post(
        f"{server}/v1/score/accounts",
        content=b'{"account_ids": ["A"]}',
        headers={"X-API-Key": KEY, "content-type": "text/plain"},
    )
    problem_of(r, 415)


def test_oversized_request_gets_413(server):
    r = post(server, "/v1/score/bulk", {"account_ids": ["A" * 50] * 5000})
    assert "larger than 200000 bytes" in problem_of(r, 413)["detail"]

    def chunks():  # no Content-Length: counted as it streams (this was a 500)
        yield b'{"account_ids": ['
        for _ in range(5000):
            yield b'"' + b"A" * 50 + b'",'
        yield b'"A"]}'

    r = httpx.post(
        f"{server}/v1/score/bulk",
        content=chunks(),
        headers={"X-API-Key": KEY, "content-type": "application/json"},
    )
    assert "larger than 200000 bytes" in problem_of(r, 413)["detail"]


def test_api_key_guards_scoring_but_not_health(server):
    problem_of(post(server, "/v1/score/accounts", {"account_ids": ["x"]}, key=None), 401)
    problem_of(post(server, "/v1/score/accounts", {"account_ids": ["x"]}, key="wrong"), 401)
    r = httpx.post(f"{server}/v1/model", json={}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(f"{server}{path}").status_code == 200, path
    problem_of(httpx.get(f"{server}/v1/nope", headers={"X-API-Key": KEY}), 404)


def test_model_info_and_openapi(server, long_features):
    info = post(server, "/v1/model", {}).json()
    manifest = json.loads((long_features / "manifest.json").read_text())
    assert httpx.get(f"{server}/v1/model", headers={"X-API-Key": KEY}).json() == info
    assert info["model_name"] == "renewal-radar" and info["model_version"] == "1"
    assert info["training_window"]["gap_days"] == 90
    assert 0.5 < info["test_metrics"]["churn_90d/roc_auc"] <= 1
    names = [f["name"] for f in info["features"]]
    assert names == manifest["features"] and info["accounts"] > 100
    # 73 catalogue features, the 7 spend columns, the 11 text columns, 3 per product feature
    assert len(names) == 73 + 7 + 11 + 3 * len(manifest["product_features"])
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
        deadline = time.time() + 60
        while "still loading" in (r := httpx.get(f"{url}/readyz")).text:  # loads in a thread
            assert time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        assert "cannot load model models:/renewal-radar@gone" in problem_of(r, 503)["detail"]
        assert r.headers["retry-after"] == "60"
        r = httpx.post(f"{url}/v1/score/accounts", json={"account_ids": ["x"]})
        assert "cannot load model models:/renewal-radar@gone" in problem_of(r, 503)["detail"]
        text = log.read_text()
        assert text.count("renewal-radar is not ready: cannot load model") == 1
        assert "Traceback" not in text
    finally:
        proc.terminate()
        proc.wait(30)


def test_schema_driven_fuzzing_finds_no_server_error(server):
    """Schemathesis cases from /docs.json against every endpoint: no 5xx, no schema mismatch."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]

    schema = schemathesis.openapi.from_url(f"{server}/docs.json")
    failures, calls = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:  # valid bodies, then invalid ones (which must be 4xx)

            @settings(
                max_examples=15,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                response = case.call(base_url=server, headers={"X-API-Key": KEY}, timeout=30)
                calls.append(response.status_code)
                try:  # no 5xx, and every answer (errors too) as the document declares it
                    case.validate_response(response, checks=checks)
                except Exception as exc:  # one error naming every failed check
                    failures.append(
                        f"{case.method} {case.path} -> {response.status_code}: {str(exc)[:400]}"
                    )

            if mode is GenerationMode.POSITIVE or operation.method.upper() == "POST":
                check()
    assert not failures, "\n".join(failures[:10])
    assert len(calls) >= 50 and 200 in calls and 400 in calls  # it did explore both sides
