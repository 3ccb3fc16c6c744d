"""Each BentoML workaround's reason still holds upstream: these fail when upstream changes."""

from __future__ import annotations

import asyncio
import contextvars
import gc

from _bentoml_sdk.io_models import IODescriptor

from serving import bentoml_fixes
from serving.schemas import ScoreResponse


def leaked_contexts(middleware) -> int:
    """Contexts of 500 finished requests still alive behind ``middleware`` (timeout 60 s)."""
    span: contextvars.ContextVar[object] = contextvars.ContextVar("span")

    class Span:
        pass

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> int:
        wrapped = middleware(app, timeout=60)

        async def request() -> None:
            span.set(Span())

            async def receive() -> dict:
                return {"type": "http.request", "body": b""}

            async def send(message: dict) -> None:
                pass

            await wrapped({"type": "http", "path": "/v1/score/accounts"}, receive, send)

        for _ in range(500):
            await asyncio.create_task(request(), context=contextvars.copy_context())
        gc.collect()
        return sum(isinstance(o, Span) for o in gc.get_objects())

    return asyncio.run(main())


def test_bentomls_timeout_still_keeps_every_finished_request_alive():
    """Workaround 1 is needed while this holds; when it fails, drop ours and the swap."""
    assert leaked_contexts(bentoml_fixes.BENTOML_TIMEOUT_MIDDLEWARE) >= 450
    assert leaked_contexts(bentoml_fixes.TimeoutMiddleware) <= 1


def test_prebuilt_output_spec_still_builds_on_bentomls_private_descriptor():
    """Workaround 3 subclasses a private class: it must still exist and describe the schema."""
    spec = bentoml_fixes.prebuilt(ScoreResponse)
    assert issubclass(spec, ScoreResponse) and spec.__name__ == "ScoreResponseOutput"
    assert callable(IODescriptor) and callable(spec.to_http_response)
    assert "results" in spec.model_json_schema()["properties"]
