"""Account brief speed: one brief through the service, and `radar brief --all` into a folder.

Targets (account-brief issue): a brief for one account renders in under 1 s through the
service; `radar brief` for all accounts of `make demo` into a folder in under 2 minutes.

Uses the demo's outputs (`make demo`: build/demo/data, features, mlflow.db): a real
`radar serve` on loopback, asked for --requests briefs of random accounts (page and JSON, after
one first call that reads the raw tables), and `radar brief --all` run --runs times, each a
fresh process (wall time, CPU time and peak memory of the child).

    .venv/bin/python benchmarks/bench_brief.py [--demo build/demo] [--requests 40] [--runs 2]
        [--format html] [--skip-service] (--runs 0: the service only)
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RADAR = [sys.executable, "-m", "radar.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service(demo: Path, ids: list[str], requests: int) -> dict[str, float]:
    """Seconds per brief through a real server: the first call, then median and p95."""
    port = free_port()
    uri = f"sqlite:///{(demo / 'mlflow.db').resolve()}"
    log_path = Path(tempfile.mkdtemp(prefix="bench-brief-")) / "server.log"
    log = log_path.open("w")  # noqa: SIM115 (the server writes to it while we wait)
    cmd = [*RADAR, "serve", "--features", str(demo / "features"), "--port", str(port),
           "--tracking-uri", uri, "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None and time.time() < deadline, log_path.read_text()[-2000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        client = httpx.Client(timeout=120)
        t = time.perf_counter()
        assert client.get(f"{url}/v1/accounts/{ids[0]}/brief").status_code == 200
        first = time.perf_counter() - t
        out = {"first call (reads the raw tables)": first}
        for name, path in (("page", "/ui/accounts/{}/brief"), ("json", "/v1/accounts/{}/brief")):
            times = []
            for a in random.Random(1).sample(ids, min(requests, len(ids))):
                t = time.perf_counter()
                r = client.get(url + path.format(a))
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text[:500]
            out[f"{name} first"] = times[0]
            times.sort()
            out[f"{name} median"] = statistics.median(times)
            out[f"{name} p95"] = times[int(0.95 * (len(times) - 1))]
            out[f"{name} max"] = times[-1]
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def batch(demo: Path, runs: int, fmt: str) -> list[dict[str, float]]:
    """`radar brief --all` for every account of the demo, each run a fresh process."""
    uri = f"sqlite:///{(demo / 'mlflow.db').resolve()}"
    results = []
    for _ in range(runs):
        out = Path(tempfile.mkdtemp(prefix="briefs-"))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(
            [*RADAR, "brief", "--data", str(demo / "data"), "--all", "--format", fmt,
             "--out", str(out / "briefs"), "--tracking-uri", uri],
            check=True, cwd=ROOT, capture_output=True,
        )  # fmt: skip
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        files = list((out / "briefs").iterdir())
        results.append(
            {
                "wall s": wall,
                "cpu s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                "peak GiB": after.ru_maxrss / 2**20,
                "briefs": len(files),
                "MiB": sum(f.stat().st_size for f in files) / 2**20,
            }
        )
        shutil.rmtree(out)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", type=Path, default=ROOT / "build" / "demo")
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--format", default="html", choices=["html", "md", "pdf"])
    ap.add_argument("--skip-service", action="store_true")
    args = ap.parse_args()
    scores = pd.read_parquet(args.demo / "scores.parquet", columns=["account_id"])
    ids = scores["account_id"].tolist()
    if not args.skip_service:
        for k, v in service(args.demo, ids, args.requests).items():
            print(f"service brief, {k}: {v * 1000:.0f} ms")
    if args.runs == 0:
        return
    runs = batch(args.demo, args.runs, args.format)
    for r in runs:
        print("radar brief --all: " + ", ".join(f"{k} {v:,.2f}" for k, v in r.items()))
    walls = [r["wall s"] for r in runs]
    print(
        f"radar brief --all ({runs[0]['briefs']:,} accounts, {args.format}): median "
        f"{statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f})"
    )


if __name__ == "__main__":
    main()
