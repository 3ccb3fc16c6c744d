"""`radar serve` against a no-op BentoML service, side by side (`bench_serve.py --reference`).

Both run at once, 2 workers each; wrk (16 connections, closed loop) alternates between them
for --repeats rounds, so the machine's load falls on both alike. The ratio (radar's requests
per second over the no-op's) is how near serving is to its framework's limit.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from common import wait_ready  # benchmarks/common.py

HERE = Path(__file__).resolve().parent


def compare(
    url: str,
    ids: list[str],
    tmp: Path,
    port: int,
    run: Callable[[str, int], dict],
    repeats: int,
) -> dict:
    """Medians of radar's and the no-op's 16-client runs, alternated, and their ratio."""
    body = httpx.post(f"{url}/v1/score/accounts", json={"account_ids": ids[:1]}, timeout=30)
    body.raise_for_status()
    (tmp / "answer.json").write_bytes(body.content)
    env = {**os.environ, "NOOP_BODY": str(tmp / "answer.json"), "BENTOML_DO_NOT_TRACK": "true"}
    env["BENTOML_HOME"] = str(tmp / "bentoml-noop")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    cmd = [bentoml, "serve", "noop_service:Noop", "--working-dir", str(HERE)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log = tmp / "noop.log"
    noop = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    noop_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(noop_url, noop, log)
        run(noop_url, 4)  # warm-up
        radar_runs, noop_runs = [], []
        for _ in range(repeats):
            radar_runs.append(run(url, 16))
            noop_runs.append(run(noop_url, 16))
    finally:
        noop.terminate()
        noop.wait(30)
    r = {k: statistics.median(x[k] for x in radar_runs) for k in ("rps", "p50")}
    n = {k: statistics.median(x[k] for x in noop_runs) for k in ("rps", "p50")}
    return {"radar": r, "noop": n, "ratio": r["rps"] / n["rps"], "bytes": len(body.content)}
