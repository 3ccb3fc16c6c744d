"""What several benchmarks share: running the `radar` command, generating their data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def radar(*args: str) -> None:
    """``radar ARGS`` in a fresh process; raises if it fails."""
    subprocess.run([sys.executable, "-m", "radar.cli", *args], check=True, capture_output=True)


def generate(out: Path, accounts: int, months: int) -> Path:
    """The synthetic dataset the benchmarks time on (seed 1), written to ``out``."""
    radar(
        "generate",
        "--accounts",
        str(accounts),
        "--months",
        str(months),
        "--seed",
        "1",
        "--out",
        str(out),
    )
    return out


def features_of(tmp: Path, accounts: int, months: int) -> Path:
    """`radar features` of the benchmarks' synthetic dataset, both written under ``tmp``."""
    data = generate(Path(tmp) / "data", accounts, months)
    out = Path(tmp) / "features"
    radar("features", "--data", str(data), "--out", str(out))
    return out


def wait_ready(url: str, server: subprocess.Popen, log: Path | None = None) -> None:
    """Wait up to 5 minutes for ``/readyz`` of a started server; exit with its log if it dies."""
    import time

    import httpx

    deadline = time.time() + 300
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.time() > deadline or server.poll() is not None:
            tail = log.read_text()[-3000:] if log else "(no log kept)"
            sys.exit(f"server not ready:\n{tail}")
        time.sleep(0.5)
