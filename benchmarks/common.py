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
