"""Serving speed: a real `radar serve` on loopback against the same work in-process.

Targets (serving issue): single-account score with drivers p50 under 10 ms and p99 under 30 ms
at 16 concurrent clients, at least 300 requests per second, bulk scoring with drivers at least
2,000 accounts per second. The model is trained on --features with the default configuration
and registered in a throw-away MLflow store first (outside the timings).

    .venv/bin/python benchmarks/bench_serve.py --features DIR [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(ms: list[float]) -> str:
    return f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms"


def hammer(url: str, ids: list[str], clients: int, total: int) -> tuple[list[float], float]:
    """``total`` single-account requests from ``clients`` threads; latencies (ms), seconds."""
    per = total // clients

    def worker(k: int) -> list[float]:
        out = []
        with httpx.Client(base_url=url, timeout=30) as c:
            for i in range(per):
                body = {"account_ids": [ids[(k * per + i) % len(ids)]]}
                t0 = time.perf_counter()
                r = c.post("/v1/score/accounts", json=body)
                out.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        lat = [x for part in pool.map(worker, range(clients)) for x in part]
    return lat, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--bulk", type=int, default=1000, help="accounts per bulk call")
    args = parser.parse_args()

    from serving.scoring import ScoringModel, score_snapshots
    from training.config import TrainConfig
    from training.data import load_snapshots
    from training.tracking import log_training, promote, rows_of_test_window
    from training.train import from_snapshots, train

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        cfg = TrainConfig()
        data = from_snapshots(args.features, cfg)
        result = train(data, cfg)
        log_training(result, data, uri=uri)
        promote("renewal-radar", rows_of_test_window)
        frame = load_snapshots(args.features).frame
        latest = frame[frame["as_of"] == frame["as_of"].max()]
        ids = latest["account_id"].tolist()

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["BENTOML_HOME"] = f"{tmp}/bentoml"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "radar.cli",
                "serve",
                "--features",
                str(args.features),
                "--port",
                str(port),
                "--tracking-uri",
                uri,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 300
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.time() < deadline and server.poll() is None, "server did not start"
                time.sleep(0.5)
            hammer(url, ids, 4, 200)  # warm-up
            lat1, _ = hammer(url, ids, 1, min(500, args.requests))
            lat16, secs = hammer(url, ids, 16, args.requests)
            bulk_times = []
            with httpx.Client(base_url=url, timeout=300) as c:
                for k in range(5):
                    chunk = [ids[(k * args.bulk + i) % len(ids)] for i in range(args.bulk)]
                    t0 = time.perf_counter()
                    r = c.post("/v1/score/bulk", json={"account_ids": chunk})
                    bulk_times.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text
        finally:
            server.terminate()
            server.wait(30)

        model = ScoringModel(result.bundle, uri="in-process")
        cut = 0.1
        one = [latest.iloc[[i % len(latest)]] for i in range(300)]
        inproc = []
        for row in one:
            t0 = time.perf_counter()
            score_snapshots(row, model, risk_cut=cut)
            inproc.append((time.perf_counter() - t0) * 1000)
        rows = latest.head(args.bulk)
        t_in = []
        for _ in range(3):
            t0 = time.perf_counter()
            score_snapshots(rows, model, risk_cut=cut)
            t_in.append(time.perf_counter() - t0)

    print(f"{len(ids):,} accounts served; single-account score with top-5 drivers x 4 heads")
    print(f"  1 client:   {percentiles(lat1)}")
    print(f"  16 clients: {percentiles(lat16)}, {args.requests / secs:,.0f} requests/s")
    print(
        f"  in-process, same work: p50 {np.percentile(inproc, 50):.1f} ms -> serving overhead "
        f"{np.percentile(lat1, 50) / np.percentile(inproc, 50):.1f}x at 1 client"
    )
    bulk = statistics.median(bulk_times)
    print(
        f"bulk, {args.bulk} accounts per call: {args.bulk / bulk:,.0f} accounts/s served, "
        f"{args.bulk / statistics.median(t_in):,.0f} in-process "
        f"({bulk / statistics.median(t_in):.1f}x)"
    )


if __name__ == "__main__":
    main()
