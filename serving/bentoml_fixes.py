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
"""

from __future__ import annotations

from typing import Any

import bentoml._internal.server.http.traffic as bentoml_traffic
from _bentoml_sdk.io_models import IODescriptor, ensure_io_descriptor
from starlette.responses import Response

from serving.middleware import TimeoutMiddleware

# BentoML's own, kept for the test that checks it still needs replacing.
BENTOML_TIMEOUT_MIDDLEWARE = bentoml_traffic.TimeoutMiddleware


def install() -> None:
    """Make the server build its app with our timeout middleware (workaround 1)."""
    bentoml_traffic.TimeoutMiddleware = TimeoutMiddleware


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
