"""Shared fixtures of the service tests: a registry, and a real server in a subprocess."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from scoring.batch import score_dataset
from tests.cli import clean_env
from training.registry import ScoringModel

KEY = "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(features: Path, registry: str, log: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "radar.cli",
        "serve",
        "--features",
        str(features),
        "--port",
        str(port),
        "--tracking-uri",
        registry,
        "--workers",  # one is enough to test with, and lighter on the test machine
        "1",
        *extra,
    ]
    env = clean_env(BENTOML_HOME=str(log.parent / "bentoml"))
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def start_cmd(args: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """``radar ARGS --port P`` on a free port, output to ``log``; the process and its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "radar.cli", *args, "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def wait_live(proc, url: str, log: Path, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/livez", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"server not live after {timeout} s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def served_dirs(tmp_path_factory) -> dict[str, Path]:
    """The server's prediction log (what it scores by id), monitor and effects folders."""
    root = tmp_path_factory.mktemp("served")
    return {"log": root / "predictions", "monitor": root / "monitor", "effects": root / "effects"}


@pytest.fixture(scope="session")
def server(long_features, registry, served_dirs, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc, url = start(
        long_features,
        registry,
        log,
        "--api-key",
        KEY,
        "--max-request-bytes",
        "200000",
        "--prediction-log",
        str(served_dirs["log"]),
        "--monitor",
        str(served_dirs["monitor"]),
        "--effects",
        str(served_dirs["effects"]),
    )
    try:
        wait_live(proc, url, log)
        deadline = time.time() + 60
        while httpx.get(f"{url}/readyz").status_code != 200:
            assert time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def post(url: str, path: str, body, key: str | None = KEY) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=60)


@pytest.fixture(scope="session")
def reference(trained, long_data, long_features):
    """`radar score`'s records for the date the service serves."""
    as_of = json.loads((long_features / "manifest.json").read_text())["as_of_dates"][-1]
    model = ScoringModel(trained[1].bundle, uri="x", name="renewal-radar", version="1")
    return score_dataset(long_data, as_of, model).records.set_index("account_id")
