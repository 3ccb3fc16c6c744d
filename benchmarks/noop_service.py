"""A BentoML service that does nothing: the framework's own limit for `bench_serve --reference`.

It answers ``POST /v1/score/accounts`` with a fixed body read at start (``$NOOP_BODY``: a real
answer of `radar serve`, so the bytes on the wire are the same), through the same kind of
prebuilt output spec, with the service's worker count and traffic settings.

    bentoml serve noop_service:Noop --working-dir benchmarks --port 3001
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import bentoml
from pydantic import Field

from serving.bentoml_fixes import prebuilt


@bentoml.service(
    name="noop",
    traffic={"timeout": 120, "max_concurrency": 64},
    workers=int(os.environ.get("NOOP_WORKERS", "2")),
)
class Noop:
    """Answers every call with the same bytes."""

    def __init__(self) -> None:
        self.body = Path(os.environ["NOOP_BODY"]).read_bytes()

    @bentoml.api(route="/v1/score/accounts", output_spec=prebuilt(dict))
    async def score_accounts(
        self, account_ids: Annotated[list[str], Field(min_length=1, max_length=100)]
    ) -> bytes:
        """The recorded answer, whatever was asked."""
        return self.body
