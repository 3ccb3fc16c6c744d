"""The API key: where it comes from, the pages' signed session cookie, throttling of wrong keys.

- The key is ``$RADAR_API_KEY``, else the first line of the file ``$RADAR_API_KEY_FILE``
  (``radar serve --api-key-file``: a key on the command line is visible in ``ps``).
- The pages keep a signed session value in their cookie, never the key itself:
  ``<issued>.<HMAC-SHA256(key, issued)>``, valid for ``SESSION_HOURS``.
- A client (by address) that sends ``MAX_FAILURES`` wrong keys within ``WINDOW_S`` seconds
  gets 429 with ``Retry-After`` until the window has passed (300 guesses at about 2,000/s
  were all plain 401s). Every wrong key counts, on every route (the API's headers, the
  pages' ``X-API-Key`` header and their form), once for all workers (:mod:`serving.throttle`).
  The address is the peer's, or ``X-Forwarded-For`` only from the proxies configured in
  ``$RADAR_TRUSTED_PROXIES`` (see docs/serving.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import deque
from pathlib import Path

from serving.throttle import LazyThrottle

SESSION_HOURS = 12
MAX_FAILURES = 20
WINDOW_S = 60.0
MAX_TRACKED = 10_000  # client addresses remembered; beyond, the oldest are forgotten


def api_key() -> bytes | None:
    """The configured key, or None when the service is open."""
    key = os.environ.get("RADAR_API_KEY")
    if not key and (path := os.environ.get("RADAR_API_KEY_FILE")):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise ValueError(f"RADAR_API_KEY_FILE {path}: cannot read it ({exc})") from exc
        key = lines[0].strip() if lines else ""
        if not key:
            raise ValueError(f"RADAR_API_KEY_FILE {path}: the file is empty")
    return key.encode() if key else None


def _signature(key: bytes, issued: str) -> str:
    return hmac.new(key, f"renewal-radar-ui:{issued}".encode(), hashlib.sha256).hexdigest()


def session_value(key: bytes, now: float | None = None) -> str:
    """A signed session value for the pages' cookie (the key itself is never stored)."""
    issued = str(int(now if now is not None else time.time()))
    return f"{issued}.{_signature(key, issued)}"


def valid_session(key: bytes, value: str, now: float | None = None) -> bool:
    """Whether ``value`` was signed with ``key`` within the last ``SESSION_HOURS``."""
    issued, _, signature = value.partition(".")
    if not issued.isdigit() or not hmac.compare_digest(signature, _signature(key, issued)):
        return False
    age = (now if now is not None else time.time()) - int(issued)
    return 0 <= age <= SESSION_HOURS * 3600


class FailureThrottle:
    """Wrong keys per client address in a sliding window; blocked past ``max_failures``."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self.failures.get(client, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds until ``client`` may try again, or None when it is not blocked."""
        now = time.monotonic() if now is None else now
        times = self._recent(client, now)
        if len(times) < self.max_failures:
            return None
        return max(1, int(self.window_s - (now - times[0])) + 1)

    def failed(self, client: str, now: float | None = None) -> None:
        """Record a wrong key from ``client``."""
        now = time.monotonic() if now is None else now
        if client not in self.failures and len(self.failures) >= MAX_TRACKED:
            self.failures.pop(next(iter(self.failures)))
        times = self._recent(client, now)
        times.append(now)
        self.failures[client] = times


# One for the whole server (a SQLite file in $RADAR_STATE_DIR): the API and the pages share it.
THROTTLE = LazyThrottle(MAX_FAILURES, WINDOW_S)
