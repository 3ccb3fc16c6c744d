"""Run the ``radar`` command in a fresh process, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without MLflow state of this process, with the venv's bin on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return env | extra


def radar(*args: str, cwd: Path, env: dict[str, str] | None = None):
    """``radar ARGS`` in ``cwd``; returns the completed process (stdout, stderr as text)."""
    return subprocess.run(
        [sys.executable, "-m", "radar.cli", *args],
        env=env or clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
