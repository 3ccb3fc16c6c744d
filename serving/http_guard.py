"""What the HTTP server itself must do before the app sees a request (uvicorn, under BentoML).

- **Read deadlines per connection.** uvicorn times out only idle keep-alive connections: a
  client that sends its headers, or its body, one byte every few seconds held a connection
  (and, before the key was checked first, a slot of the concurrency limit) for ever.
  :class:`GuardedHttpToolsProtocol` gives each request ``$RADAR_HEADER_TIMEOUT_S`` (10 s)
  from its first byte to the end of its headers and ``$RADAR_BODY_TIMEOUT_S`` (30 s) from
  there to the end of its body, then answers 408 and closes the connection.
- **One error format.** The parser's own refusals (unknown method, conflicting
  ``Content-Length``, a bad chunk size, NUL in a header, an overlong URL) were ``text/plain``;
  they are a problem document now. WebSocket upgrades are not offered (the service has no
  WebSocket route), so an upgrade request is an ordinary request: 401 or 404 as a problem.
- **Forwarded addresses only from configured proxies.** uvicorn trusts ``X-Forwarded-For``
  from 127.0.0.1 unless told otherwise, so any local client could choose the address the
  throttle counts. ``$FORWARDED_ALLOW_IPS`` is set from ``$RADAR_TRUSTED_PROXIES`` (empty:
  no proxy is trusted) unless the operator set it.
- **Log fields escaped.** CR and LF in a logged value (a URL path such as
  ``/v1/x%0d%0a<forged line>``) are written escaped (a backslash and r or n): one line each.

:func:`install` is called by :func:`serving.bentoml_fixes.install` in each worker, before
uvicorn builds its configuration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import uvicorn.config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.problems import PROBLEM_TYPE, problem

HEADER_TIMEOUT_ENV = "RADAR_HEADER_TIMEOUT_S"
BODY_TIMEOUT_ENV = "RADAR_BODY_TIMEOUT_S"
TRUSTED_PROXIES_ENV = "RADAR_TRUSTED_PROXIES"
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 30.0  # 1 MiB (the body limit) over a slow mobile link fits


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return value


def problem_bytes(status: int, reason: bytes, detail: str) -> bytes:
    """A whole HTTP/1.1 answer ``status`` with a problem document, closing the connection."""
    body = json.dumps(problem(status, detail)).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: " + PROBLEM_TYPE.encode() + b"\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and problem+json 400s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = _seconds(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT_S)
        self.body_timeout = _seconds(BODY_TIMEOUT_ENV, DEFAULT_BODY_TIMEOUT_S)
        self._deadline: asyncio.TimerHandle | None = None
        self.ws_protocol_class = None  # no WebSocket route: an upgrade is a plain request

    def _arm(self, seconds: float | None, phase: str = "") -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if seconds is not None:
            self._deadline = self.loop.call_later(seconds, self._expired, phase)

    def _expired(self, phase: str) -> None:
        """The request did not arrive in time: 408 if nothing was answered yet, then close."""
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        answered = cycle is not None and phase == "body" and cycle.response_started
        if not answered:
            limit = self.header_timeout if phase == "headers" else self.body_timeout
            detail = f"the request's {phase} did not arrive within {limit:g} s"
            self.transport.write(problem_bytes(408, b"Request Timeout", detail))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() now says the client went away
            cycle.message_event.set()
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # noqa: D102
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self._arm(None)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:  # noqa: D102
        super().on_message_begin()
        self._arm(self.header_timeout, "headers")

    def on_headers_complete(self) -> None:  # noqa: D102
        self._arm(self.body_timeout, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:  # noqa: D102
        self._arm(None)
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """The parser refused the request: a problem document instead of plain text."""
        self._arm(None)
        detail = f"the request is not valid HTTP/1.1 ({msg.rstrip('.')})"
        self.transport.write(problem_bytes(400, b"Bad Request", detail))
        self.transport.close()


class OneLineRecord(logging.LogRecord):
    """A log record whose message cannot start a new line (CR and LF escaped)."""

    def getMessage(self) -> str:  # noqa: D102, N802 (logging's name)
        message = super().getMessage()
        if "\r" in message or "\n" in message:
            message = message.replace("\r", "\\r").replace("\n", "\\n")
        return message


def install() -> None:
    """Use the guarded protocol, no WebSocket upgrades, trusted proxies, one-line log records."""
    target = f"{__name__}:GuardedHttpToolsProtocol"
    uvicorn.config.HTTP_PROTOCOLS["auto"] = target
    uvicorn.config.HTTP_PROTOCOLS["httptools"] = target
    os.environ.setdefault("FORWARDED_ALLOW_IPS", os.environ.get(TRUSTED_PROXIES_ENV, ""))
    logging.setLogRecordFactory(OneLineRecord)
