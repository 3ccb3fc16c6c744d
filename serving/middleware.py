"""ASGI middleware: size limit (413), API key (401), timeout (504), whole answers, keep-alive."""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from typing import Any

from serving import auth
from serving.paths import CTAS_PATH, UI_PATH
from serving.problems import ASGIApp, Message, Receive, Scope, Send, send_problem

# Probes, metrics and the API description stay reachable without a key.
OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/")
OPEN_PREFIXES = ("/static_content/",)
CLOSE = (b"connection", b"close")
TIMING = b"server-timing"
NDJSON = b"application/x-ndjson"
# The CSM pages ask for the key themselves (a form, then a cookie: serving/pages/ui.py), and so
# do the calls to action (serving/cta_routes.py: a login, personal tokens, the key).
OWN_AUTH_PREFIXES = (UI_PATH, CTAS_PATH)


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


class BodyTooLargeError(Exception):
    """The streamed body passed the limit."""


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body (None if the client went away); raises past ``limit`` bytes."""
    parts: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        seen += len(chunk)
        if limit is not None and seen > limit:
            raise BodyTooLargeError
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` whole once, then whatever the client sends next."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class BodySizeLimitMiddleware:
    """413 for a request whose body is larger than ``max_bytes``.

    Checks the declared Content-Length first, then reads the body (a chunked request declares
    none) up to the limit before the app sees any of it: BentoML catches an error raised from
    inside its body reader and answers 500, so the limit cannot be enforced from there.
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
        too_large = f"request body larger than {self.max_bytes} bytes"
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_problem(send, 413, too_large)
            return
        try:
            body = await read_body(receive, self.max_bytes)
        except BodyTooLargeError:
            await send_problem(send, 413, too_large)
            return
        if body is None:  # the client went away
            return
        await self.app(scope, replay(body, receive), send)


class ApiKeyMiddleware:
    """401 unless the request carries the key (``X-API-Key`` or ``Authorization: Bearer``).

    Decided from the headers alone, before any of the body is read (it stands before the
    body-size limit): a client without the key holds no slot of the concurrency limit while
    it trickles a body in.

    The key is ``api_key``, else :func:`serving.auth.api_key` (``$RADAR_API_KEY`` or the file
    ``$RADAR_API_KEY_FILE``); with none, every request passes. A client that keeps sending
    wrong keys gets 429 for a while (:data:`serving.auth.THROTTLE`).
    """

    def __init__(self, app: ASGIApp, api_key: str | None = None) -> None:
        self.app = app
        self.key = api_key.encode() if api_key else auth.api_key()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        path = scope.get("path", "")
        if (
            self.key is None
            or scope["type"] != "http"
            or path in OPEN_PATHS
            or path.startswith(OPEN_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = [headers.get(b"x-api-key", b"")]
        bearer = headers.get(b"authorization", b"")
        if bearer[:7].lower() == b"bearer ":
            given.append(bearer[7:].strip())
        client = (scope.get("client") or ("?", 0))[0]
        if path == CTAS_PATH or path.startswith(CTAS_PATH + "/"):
            # The calls to action take personal tokens as well as the key, so they judge (and
            # count) what a request carries themselves (serving.cta_routes).
            await self.app(scope, receive, send)
            return
        wrong = any(given) and not any(hmac.compare_digest(g, self.key) for g in given)
        pages = path == UI_PATH or path.startswith(UI_PATH + "/")
        if (not pages or wrong) and (wait := auth.THROTTLE.retry_after(client)) is not None:
            await send_problem(
                send,
                429,
                f"too many wrong API keys from this address; retry in {wait} s",
                headers=[(b"retry-after", str(wait).encode())],
            )
            return
        if pages:
            # The pages sign in themselves (form, cookie), but a key sent in a header is a
            # guess like any other: counted, and refused once the address is throttled.
            if wrong:
                auth.THROTTLE.failed(client)
            await self.app(scope, receive, send)
            return
        if not any(hmac.compare_digest(g, self.key) for g in given):
            if any(given):  # a guess (no key at all is a misconfigured client, not one)
                auth.THROTTLE.failed(client)
            await send_problem(
                send,
                401,
                "missing or wrong API key (X-API-Key header or Authorization: Bearer)",
                headers=[(b"www-authenticate", b'Bearer realm="renewal-radar"')],
            )
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
                ctype = dict((k.lower(), v) for k, v in message.get("headers", []))
                if ctype.get(b"content-type", b"").startswith(NDJSON):
                    await send(message)  # a stream by request: sent as it is scored
                else:
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


class ServerTimingMiddleware:
    """``Server-Timing`` on every answer: ``total;dur=`` ms until the answer started.

    An endpoint that timed its scoring (``score;dur=``, set by the service) keeps it first.
    A streamed answer (NDJSON) starts before it is scored: its total is the time to start.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                total = f"total;dur={(time.perf_counter() - start) * 1000:.1f}".encode()
                headers = list(message.get("headers", []))
                own = [v for k, v in headers if k.lower() == TIMING]
                headers = [(k, v) for k, v in headers if k.lower() != TIMING]
                headers.append((TIMING, b", ".join([*own, total])))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed)


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
            await send_problem(send, 504, error)


# Pages: no scripts, no framing, no sniffing; styles are inline in the templates.
PAGE_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeadersMiddleware:
    """``X-Content-Type-Options`` on every answer; CSP and ``X-Frame-Options`` on the pages."""

    def __init__(self, app: ASGIApp, pages: str | tuple[str, ...] = OWN_AUTH_PREFIXES) -> None:
        self.app = app
        self.pages = (pages,) if isinstance(pages, str) else pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        page = any(path == p or path.startswith(p + "/") for p in self.pages)
        extra = PAGE_HEADERS if page else PAGE_HEADERS[2:3]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                add = [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *add]}
            await send(message)

        await self.app(scope, receive, with_headers)
