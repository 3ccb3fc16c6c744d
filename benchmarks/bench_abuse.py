"""Abuse: slow clients without a key against a keyed caller, and key guessing across workers.

A real `radar serve` (2 workers, an API key) on loopback, its model trained on --features in
a throw-away MLflow store first (outside the timings). Two measurements:

1. **Slow bodies.** --slow connections (up to 500) each send the headers of a POST with a
   1,000-byte Content-Length and no key, then one body byte every second, for --seconds.
   Meanwhile a keyed client asks for one account at --rate requests per second (10), each
   on a new connection (so it lands on either worker). Printed: the keyed answers' success
   rate (target 100%), p50 and p99, and how the slow connections were answered (401 from
   the headers, then closed at the body deadline).
2. **Wrong keys across workers.** Wrong keys, each on a new connection (so both workers
   get some), until the first 429: its position against the documented 21st
   (``serving.auth.MAX_FAILURES`` + 1).

    .venv/bin/python benchmarks/bench_abuse.py --features DIR [--slow 200] [--seconds 20]
        [--rate 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import wait_ready  # benchmarks/common.py

KEY = "bench-abuse-key"
HEAD = (
    b"POST /v1/score/accounts HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slow_clients(port: int, n: int, stop: threading.Event, seen: dict[str, int]) -> None:
    """Open ``n`` connections that send headers and then a byte a second until ``stop``."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(HEAD)
        s.setblocking(False)
        socks.append(s)
    answers: dict[int, bytes] = {}
    while not stop.wait(1.0):
        for i, s in enumerate(socks):
            try:
                s.send(b" ")
            except OSError:
                answers.setdefault(i, b"closed")
            try:
                data = s.recv(4096)
                if data and i not in answers:
                    answers[i] = data
                elif not data:
                    answers.setdefault(i, b"closed")
            except BlockingIOError:
                pass
            except OSError:
                answers.setdefault(i, b"closed")
    for data in answers.values():
        kind = data.split(b"\r\n", 1)[0].decode(errors="replace")[:12] or "closed"
        seen[kind] = seen.get(kind, 0) + 1
    seen["held to the end"] = n - len(answers)
    for s in socks:
        s.close()


def keyed_calls(url: str, ids: list[str], rate: float, seconds: float) -> tuple[list, list]:
    """One call every 1/rate s for ``seconds``, each on a new connection: times and statuses."""
    times, codes = [], []
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            r = httpx.post(
                f"{url}/v1/score/accounts",
                json={"account_ids": [ids[k % len(ids)]]},
                headers={"X-API-Key": KEY},
                timeout=10,
            )
            codes.append(r.status_code)
        except httpx.HTTPError as exc:
            codes.append(type(exc).__name__)
        times.append((time.perf_counter() - t0) * 1000)
        k += 1
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))
    return times, codes


def first_429(url: str, limit: int = 200) -> int | None:
    """The position of the first 429 among wrong keys sent on new connections."""
    for i in range(1, limit + 1):
        r = httpx.get(f"{url}/v1/model", headers={"X-API-Key": f"wrong-{i}"}, timeout=10)
        if r.status_code == 429:
            return i
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--slow", type=int, default=200, help="slow-body connections (<= 500)")
    parser.add_argument("--seconds", type=float, default=20, help="length of the slow phase")
    parser.add_argument("--rate", type=float, default=10, help="keyed calls per second")
    args = parser.parse_args()

    from features.store import SnapshotStore
    from serving.auth import MAX_FAILURES
    from training.config import TrainConfig
    from training.promotion import promote
    from training.tracking import log_training, rows_of_test_window
    from training.train import from_snapshots, train

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        cfg = TrainConfig.from_yaml(**{"lightgbm.max_trees": 100, "min_positives": 10})
        data = from_snapshots(args.features, cfg)
        log_training(train(data, cfg), data, uri=uri)
        promote("renewal-radar", rows_of_test_window)
        frame = SnapshotStore.open(args.features).snapshots(["account_id", "as_of"])
        ids = frame.loc[frame["as_of"] == frame["as_of"].max(), "account_id"].tolist()

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["BENTOML_HOME"] = f"{tmp}/bentoml"
        cmd = [sys.executable, "-m", "radar.cli", "serve", "--features", str(args.features)]
        cmd += ["--port", str(port), "--tracking-uri", uri, "--api-key", KEY, "--workers", "2"]
        log = Path(tmp) / "server.log"
        server = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, server, log)
            base_times, base_codes = keyed_calls(url, ids, args.rate, 3)  # no abuse yet
            stop, seen = threading.Event(), {}
            holder = threading.Thread(target=slow_clients, args=(port, args.slow, stop, seen))
            holder.start()
            time.sleep(2)  # every slow connection open
            times, codes = keyed_calls(url, ids, args.rate, args.seconds)
            stop.set()
            holder.join()
            position = first_429(url)
        finally:
            server.terminate()
            server.wait(30)

    ok = sum(c == 200 for c in codes)
    p50 = statistics.median(times)
    p99 = sorted(times)[max(int(len(times) * 0.99) - 1, 0)]
    print(f"{len(ids):,} accounts served by 2 workers")
    print(
        f"keyed client alone: {sum(c == 200 for c in base_codes)}/{len(base_codes)} answered "
        f"200, p50 {statistics.median(base_times):.1f} ms"
    )
    print(
        f"with {args.slow} slow-body connections (no key) for {args.seconds:.0f} s: keyed client "
        f"{ok}/{len(codes)} answered 200 ({ok / len(codes):.1%}), p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms; other answers: {sorted(set(map(str, codes)) - {'200'}) or 'none'}"
    )
    print(f"  slow connections: {dict(sorted(seen.items()))}")
    print(
        f"wrong keys on new connections across 2 workers: first 429 at try {position} "
        f"(documented: {MAX_FAILURES + 1})"
    )


if __name__ == "__main__":
    main()
