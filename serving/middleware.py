"""ASGI middleware: size limit (413), API key (401), timeout (504), whole answers, keep-alive."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Probes, metrics and the API description stay reachable without a key.
OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/")
OPEN_PREFIXES = ("/static_content/",)
CLOSE = (b"connection", b"close")
# The CSM pages ask for the key themselves (a form, then a cookie): see serving/ui.py.
OWN_AUTH_PREFIX = "/ui"


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """Whole-number setting ``name`` from the environment; a clear error if it is not one."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {raw!r}")
    return value


async def _json(send: Send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class BodyTooLargeError(Exception):
    """Raised inside the app when the streamed body passes the limit."""


class BodySizeLimitMiddleware:
    """413 for a request whose body is larger than ``max_bytes``.

    Checks the declared Content-Length first, then counts the streamed bytes (a chunked request
    declares none).
    """

    def __init__(self, app: ASGIApp, max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes or env_int("RADAR_MAX_REQUEST_BYTES", 1 << 20)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_large = {"error": f"request body larger than {self.max_bytes} bytes"}
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _json(send, 413, too_large)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLargeError:
            if not started:
                await _json(send, 413, too_large)


class ApiKeyMiddleware:
    """401 unless the request carries the key (``X-API-Key`` or ``Authorization: Bearer``).

    The key is ``api_key``, else ``$RADAR_API_KEY``; with neither, every request passes.
    """

    def __init__(self, app: ASGIApp, api_key: str | None = None) -> None:
        self.app = app
        key = api_key or os.environ.get("RADAR_API_KEY")
        self.key = key.encode() if key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        path = scope.get("path", "")
        if (
            self.key is None
            or scope["type"] != "http"
            or path in OPEN_PATHS
            or path.startswith(OPEN_PREFIXES)
            or path == OWN_AUTH_PREFIX
            or path.startswith(OWN_AUTH_PREFIX + "/")
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-api-key")
        auth = headers.get(b"authorization", b"")
        if given is None and auth.lower().startswith(b"bearer "):
            given = auth[7:].strip()
        if given is None or not hmac.compare_digest(given, self.key):
            await _json(send, 401, {"error": "missing or wrong API key (X-API-Key header)"})
            return
        await self.app(scope, receive, send)


class WholeResponseMiddleware:
    """Send each response of the API (``/v1/...``) in one piece, with a ``Content-Length``.

    BentoML streams every response: chunked transfer encoding, with the body and its end in
    separate messages and socket writes. For the small JSON answers of this service that
    costs a write and a pass through every outer middleware per request, and milliseconds
    of latency with clients that delay their acknowledgements.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/v1/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        parts: list[bytes] = []

        async def whole(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body" and start is not None:
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    data = b"".join(parts)
                    drop = (b"content-length", b"transfer-encoding")
                    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in drop]
                    headers.append((b"content-length", str(len(data)).encode()))
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": data})
            else:
                await send(message)

        await self.app(scope, receive, whole)


class KeepAliveLimitMiddleware:
    """Close each keep-alive connection after ``max_requests`` answers (``Connection: close``).

    BentoML's workers share one listening socket and the first to wake accepts every pending
    connection, so a client that opens its pool at once lands on one worker while the others
    idle (bentoml/BentoML#5426). A client that reconnects lands on whichever worker is free
    first (a busy one is not polling), so bounding requests per connection, as nginx's
    ``keepalive_requests`` does, spreads the load within seconds at the price of a reconnect.
    """

    MAX_TRACKED = 10_000  # connections the client closed itself leave their count behind

    def __init__(self, app: ASGIApp, max_requests: int | None = None) -> None:
        self.app = app
        self.max_requests = max_requests or env_int("RADAR_KEEPALIVE_REQUESTS", 32)
        self.answered: dict[Any, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        client = scope.get("client")
        if scope["type"] != "http" or client is None:
            await self.app(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                n = self.answered.pop(client, 0) + 1
                if n >= self.max_requests:
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
                else:
                    if len(self.answered) >= self.MAX_TRACKED:
                        self.answered.clear()
                    self.answered[client] = n
            await send(message)

        await self.app(scope, receive, counted)


class TimeoutMiddleware:
    """504 when the app has not started its answer within ``timeout`` seconds.

    Takes the place of BentoML's own (same contract and message), which schedules a timer per
    request and never cancels it: each request's future, context and tracing span then live
    until the timer fires (the service's 120 s), ~36,000 requests at 300 requests/s, and the
    garbage collector's full passes over them stalled answers by ~100 ms (measured). Here the
    timer is cancelled as soon as the answer starts.
    """

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False
        try:
            async with asyncio.timeout(self.timeout) as deadline:

                async def tracked(message: Message) -> None:
                    nonlocal started
                    if not started:
                        started = True
                        deadline.reschedule(None)  # a long answer may take its time
                    await send(message)

                await self.app(scope, receive, tracked)
        except TimeoutError:
            if started:
                raise
            error = f"Not able to process the request in {self.timeout} seconds"
            await _json(send, 504, {"error": error})
