"""ASGI middleware of the service, on a bare ASGI app."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json

import pytest
import uvloop

from serving.middleware import (
    KeepAliveLimitMiddleware,
    TimeoutMiddleware,
    WholeResponseMiddleware,
    env_int,
)


def run(app, path: str, client: tuple[str, int] | None = None) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "path": path, "client": client}, receive, send))
    return sent


async def chunked(scope, receive, send) -> None:
    """What BentoML sends: a start without length, the body in parts, then an empty end."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"x")],
        }
    )
    for part in (b'{"a": ', b"1}"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_api_responses_go_out_whole_with_their_length():
    sent = run(WholeResponseMiddleware(chunked), "/v1/score/accounts")
    assert len(sent) == 2
    start, body = sent
    assert start["status"] == 200
    assert dict(start["headers"]) == {b"content-type": b"application/json", b"content-length": b"8"}
    assert body == {"type": "http.response.body", "body": b'{"a": 1}'}


def test_other_paths_pass_through_untouched():
    sent = run(WholeResponseMiddleware(chunked), "/metrics")
    assert len(sent) == 4
    assert sent[1]["more_body"] is True


def test_keep_alive_limit_closes_each_connection_after_max_requests():
    app = KeepAliveLimitMiddleware(chunked, max_requests=3)

    def closes(client: tuple[str, int]) -> bool:
        start = run(app, "/v1/score/accounts", client)[0]
        assert start["headers"][0] == (b"content-type", b"application/json")  # kept
        return (b"connection", b"close") in start["headers"]

    a, b = ("127.0.0.1", 50001), ("127.0.0.1", 50002)
    assert [closes(a) for _ in range(2)] == [False, False]
    assert [closes(b) for _ in range(2)] == [False, False]  # counted per connection
    assert closes(a) is True and closes(b) is True
    assert closes(a) is False  # the client's next connection starts again
    assert len(run(app, "/metrics")) == 4  # no client (not over TCP): passed through as is


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "2.5"])
def test_bad_whole_number_settings_are_refused_by_name_and_value(monkeypatch, raw):
    monkeypatch.setenv("RADAR_KEEPALIVE_REQUESTS", raw)
    with pytest.raises(
        ValueError, match=f"RADAR_KEEPALIVE_REQUESTS must be a whole number >= 1, got '{raw}'"
    ):
        KeepAliveLimitMiddleware(chunked)


def test_whole_number_settings_default_when_unset(monkeypatch):
    monkeypatch.delenv("RADAR_WORKERS", raising=False)
    assert env_int("RADAR_WORKERS", 2) == 2
    monkeypatch.setenv("RADAR_WORKERS", "3")
    assert env_int("RADAR_WORKERS", 2) == 3


def slow(seconds: float, before_start: bool):
    async def app(scope, receive, send) -> None:
        if before_start:
            await asyncio.sleep(seconds)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0 if before_start else seconds)
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_timeout_answers_504_when_the_answer_has_not_started():
    sent = run(TimeoutMiddleware(slow(0.5, before_start=True), timeout=0.05), "/v1/score/bulk")
    assert sent[0]["status"] == 504
    assert (
        json.loads(sent[1]["body"])["detail"] == "Not able to process the request in 0.05 seconds"
    )
    assert dict(sent[0]["headers"])[b"content-type"] == b"application/problem+json"


def test_timeout_lets_a_started_answer_finish():
    sent = run(TimeoutMiddleware(slow(0.2, before_start=False), timeout=0.05), "/v1/score/bulk")
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"


def test_timeout_keeps_nothing_of_finished_requests_alive():
    """BentoML's own kept each request's context (its tracing span) until the timer fired."""
    span: contextvars.ContextVar[object] = contextvars.ContextVar("span")

    class Span:
        pass

    async def main() -> int:
        app = TimeoutMiddleware(slow(0, before_start=True), timeout=60)

        async def request() -> None:
            span.set(Span())  # as the tracing middleware outside it does
            await app({"type": "http", "path": "/v1/score/accounts"}, receive, send)

        async def receive() -> dict:
            return {"type": "http.request", "body": b""}

        async def send(message: dict) -> None:
            pass

        for _ in range(500):
            await asyncio.create_task(request(), context=contextvars.copy_context())
        gc.collect()
        return sum(isinstance(o, Span) for o in gc.get_objects())  # the loop still runs

    assert uvloop.run(main()) <= 1  # BentoML's: 500
    assert asyncio.run(main()) <= 1


def test_the_service_app_uses_this_timeout_not_bentomls():
    from serving.service import RenewalRadar

    app, chain = RenewalRadar.to_asgi(is_main=True).build_middleware_stack(), []
    while app is not None:
        chain.append(type(app))
        app = getattr(app, "app", None)
    assert TimeoutMiddleware in chain
    assert [c for c in chain if c.__name__ == "TimeoutMiddleware"] == [TimeoutMiddleware]
