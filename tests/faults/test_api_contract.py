"""One error format on every endpoint and status, and the limits of a call (findings 5, 10, 12)."""

from __future__ import annotations

import json
import logging

import pytest

from serving.problems import PROBLEM_TYPE
from tests.faults.conftest import KEY, LIMIT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def problem_of(r, status: int) -> dict:
    """The problem document of ``r``, checked against RFC 9457's members."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_TYPE
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://")
    assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    return body


def test_invalid_fields_are_named_with_a_string_detail(client):
    r = client.post(
        "/v1/score/snapshots",
        json={
            "snapshots": [
                {"account_id": "x", "features": {"seat_utilisaton": 0.2, "plan_tier": "gold"}}
            ]
        },
    )
    body = problem_of(r, 400)
    errors = {e["field"]: e["message"] for e in body["errors"]}
    assert errors["snapshots[0].features.seat_utilisaton"] == (
        "seat_utilisaton: unknown feature; did you mean seat_utilisation?"
    )
    assert "'starter', 'professional' or 'enterprise'" in errors["snapshots[0].features.plan_tier"]
    assert body["detail"].startswith("2 fields invalid: ")
    assert "pydantic" not in r.text  # no documentation links, no raw pydantic title


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"account_ids": []}, "account_ids"),
        ({"ids": ["A"]}, "account_ids"),
        ({"account_ids": ["A" * 201]}, "account_ids[0]"),
        ({"account_ids": [""]}, "account_ids[0]"),
        ({"account_ids": ["A"] * 101}, "account_ids"),
        ({"account_ids": "A000042"}, "account_ids"),
    ],
)
def test_bad_id_lists_are_400_naming_the_field(client, body, field):
    errors = problem_of(client.post("/v1/score/accounts", json=body), 400)["errors"]
    assert field in {e["field"] for e in errors}


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([], "give at least 1 account id"),
        (["A"] * 10_001, "at most 10,000 account ids per call, got 10,001"),
        (["A" * 1_000], "an account id has 1 to 200 characters, got 1,000"),
    ],
)
def test_bulk_limits_finding_10(client, ids, message):
    """10,001 ids, an empty list and a 1,000-character id were all accepted (200)."""
    r = client.post("/v1/score/bulk", json={"account_ids": ids})
    if len(ids) > 1_000:  # over this client's 20 kB body limit: the size check comes first
        assert problem_of(r, 413)
        return
    body = problem_of(r, 400)
    assert body["errors"][0]["message"] == message


def test_bulk_limit_of_10000_ids_itself(client):
    from serving.api_contract import bulk_errors

    assert bulk_errors(b'{"account_ids": [' + b'"A",' * 10_000 + b'"A"]}')[0]["message"] == (
        "at most 10,000 account ids per call, got 10,001"
    )
    assert bulk_errors(b'{"account_ids": [' + b'"A",' * 9_999 + b'"A"]}') == []


def test_malformed_json_is_400(client):
    r = client.post(
        "/v1/score/accounts", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert "Invalid JSON" in problem_of(r, 400)["errors"][0]["message"]


@pytest.mark.parametrize("ctype", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415(client, ctype):
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/v1/score/accounts", content=b'{"account_ids": ["A"]}', headers=headers)
    assert "send the body as application/json" in problem_of(r, 415)["detail"]


def test_chunked_body_over_the_limit_is_413_finding_5(client):
    """A body without Content-Length, streamed past the limit, gave 500 (BodyTooLargeError)."""

    def parts():
        yield b'{"account_ids": ['
        for _ in range(LIMIT // 8):
            yield b'"A00001",'
        yield b'"A"]}'

    r = client.post("/v1/score/bulk", content=parts(), headers={"content-type": "application/json"})
    assert "transfer-encoding" in {k.lower() for k in r.request.headers}
    assert problem_of(r, 413)["detail"] == f"request body larger than {LIMIT} bytes"
    r = client.post(
        "/v1/score/bulk", content=b"x" * (LIMIT + 1), headers={"content-type": "application/json"}
    )
    assert problem_of(r, 413)


def test_missing_or_wrong_key_is_401(client):
    for headers in ({"X-API-Key": "wrong"}, {"X-API-Key": "", "Authorization": "Bearer wrong"}):
        r = client.post("/v1/score/accounts", json={"account_ids": ["A"]}, headers=headers)
        assert "missing or wrong API key" in problem_of(r, 401)["detail"]
    r = client.post(
        "/v1/score/accounts",
        json={"account_ids": ["A"]},
        headers={"X-API-Key": "", "Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code != 401


def test_unknown_paths_and_methods(client):
    assert problem_of(client.get("/v1/nope"), 404)["detail"] == "no endpoint at /v1/nope"
    assert problem_of(client.get("/nope/at/all"), 404)
    assert problem_of(client.get("/v1/score/accounts"), 405)


def test_unready_answers_503_with_the_reason_and_retry_after(client):
    r = client.get("/readyz")
    assert "RADAR_FEATURES is not set" in problem_of(r, 503)["detail"]
    assert r.headers["retry-after"] == "60"
    for r in (
        client.post("/v1/score/accounts", json={"account_ids": ["A"]}),
        client.get("/v1/model"),
    ):
        assert problem_of(r, 503)["detail"].startswith("not ready: RADAR_FEATURES is not set")
        assert r.headers["retry-after"] == "60"
    assert client.get("/livez").status_code == 200


def test_openapi_declares_the_contract(client):
    doc = client.get("/docs.json").json()
    from importlib.metadata import version

    assert doc["info"]["version"] == version("renewal-radar") != "None"
    assert "BentoML" not in doc["info"]["description"]
    assert doc["components"]["securitySchemes"]["ApiKeyHeader"]["name"] == "X-API-Key"
    assert doc["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert "errors" in doc["components"]["schemas"]["Problem"]["properties"]
    v1 = {p: item for p, item in doc["paths"].items() if p.startswith("/v1/")}
    assert set(v1) == {
        "/v1/model",
        "/v1/portfolio",
        "/v1/score/accounts",
        "/v1/score/bulk",
        "/v1/score/rows",  # a `radar train --table` model's rows (404 with any other model)
        "/v1/score/snapshots",
    }
    for path, item in v1.items():
        for method, op in item.items():
            for status in ("400", "401", "404", "413", "429", "503"):
                assert PROBLEM_TYPE in op["responses"][status]["content"], (path, method, status)
            assert op["security"] == [{"ApiKeyHeader": []}, {"BearerAuth": []}]  # a key is set
            if method == "post":
                assert op["requestBody"]["required"] is True
                assert "415" in op["responses"]
    assert "get" in v1["/v1/model"] and "get" in v1["/v1/portfolio"]
    ids = v1["/v1/score/bulk"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ids = ids["properties"]["account_ids"]
    assert (ids["minItems"], ids["maxItems"], ids["items"]["maxLength"]) == (1, 10_000, 200)
    bulk = v1["/v1/score/bulk"]["post"]
    assert "application/x-ndjson" in bulk["responses"]["200"]["content"]
    include = bulk["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "probabilities" in json.dumps(include["include"]) and "as_of" in include
    accounts = v1["/v1/score/accounts"]["post"]["requestBody"]["content"]["application/json"]
    assert {"overrides", "as_of"} <= set(accounts["schema"]["properties"])


def test_client_errors_log_one_info_line_and_no_traceback_finding_12(client, caplog):
    """Every 400 used to write a full traceback at ERROR."""
    caplog.set_level(logging.INFO)
    bad = [
        ("/v1/score/accounts", {"account_ids": []}),
        ("/v1/score/snapshots", {"snapshots": [{"account_id": "x", "features": {"nope": 1}}]}),
        ("/v1/score/accounts", {"account_ids": ["A"]}),  # unready: 503
    ]
    for path, body in bad:
        client.post(path, json=body)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    lines = [r.getMessage() for r in caplog.records if r.name == "renewal_radar.service"]
    assert any(
        m.startswith("400 POST /v1/score/accounts: 1 field invalid: account_ids") for m in lines
    )
    assert any("nope: unknown feature" in m for m in lines)


def test_server_errors_keep_their_traceback():
    """Only client errors lose BentoML's traceback: a 500 still logs one."""
    from bentoml.exceptions import BadInput, InternalServerError, ServiceUnavailable

    from serving.bentoml_fixes import ClientErrorFilter

    def record(exc):
        return logging.LogRecord(
            "x", logging.ERROR, "", 0, "Exception on", (), (type(exc), exc, None)
        )

    f = ClientErrorFilter()
    assert f.filter(record(InternalServerError("boom"))) and f.filter(record(RuntimeError("x")))
    assert not f.filter(record(BadInput("bad"))) and not f.filter(record(ServiceUnavailable("x")))
