"""The API key (finding 11): signed cookie, throttling, page headers, Bearer, key from a file."""

from __future__ import annotations

import pytest

from serving import auth
from tests.faults.conftest import KEY

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def fresh_throttle():
    auth.THROTTLE.clear()
    yield auth.THROTTLE
    auth.THROTTLE.clear()


def test_the_pages_cookie_holds_a_signed_session_not_the_key(client, fresh_throttle, page_key):
    r = client.post("/ui/login", data={"key": KEY}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.cookies["radar_key"]
    assert KEY not in cookie and auth.valid_session(KEY.encode(), cookie)
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=strict" in r.headers["set-cookie"]
    assert not auth.valid_session(b"other-key", cookie)
    assert not auth.valid_session(KEY.encode(), cookie, now=2e10)  # expired
    assert not auth.valid_session(KEY.encode(), KEY)  # the raw key is no session
    no_header = {"X-API-Key": ""}  # this client sends the key by default
    for value, status in ((cookie, 503), (KEY, 303), ("", 303)):
        client.cookies.clear()
        client.cookies.set("radar_key", value)
        page = client.get("/ui/", headers=no_header, follow_redirects=False)
        # signed in (the service is just not ready), or sent to the login form
        assert page.status_code == status, value
    client.cookies.clear()


def test_pages_carry_security_headers(client):
    r = client.get("/ui/login")
    assert r.status_code == 200
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/livez").headers["x-content-type-options"] == "nosniff"


def test_a_burst_of_wrong_keys_gets_429(client, fresh_throttle, page_key):
    """300 wrong guesses at ~2,000/s were all plain 401s."""
    codes = [
        client.post(
            "/v1/score/accounts", json={"account_ids": ["A"]}, headers={"X-API-Key": f"g{i}"}
        ).status_code
        for i in range(auth.MAX_FAILURES + 5)
    ]
    assert codes[: auth.MAX_FAILURES] == [401] * auth.MAX_FAILURES
    assert codes[auth.MAX_FAILURES :] == [429] * 5
    r = client.post("/v1/score/accounts", json={"account_ids": ["A"]})  # even the right key
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"] == "application/problem+json"
    r = client.post("/ui/login", data={"key": "wrong"})
    assert r.status_code == 429


def test_throttle_window_passes():
    t = auth.FailureThrottle(max_failures=3, window_s=10)
    for i in range(3):
        t.failed("a", now=i)
    assert t.retry_after("a", now=3) == 8 and t.retry_after("b", now=3) is None
    assert t.retry_after("a", now=10.5) is None  # the first failure left the window


def test_bearer_is_accepted(client, fresh_throttle):
    r = client.post(
        "/v1/score/accounts",
        json={"account_ids": ["A"]},
        headers={"X-API-Key": "", "Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 503  # past the key; not ready


def test_key_from_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("RADAR_API_KEY", raising=False)
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    monkeypatch.setenv("RADAR_API_KEY_FILE", str(key_file))
    assert auth.api_key() == b"from-file"
    key_file.write_text("")
    with pytest.raises(ValueError, match="the file is empty"):
        auth.api_key()
    monkeypatch.setenv("RADAR_API_KEY", "env-wins")
    assert auth.api_key() == b"env-wins"
