"""No 5xx, strict request bodies (issue 32, findings 11 and 14)."""

from __future__ import annotations

import pytest

from tests.serving.conftest import post

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _problem(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


def test_deeply_nested_json_is_a_400(client):
    """Finding 11: 2 KB of nested JSON on /v1/score/bulk was a 500 (RecursionError)."""
    body = b'{"account_ids": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    r = client.post("/v1/score/bulk", content=body, headers={"content-type": "application/json"})
    assert "nested too deeply" in _problem(r, 400)["detail"]
    for route in ("/v1/score/accounts", "/v1/score/snapshots", "/v1/portfolio"):
        r = client.post(route, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (route, r.status_code)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "TRACE", "DELETE"])
def test_other_methods_on_the_api_document_are_405(client, method):
    """Finding 11: POST/PUT/PATCH/TRACE on /docs.json answered 500 without a key."""
    r = client.request(method, "/docs.json", headers={"X-API-Key": ""})
    _problem(r, 405)
    assert r.headers["allow"] == "GET, HEAD"
    assert client.get("/docs.json").status_code == 200


@pytest.mark.parametrize(
    ("route", "body", "field", "hint"),
    [
        ("/v1/score/accounts", {"account_ids": ["A"], "as_off": "2025-01-31"}, "as_off", "as_of"),
        ("/v1/score/accounts", {"account_ids": ["A"], "overides": {}}, "overides", "overrides"),
        ("/v1/score/bulk", {"account_ids": ["A"], "includ": ["scores"]}, "includ", "include"),
        (
            "/v1/score/snapshots",
            {"snapshots": [{"account_id": "A", "features": {}, "asof": "2025-01-31"}]},
            "snapshots[0].asof",
            "as_of",
        ),
    ],
)
def test_unknown_fields_are_refused_with_the_closest_name(client, route, body, field, hint):
    """Finding 14: "as_off" and "overides" answered 200 (scored today, no what-if)."""
    doc = _problem(client.post(route, json=body), 400)
    (error,) = [e for e in doc["errors"] if e["field"] == field]
    assert error["message"].endswith(f"unknown field; did you mean {hint}?"), error


def test_booleans_are_not_numbers_and_dates_are_dates(client):
    """Finding 14: ``true`` became 1.0 and ``as_of: "0"`` 1970-01-01."""
    snap = {"account_id": "A", "features": {"seat_utilisation": True}}
    doc = _problem(client.post("/v1/score/snapshots", json={"snapshots": [snap]}), 400)
    assert doc["errors"][0]["field"] == "snapshots[0].features.seat_utilisation"
    assert "a number is expected, got true" in doc["errors"][0]["message"]
    for as_of in ("0", 0, "2025/01/31", "2025-01-31T00:00:00", "31.01.2025"):
        r = client.post("/v1/score/accounts", json={"account_ids": ["A"], "as_of": as_of})
        doc = _problem(r, 400)
        assert doc["errors"][0]["field"] == "as_of", doc
        assert "YYYY-MM-DD" in doc["errors"][0]["message"]
    snap = {"account_id": "A", "features": {}, "as_of": "2025/01/31"}
    _problem(client.post("/v1/score/snapshots", json={"snapshots": [snap]}), 400)
    # A good date passes validation (and meets the unready service).
    r = client.post("/v1/score/accounts", json={"account_ids": ["A"], "as_of": "2025-01-31"})
    assert r.status_code == 503


@pytest.mark.slow
def test_an_unknown_override_feature_is_refused_as_on_snapshots(server):
    """Finding 14: on /v1/score/accounts it answered 200 and changed nothing."""
    name = "usage_nosuchfeature_per_seat_30d"
    r = post(
        server,
        "/v1/score/accounts",
        {"account_ids": ["A000001"], "overrides": {"A000001": {name: 0.5}}},
    )
    doc = _problem(r, 400)
    assert doc["errors"][0]["field"] == f"overrides.{name}"
    assert "not a feature of the served model" in doc["errors"][0]["message"]
    snap = {"account_id": "A000001", "features": {name: 0.5}}
    assert post(server, "/v1/score/snapshots", {"snapshots": [snap]}).status_code == 400
