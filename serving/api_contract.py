"""The API contract BentoML does not enforce by itself.

The media type (415), the bulk endpoint's limits, GET of ``/v1/model``, and an OpenAPI
document that declares the error format and the security scheme.
"""

from __future__ import annotations

import copy
import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from serving import auth
from serving.middleware import BodyTooLargeError, read_body, replay
from serving.problems import (
    DECLARED,
    KINDS,
    PROBLEM_TYPE,
    ASGIApp,
    Receive,
    Scope,
    Send,
    send_problem,
)
from serving.schemas import MAX_BULK, MAX_ID_LENGTH, NDJSON

PREFIX = "/v1/"
BULK_ROUTE = "/v1/score/bulk"
# Endpoints whose input is all optional, also answered to GET (as POST with ``{}``).
GET_AS_POST = frozenset({"/v1/model", "/v1/portfolio"})
JSON = b"application/json"
MAX_LISTED_ERRORS = 10  # a problem names at most this many bad ids


def package_version() -> str:
    """The installed package's version (``info.version`` of the OpenAPI document)."""
    try:
        return version("renewal-radar")
    except PackageNotFoundError:  # pragma: no cover (running from a bare source tree)
        return "0+unknown"


def bulk_errors(body: bytes) -> list[dict[str, str]]:
    """The bulk endpoint's limits on ``account_ids`` (BentoML's batched input has none).

    Anything that is not a list of strings is left to BentoML's own validation.
    """
    try:
        ids = json.loads(body).get("account_ids")
    except (ValueError, AttributeError):
        return []
    except RecursionError:  # 2 KB of nested brackets: BentoML's own parse would be a 500
        return [{"field": "body", "message": "the JSON body is nested too deeply"}]
    if not isinstance(ids, list):
        return []
    if not ids:
        return [{"field": "account_ids", "message": "give at least 1 account id"}]
    if len(ids) > MAX_BULK:
        return [
            {
                "field": "account_ids",
                "message": f"at most {MAX_BULK:,} account ids per call, got {len(ids):,}",
            }
        ]
    errors = []
    for i, a in enumerate(ids):
        if isinstance(a, str) and not 1 <= len(a) <= MAX_ID_LENGTH:
            errors.append(
                {
                    "field": f"account_ids[{i}]",
                    "message": f"an account id has 1 to {MAX_ID_LENGTH} characters, got {len(a):,}",
                }
            )
            if len(errors) >= MAX_LISTED_ERRORS:
                break
    return errors


class ApiContractMiddleware:
    """415 for a body that is not JSON, the bulk limits (400), and GET for ``/v1/model``.

    Sits inside :class:`serving.middleware.BodySizeLimitMiddleware`, so bodies are bounded.
    """

    def __init__(self, app: ASGIApp, prefix: str = PREFIX) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "")
        headers = list(scope.get("headers") or [])
        if method == "GET" and path in GET_AS_POST:
            drop = (b"content-type", b"content-length", b"transfer-encoding")
            headers = [(k, v) for k, v in headers if k.lower() not in drop]
            headers += [(b"content-type", JSON), (b"content-length", b"2")]
            scope = {**scope, "method": "POST", "headers": headers}
            await self.app(scope, replay(b"{}", receive), send)
            return
        if method == "POST":
            ctype = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
            if ctype.split(b";")[0].strip().lower() != JSON:
                got = ctype.decode(errors="replace") or "no Content-Type"
                await send_problem(send, 415, f"send the body as application/json (got {got})")
                return
            if path == BULK_ROUTE:
                try:
                    body = await read_body(receive)
                except BodyTooLargeError:  # pragma: no cover (no limit given here)
                    return
                if body is None:
                    return
                if errors := bulk_errors(body):
                    n = len(errors)
                    detail = f"{errors[0]['field']}: {errors[0]['message']}"
                    detail += f" (and {n - 1} more)" if n > 1 else ""
                    await send_problem(send, 400, detail, errors)
                    return
                receive = replay(body, receive)
        await self.app(scope, receive, send)


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An error, as RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "URI naming the kind of problem."},
        "title": {"type": "string", "examples": ["Invalid request"]},
        "status": {"type": "integer", "examples": [400]},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "errors": {
            "type": "array",
            "description": "Validation only: each bad field and why.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {
                        "type": "string",
                        "examples": ["snapshots[0].features.seat_utilisaton"],
                    },
                    "message": {
                        "type": "string",
                        "examples": [
                            "seat_utilisaton: unknown feature; did you mean seat_utilisation?"
                        ],
                    },
                },
            },
        },
    },
}
SECURITY_SCHEMES = {
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "BearerAuth": {"type": "http", "scheme": "bearer"},
}
DESCRIPTION = (
    "Calibrated churn, expansion and renewal probabilities with their reasons, by account id "
    "or for feature values sent by the caller. Every error is `application/problem+json` "
    "(RFC 9457): `type`, `title`, `status`, `detail` and, for invalid input, `errors` with "
    "each bad `field` and its `message`. With an API key configured, the `/v1` endpoints need "
    "it as `X-API-Key` or `Authorization: Bearer`."
)
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before asking again.",
        "schema": {"type": "integer"},
    }
}


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": KINDS[status][1],
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response


