"""Bounded soak: a real `radar serve` under a paced mix of good calls, unknown URLs and bad bodies.

Target (faults issue): 10 minutes at 200 requests/s, with random unknown URLs and bad bodies
mixed in, gives no 5xx, and the server's memory grows by under 5% from start to end. Printed:
requests by status, 5xx and transport errors, p50/p99 of the good calls, the server's memory
(sum of RSS of the server and its workers) after a warm-up and at the end, and the size of
``/metrics`` (which must not grow with the number of distinct URLs).

The load is paced (open loop, an async httpx client): each request of the mix is one of

- 60% score one random account (``/v1/score/accounts``), 5% a bulk call of 50 ids;
- 15% a random unknown URL (``/x<random>``, ``/ui/accounts/X<random>``, ``/v1/<random>``);
- 20% a bad body: malformed JSON, unknown feature, empty id list, text/plain, too many ids,
  an overlong id, a what-if out of range.

    .venv/bin/python benchmarks/bench_soak.py --features DIR [--tracking-uri URI]
        [--rate 200] [--minutes 10]

Without --tracking-uri a model is trained on --features first (outside the timings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from common import wait_ready  # benchmarks/common.py

WARMUP_S = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mib(pid: int) -> float:
    """RSS of ``pid`` and all its descendants, MiB (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def requests_mix(ids: list[str]):
    """One request of the mix: (kind, method, path, kwargs)."""
    r = random.random()
    rid = uuid.uuid4().hex
    if r < 0.60:
        return "good", "POST", "/v1/score/accounts", {"json": {"account_ids": [random.choice(ids)]}}
    if r < 0.65:
        return "good", "POST", "/v1/score/bulk", {"json": {"account_ids": random.sample(ids, 50)}}
    if r < 0.80:
        path = random.choice([f"/x{rid}", f"/ui/accounts/X{rid}", f"/v1/{rid}"])
        return "unknown", "GET", path, {}
    bad = random.choice(
        [
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            {"json": {"snapshots": [{"account_id": "x", "features": {"seat_utilisaton": 1}}]}},
            {"json": {"account_ids": []}},
            {"content": b'{"account_ids": ["A"]}', "headers": {"content-type": "text/plain"}},
            {"json": {"account_ids": ids[:1] * 101}},
            {"json": {"account_ids": ["A" * 5000]}},
            {"json": {"snapshots": [{"account_id": "x", "features": {"seats": -3}}]}},
        ]
    )
    path = (
        "/v1/score/snapshots"
        if "snapshots" in json.dumps(bad.get("json", {}))
        else ("/v1/score/accounts")
    )
    return "bad", "POST", path, bad


async def soak(url: str, ids: list[str], rate: float, seconds: float) -> dict:
    """Send the mix at ``rate`` requests/s for ``seconds``; statuses and good latencies."""
    statuses: Counter = Counter()
    by_kind: Counter = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one() -> None:
            kind, method, path, kwargs = requests_mix(ids)
            t0 = time.perf_counter()
            try:
                resp = await client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            statuses[resp.status_code] += 1
            by_kind[(kind, resp.status_code)] += 1
            if kind == "good" and resp.status_code == 200:
                latencies.append((time.perf_counter() - t0) * 1e3)
            if resp.status_code >= 400 and not path.startswith("/ui/"):  # pages answer HTML
                assert resp.headers.get("content-type") == "application/problem+json", resp.text

        tasks: set[asyncio.Task] = set()
        start = time.perf_counter()
        n = 0
        while (now := time.perf_counter() - start) < seconds:
            due = n / rate
            if due > now:
                await asyncio.sleep(due - now)
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 100 else [float("nan")] * 99
    return {
        "sent": n,
        "statuses": dict(sorted(statuses.items())),
        "by_kind": {f"{k} {s}": v for (k, s), v in sorted(by_kind.items())},
        "server_errors": sum(v for s, v in statuses.items() if s >= 500),
        "transport_errors": len(errors),
        "first_errors": errors[:3],
        "p50_ms": q[49],
        "p99_ms": q[98],
        "rate": n / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--tracking-uri", default=None, help="a store with @champion")
    parser.add_argument("--rate", type=float, default=200, help="requests/s")
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()

    from features.store import SnapshotStore

    with tempfile.TemporaryDirectory() as tmp:
        uri = args.tracking_uri
        if uri is None:
            from training.config import TrainConfig
            from training.registry import register
            from training.train import from_snapshots, train

            uri = f"sqlite:///{tmp}/mlflow.db"
            cfg = TrainConfig()
            data = from_snapshots(args.features, cfg)
            register(train(data, cfg), data, uri=uri, promote=True)
        frame = SnapshotStore.open(args.features).snapshots(["account_id", "as_of"])
        ids = frame.loc[frame["as_of"] == frame["as_of"].max(), "account_id"].tolist()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RADAR_"))}
        env["BENTOML_HOME"] = f"{tmp}/bentoml"
        cmd = [sys.executable, "-m", "radar.cli", "serve", "--features", str(args.features)]
        cmd += ["--port", str(port), "--tracking-uri", uri]
        log = Path(tmp) / "server.log"
        server = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, server, log)
            asyncio.run(soak(url, ids, args.rate, WARMUP_S))  # warm-up: caches, pools, metrics
            rss0 = tree_rss_mib(server.pid)
            metrics0 = len(httpx.get(f"{url}/metrics").content)
            result = asyncio.run(soak(url, ids, args.rate, args.minutes * 60))
            rss1 = tree_rss_mib(server.pid)
            metrics1 = len(httpx.get(f"{url}/metrics").content)
        finally:
            server.terminate()
            server.wait(30)
        tracebacks = log.read_text().count("Traceback")
    growth = (rss1 - rss0) / rss0 * 100
    print(
        f"soak: {args.minutes:g} min at {result['rate']:.0f} requests/s ({result['sent']:,} sent)"
    )
    print(f"statuses: {result['statuses']}")
    print(f"by kind: {result['by_kind']}")
    print(
        f"5xx: {result['server_errors']}, transport errors: {result['transport_errors']} "
        f"{result['first_errors']}, tracebacks in the server log: {tracebacks}"
    )
    print(f"good calls: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")
    print(
        f"server memory: {rss0:.0f} MiB after warm-up -> {rss1:.0f} MiB at the end ({growth:+.1f}%)"
    )
    print(f"/metrics: {metrics0 / 1024:.0f} KB -> {metrics1 / 1024:.0f} KB")
    ok = result["server_errors"] == 0 and growth < 5 and tracebacks == 0
    print("target met" if ok else "TARGET MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
