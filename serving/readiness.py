"""Whether this worker is ready, and if not why: shared by the service and its middleware.

The service loads its model and snapshots in a background thread (:mod:`serving.service`),
so liveness answers at once; until the load ends, and for good if it fails, readiness and
the scoring endpoints answer 503 with the reason and a ``Retry-After``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

RETRY_LOADING_S = 5  # while loading: ask again soon
RETRY_FAILED_S = 60  # after a failed load nothing changes until a restart: ask less often


@dataclass
class Readiness:
    """The load state of this worker process."""

    started: float = field(default_factory=time.monotonic)
    loading: bool = True
    error: str | None = None

    def ready(self) -> None:
        """The load succeeded."""
        self.loading, self.error = False, None

    def failed(self, reason: str) -> None:
        """The load failed for ``reason``: unready until a restart."""
        self.loading, self.error = False, reason

    def why(self) -> tuple[str, int] | None:
        """(reason, seconds to retry after) while not ready; None when ready."""
        if self.loading:
            waited = time.monotonic() - self.started
            return f"still loading the model and snapshots ({waited:.0f} s so far)", RETRY_LOADING_S
        if self.error is not None:
            return self.error, RETRY_FAILED_S
        return None


READINESS = Readiness()
