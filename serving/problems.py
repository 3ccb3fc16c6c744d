"""One error format for the API: ``application/problem+json`` (RFC 9457).

Every error answer of the service outside the CSM pages is a problem document::

    {"type": "https://renewal-radar.dev/problems/validation", "title": "Invalid request",
     "status": 400, "detail": "1 field is invalid: ...",
     "errors": [{"field": "snapshots[0].features.seat_utilisaton", "message": "..."}]}

``detail`` is always a string; ``errors`` (validation only) names each bad field. Our own
middleware answers in this format directly (:func:`send_problem`); :class:`ProblemMiddleware`
rewrites what BentoML and Starlette answer themselves (pydantic's 400, the router's 404 and
405, 503 while unready, 500) and logs each client error as one INFO line.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from serving.paths import CTAS_PATH, UI_PATH

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("renewal_radar.service")

PROBLEM_TYPE = "application/problem+json"
TYPE_BASE = "https://renewal-radar.dev/problems/"
# status -> (type slug, title): one place for the wording of every error status.
KINDS: dict[int, tuple[str, str]] = {
    400: ("validation", "Invalid request"),
    401: ("unauthorized", "Missing or wrong API key"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal", "Internal error"),
    503: ("unavailable", "Service not ready"),
    504: ("timeout", "Request timed out"),
}
# Statuses the API may answer, declared in the OpenAPI document.
DECLARED = (400, 401, 404, 413, 415, 429, 503)
INTERNAL_DETAIL = "an unexpected error occurred; the server log has the details"
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")  # credentials in a URI


def redact(text: str) -> str:
    """``text`` without credentials in URIs (``http://user:pass@host`` -> ``http://***@host``)."""
    return _USERINFO.sub("***@", text)


def problem(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The problem document of ``status`` with ``detail`` (and ``errors`` for validation)."""
    slug, title = KINDS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer ``status`` as a problem document."""
    data = json.dumps(problem(status, detail, errors)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_TYPE.encode()),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def field_name(loc: Iterable[Any]) -> str:
    """A pydantic location as a path: ``("snapshots", 0, "x")`` -> ``snapshots[0].x``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("body", "root"):
            out += f".{part}" if out else str(part)
    return out or "body"


def unknown_feature(name: str) -> str:
    """``"seat_utilization: unknown feature; did you mean seat_utilisation?"``."""
    from features.catalogue import FEATURES

    near = difflib.get_close_matches(name, [f.name for f in FEATURES], n=1)
    hint = f"; did you mean {near[0]}?" if near else ""
    return f"{name}: unknown feature{hint}"


def _feature_values(loc: list[Any]) -> bool:
    """Whether ``loc`` is a feature name key: ``snapshots[i].features.X``, ``overrides.ID.X``."""
    return (len(loc) >= 2 and loc[-2] == "features") or (len(loc) >= 3 and loc[-3] == "overrides")


def _message(item: dict[str, Any]) -> str:
    """Pydantic's message, with the nearest known feature for an unknown one."""
    loc = list(item.get("loc") or [])
    if item.get("type") == "extra_forbidden" and _feature_values(loc):
        return unknown_feature(str(loc[-1]))
    if item.get("type") == "extra_forbidden" and loc:
        from serving.strict_inputs import unknown_field

        return unknown_field(str(loc[-1]))
    return str(item.get("msg", "invalid"))


def invalid(title: str, errors: list[tuple[tuple[str | int, ...], str]]) -> Exception:
    """A 400 from the service's own checks of a request, as pydantic's are answered.

    ``errors`` are (location, message) pairs; the answer is the same problem document with
    ``errors: [{field, message}]`` (BentoML answers a ValidationError raised by an endpoint
    as it does one of its own input).
    """
    from pydantic import ValidationError
    from pydantic_core import PydanticCustomError

    return ValidationError.from_exception_data(
        title,
        [
            {
                "type": PydanticCustomError("request", "{why}", {"why": message}),
                "loc": loc,
                "input": None,
            }
            for loc, message in errors
        ],
    )


def validation_errors(detail: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Pydantic's error list as ``[{field, message}]``."""
    return [{"field": field_name(d.get("loc", ())), "message": _message(d)} for d in detail]


def summary(errors: list[dict[str, str]]) -> str:
    """One sentence for ``detail``: how many fields and the first of them."""
    n = len(errors)
    first = errors[0]
    more = f" (and {n - 1} more)" if n > 1 else ""
    return f"{n} field{'s' if n != 1 else ''} invalid: {first['field']}: {first['message']}{more}"


def from_bentoml(status: int, body: bytes, path: str) -> dict[str, Any]:
    """The problem document for an error answer BentoML or Starlette built themselves."""
    try:
        raw: Any = json.loads(body) if body else None
    except ValueError:
        raw = body.decode(errors="replace").strip() or None
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):  # BentoML's BadInput: [{error}]
        raw = raw[0]
    if status == 400 and isinstance(raw, dict) and isinstance(raw.get("detail"), list):
        errors = validation_errors(raw["detail"])
        if errors:
            return problem(400, summary(errors), errors)
    if status == 404:
        said = raw.get("error") if isinstance(raw, dict) else None  # an endpoint's own 404
        return problem(404, str(said) if said else f"no endpoint at {path}")
    if status == 405:
        return problem(405, f"{path} does not take this method")
    if status >= 500 and status != 503:
        return problem(status, INTERNAL_DETAIL)
    text = raw.get("error") if isinstance(raw, dict) else raw
    return problem(status, str(text) if text else KINDS.get(status, ("", "error"))[1])


class ProblemMiddleware:
    """Rewrite every error answer outside the pages to a problem document; log it once.

    Client errors (4xx) are logged as one INFO line (status, method, path, detail); the
    traceback BentoML logs for them is dropped (:mod:`serving.bentoml_fixes`). ``extra``
    gives the detail and headers of a 503 while the service is not ready.
    """

    def __init__(
        self,
        app: ASGIApp,
        skip_prefix: str | tuple[str, ...] = (UI_PATH, CTAS_PATH),  # pages; /ctas answers its own
        unready: Callable[[], tuple[str, int] | None] | None = None,
    ) -> None:
        self.app = app
        self.skip_prefix = skip_prefix
        self._skipped = (skip_prefix,) if isinstance(skip_prefix, str) else skip_prefix
        self.unready = unready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        path = scope.get("path", "")
        if scope["type"] != "http" or any(
            path == p or path.startswith(p + "/") for p in self._skipped
        ):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        parts: list[bytes] = []
        method = scope.get("method", "")

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and start is None:
                if message["status"] < 400:
                    start = {}  # a success: passed through untouched
                    await send(message)
                    return
                start = message
                return
            if not start:  # passed through, or not started
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            status = start["status"]
            headers = [(k, v) for k, v in start.get("headers", [])]
            body = b"".join(parts)
            kept = [
                (k, v)
                for k, v in headers
                if k.lower() not in (b"content-type", b"content-length", b"transfer-encoding")
            ]
            ctype = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
            if ctype.startswith(PROBLEM_TYPE.encode()):
                doc = json.loads(body)
            else:
                doc = from_bentoml(status, body, path)
                if status == 503 and self.unready is not None and (why := self.unready()):
                    doc["detail"] = f"not ready: {why[0]}"
                    retry = why[1]
                    kept.append((b"retry-after", str(retry).encode()))
            if status < 500:
                log.info("%d %s %s: %s", status, method, path, doc["detail"])
            data = json.dumps(doc).encode()
            await send(
                {
                    **start,
                    "headers": [
                        *kept,
                        (b"content-type", PROBLEM_TYPE.encode()),
                        (b"content-length", str(len(data)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": data})

        await self.app(scope, receive, rewrite)
