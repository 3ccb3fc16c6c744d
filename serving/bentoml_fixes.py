"""Workarounds of BentoML behaviour, in one place (bentoml is pinned: see pyproject.toml).

Each names what it works around; ``tests/serving/test_bentoml_fixes.py`` fails when upstream
behaviour changes, so a workaround that is no longer needed gets noticed and removed.

1. BentoML's request timeout leaks every request for the length of the timeout: its
   ``TimeoutMiddleware`` schedules ``loop.call_later`` per request and never cancels it (not
   reported upstream as of 2026-12; the nearest report is bentoml/BentoML#5642). The server
   builds its app with :class:`serving.middleware.TimeoutMiddleware` instead (:func:`install`).
2. One worker takes every keep-alive connection opened at once (bentoml/BentoML#5426):
   :class:`serving.middleware.KeepAliveLimitMiddleware` closes connections after a number of
   answers so clients spread over the workers.
3. No way to skip the validation of an endpoint's output against its schema
   (bentoml/BentoML#1480, closed without it): :func:`prebuilt` output specs send JSON built
   column by column and still document the schema in the OpenAPI document. It subclasses a
   private class (``_bentoml_sdk.io_models``), which the OpenAPI test also covers.
4. Every 400 (pydantic's validation error, ``BadInput``) and every 503 is logged at ERROR
   with a full traceback by ``api_endpoint_wrapper`` (``log_exception``; not reported
   upstream as of 2026-12): :class:`ClientErrorFilter` drops those records, and
   :class:`serving.problems.ProblemMiddleware` logs one INFO line per client error instead.
   Server errors (500) keep their traceback.
5. Prometheus metrics are labelled by the raw request path, so every distinct unknown URL
   is a new series: memory and ``/metrics`` grow without bound (bentoml/BentoML#4580 reports
   the same for path parameters): :class:`RouteLabelledMetrics` labels by route template,
   and every path that is no route shares ``unknown``.
6. The 429 of BentoML's ``max_concurrency`` and its error bodies are ``{"error": ...}``
   JSON, not the service's problem documents: :class:`ProblemMaxConcurrency` answers 429 as
   a problem with ``Retry-After``; :class:`serving.problems.ProblemMiddleware` rewrites the
   rest.
7. The OpenAPI document drops ``null`` from every top-level field of an endpoint's input and
   output that may be null (``_bentoml_sdk.method._flatten_field`` keeps the first member of
   an ``anyOf``; not reported upstream as of 2026-12): ``/v1/portfolio`` answered ``"segment":
   null`` against a schema of ``string``. :func:`nullable_flatten` keeps ``anyOf [X, null]``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

import _bentoml_sdk.method as bentoml_method
import bentoml._internal.server.http.instruments as bentoml_instruments
import bentoml._internal.server.http.traffic as bentoml_traffic
from _bentoml_sdk.io_models import IODescriptor, ensure_io_descriptor
from bentoml.exceptions import BentoMLException
from pydantic import ValidationError
from starlette.responses import Response

from serving import http_guard
from serving.middleware import TimeoutMiddleware
from serving.paths import UI_PATH
from serving.problems import Receive, Scope, Send, send_problem

# BentoML's own, kept for the tests that check they still need replacing.
BENTOML_TIMEOUT_MIDDLEWARE = bentoml_traffic.TimeoutMiddleware
BENTOML_METRICS_MIDDLEWARE = bentoml_instruments.RunnerTrafficMetricsMiddleware
BENTOML_MAX_CONCURRENCY = bentoml_traffic.MaxConcurrencyMiddleware
BENTOML_FLATTEN = bentoml_method._flatten_field
BENTOML_ERROR_LOGGER = "bentoml._internal.server.http_app"  # where log_exception writes
UNKNOWN_ROUTE = "unknown"
# Routes BentoML adds itself (the service's own come from the service and the pages).
SYSTEM_ROUTES = ("/", "/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json")
STATIC_PREFIX = "/static_content/"


# The service's routes, handed over by :func:`install` (this module sits below the service).
_served: dict[str, Any] = {"api": (), "pages": None}


def install(api_routes: Iterable[str] = (), pages: Any = None) -> None:
    """Make the server build its app and document with our fixes (workarounds 1, 4-7).

    ``api_routes`` and ``pages`` (the pages' Starlette app, mounted under ``/ui``) are the
    routes metrics are labelled by (:func:`route_template`).
    """
    http_guard.install()  # read deadlines, problem+json from the parser, proxies, log lines
    _served.update(api=tuple(api_routes), pages=pages)
    _routes.cache_clear()
    bentoml_method._flatten_field = nullable_flatten
    bentoml_traffic.TimeoutMiddleware = TimeoutMiddleware
    bentoml_traffic.MaxConcurrencyMiddleware = ProblemMaxConcurrency
    bentoml_instruments.RunnerTrafficMetricsMiddleware = RouteLabelledMetrics
    logger = logging.getLogger(BENTOML_ERROR_LOGGER)
    if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
        logger.addFilter(ClientErrorFilter())


NULL = {"type": "null"}


def nullable_flatten(
    schema: dict[str, Any],
    defs: dict[str, Any],
    max_depth: int | None = None,
    _depth: int = 0,
) -> dict[str, Any]:
    """BentoML's schema flattening, keeping ``anyOf [X, null]`` as it is (workaround 7)."""
    any_of = schema.get("anyOf")
    if isinstance(any_of, list) and len(any_of) == 2 and NULL in any_of:
        other = next(s for s in any_of if s != NULL)
        schema["anyOf"] = [BENTOML_FLATTEN(dict(other), defs, max_depth, _depth), NULL]
        return schema
    return BENTOML_FLATTEN(schema, defs, max_depth, _depth)


class ClientErrorFilter(logging.Filter):
    """Drop BentoML's traceback records of client errors and of 503s (workaround 4)."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            return False
        if isinstance(exc, BentoMLException):
            return int(exc.error_code) >= 500 and int(exc.error_code) != 503
        return True


@cache
def _routes() -> tuple[frozenset[str], tuple[tuple[re.Pattern[str], str], ...]]:
    """Exact routes, and (pattern, template) of the pages' routes with parameters."""
    exact = set(SYSTEM_ROUTES) | {"/" + r.lstrip("/") for r in _served["api"]}
    exact |= {"/v1/model"}
    patterns = []
    pages = _served["pages"]
    for route in pages.routes if pages is not None else ():
        template = UI_PATH + re.sub(r":\w+}", "}", route.path)  # {account_id:path} -> {account_id}
        if "{" in route.path:
            patterns.append((re.compile("^/ui" + route.path_regex.pattern.lstrip("^")), template))
        else:
            exact |= {template, template.rstrip("/") or "/"}
    return frozenset(exact), tuple(patterns)


def route_template(path: str) -> str:
    """The route a path belongs to (``/ui/accounts/{account_id}``), else ``unknown``."""
    exact, patterns = _routes()
    if path in exact:
        return path
    if path.startswith(STATIC_PREFIX):
        return STATIC_PREFIX + "{file}"
    for pattern, template in patterns:
        if pattern.match(path):
            return template
    return UNKNOWN_ROUTE


class _OriginalScope:
    """Hands the app the request's own scope again (the metrics saw the route template)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope.get("radar.scope", scope), receive, send)


class RouteLabelledMetrics(BENTOML_METRICS_MIDDLEWARE):  # type: ignore[misc, valid-type]
    """BentoML's request metrics, labelled by route template (workaround 5)."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(_OriginalScope(app), **kwargs)
        self.inner = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http" or scope.get("path") == "/metrics":
            await self.inner(scope, receive, send)
            return
        labelled = {**scope, "path": route_template(scope["path"]), "radar.scope": scope}
        await super().__call__(labelled, receive, send)


class ProblemMaxConcurrency(BENTOML_MAX_CONCURRENCY):  # type: ignore[misc, valid-type]
    """BentoML's concurrency limit, answering 429 as a problem document (workaround 6)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if (
            scope["type"] == "http"
            and scope["path"] not in self.skip_paths
            and self._semaphore.locked()
        ):
            await send_problem(
                send,
                429,
                "too many requests at once; retry shortly",
                headers=[(b"retry-after", b"1")],
            )
            return
        await super().__call__(scope, receive, send)


def prebuilt(schema: Any) -> type[IODescriptor]:
    """Output spec of an endpoint that returns its JSON already built (workaround 3).

    The OpenAPI document still describes ``schema``. A value is JSON bytes, or (the slices
    of a batched endpoint) a list of items' JSON bytes, sent as an array.
    """

    class Prebuilt(ensure_io_descriptor(schema)):  # type: ignore[misc, valid-type]
        @classmethod
        async def to_http_response(cls, obj: bytes | list[bytes], serde: Any) -> Response:
            body = b"[" + b",".join(obj) + b"]" if isinstance(obj, list) else obj
            return Response(body, media_type="application/json")

    Prebuilt.__name__ = Prebuilt.__qualname__ = f"{getattr(schema, '__name__', 'Output')}Output"
    return Prebuilt
