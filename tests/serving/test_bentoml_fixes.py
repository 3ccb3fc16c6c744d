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


def test_bentoml_still_logs_client_errors_with_a_traceback():
    """Workaround 4 is needed while BentoML logs every 400 through ``log_exception``."""
    import inspect

    from _bentoml_impl.server.app import ServiceAppFactory

    source = inspect.getsource(ServiceAppFactory.api_endpoint_wrapper)
    branch = source[
        source.index("except ValidationError") : source.index("except BentoMLException")
    ]
    assert "log_exception(request)" in branch


def test_bentoml_metrics_still_label_by_raw_path():
    """Workaround 5 is needed while the endpoint label is the request's own path."""
    import inspect

    source = inspect.getsource(bentoml_fixes.BENTOML_METRICS_MIDDLEWARE.__call__)
    assert 'endpoint = scope["path"]' in source
    assert issubclass(bentoml_fixes.RouteLabelledMetrics, bentoml_fixes.BENTOML_METRICS_MIDDLEWARE)


def test_bentoml_429_is_still_not_a_problem_document():
    """Workaround 6 is needed while max_concurrency answers ``{"error": ...}``."""
    import inspect

    source = inspect.getsource(bentoml_fixes.BENTOML_MAX_CONCURRENCY.__call__)
    assert '{"error": "Too many requests"}' in source


def test_bentomls_openapi_flattening_still_drops_null():
    """Workaround 7: upstream keeps the first member of ``anyOf``; ours keeps ``null`` too."""
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Segment"}
    assert bentoml_fixes.BENTOML_FLATTEN(dict(schema), {}) == {
        "type": "string",
        "title": "Segment",
    }
    assert bentoml_fixes.nullable_flatten(dict(schema), {}) == schema
    ref = {"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}]}
    defs = {"X": {"type": "object", "properties": {"a": {"type": "integer"}}}}
    got = bentoml_fixes.nullable_flatten(ref, defs)
    assert got["anyOf"] == [defs["X"], {"type": "null"}]
