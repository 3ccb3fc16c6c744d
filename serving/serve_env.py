"""The environment ``radar serve`` adds for the hardened server (kept out of the CLI module)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from serving.http_guard import TRUSTED_PROXIES_ENV
from serving.throttle import STATE_DIR_ENV


def hardening_env(state_dir: Path | None, trusted_proxies: str) -> dict[str, str]:
    """``$RADAR_STATE_DIR`` (made if absent) and the trusted proxies for the workers.

    Without ``state_dir`` a new private folder is made, so the workers of this server (and
    no other) share their wrong-key counts.
    """
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="radar-serve-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    proxies = ",".join(p.strip() for p in trusted_proxies.split(",") if p.strip())
    return {
        STATE_DIR_ENV: str(state_dir.resolve()),
        TRUSTED_PROXIES_ENV: proxies,
        "FORWARDED_ALLOW_IPS": proxies,
    }
