"""ASGI middleware of the service, on a bare ASGI app."""

from __future__ import annotations

import asyncio

from serving.middleware import WholeResponseMiddleware


def run(app, path: str) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "path": path}, receive, send))
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