def openapi_document(doc: dict[str, Any], api_key: bool) -> dict[str, Any]:
    """BentoML's OpenAPI document with this API's contract declared.

    ``info`` names the package version; every ``/v1`` operation declares the problem answers
    (``DECLARED``), a required body and the security scheme (optional without a key);
    ``/v1/model`` also takes GET; the bulk endpoint's limits are in its schema.
    """
    doc = copy.deepcopy(doc)
    doc["info"] = {
        "title": "Renewal Radar",
        "version": package_version(),
        "description": DESCRIPTION,
    }
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        schemas.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    security = [{"ApiKeyHeader": []}, {"BearerAuth": []}] + ([] if api_key else [{}])
    for path, item in doc.get("paths", {}).items():
        for op in item.values():
            responses = op.setdefault("responses", {})
            for code in [c for c in responses if c != "200"]:
                del responses[code]
            if not path.startswith(PREFIX):
                if path == "/readyz":
                    responses["503"] = _problem_response(503)
                continue
            for status in (*DECLARED, 504):
                responses[str(status)] = _problem_response(status)
            op["security"] = security
            if "requestBody" in op:
                op["requestBody"]["required"] = True
    bulk = doc.get("paths", {}).get(BULK_ROUTE, {}).get("post")
    if bulk:
        schema = bulk["requestBody"]["content"]["application/json"]["schema"]
        ids = schema["properties"]["account_ids"]
        ids |= {"minItems": 1, "maxItems": MAX_BULK}
        ids["items"] |= {"minLength": 1, "maxLength": MAX_ID_LENGTH}
        ok = bulk["responses"]["200"]
        items = ok["content"]["application/json"]["schema"].get("items")
        if items:  # on request (Accept), one item per line
            ok["content"][NDJSON] = {"schema": items}
            ok["description"] = (
                "One item per id, in order: a JSON array, or with `Accept: "
                f"{NDJSON}` one item per line."
            )
    for path in GET_AS_POST:
        item = doc.get("paths", {}).get(path)
        if item and "post" in item:
            get = copy.deepcopy(item["post"])
            get.pop("requestBody", None)
            get["operationId"] = get.get("operationId", path) + "__get"
            del get["responses"]["415"]
            item["get"] = get
    return doc


class OpenApiMiddleware:
    """Answer ``/docs.json`` with :func:`openapi_document` (built once per worker)."""

    def __init__(self, app: ASGIApp, path: str = "/docs.json") -> None:
        self.app = app
        self.path = path
        self.cached: bytes | None = None
        self.api_key = auth.api_key() is not None  # as the API key middleware reads it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("GET", "HEAD"):  # the router's 405 became our 500
            allow = [(b"allow", b"GET, HEAD")]
            await send_problem(send, 405, f"{self.path} answers GET only", headers=allow)
            return
        if self.cached is None:
            start: dict[str, Any] = {}
            parts: list[bytes] = []

            async def keep(message: Any) -> None:
                if message["type"] == "http.response.start":
                    start.update(message)
                elif message["type"] == "http.response.body":
                    parts.append(message.get("body", b""))

            await self.app(scope, receive, keep)
            if start.get("status") != 200:
                await send_problem(send, 500, "the OpenAPI document could not be built")
                return
            doc = openapi_document(json.loads(b"".join(parts)), self.api_key)
            self.cached = json.dumps(doc).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", JSON),
                    (b"content-length", str(len(self.cached)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self.cached})
