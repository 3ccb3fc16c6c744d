"""Serving speed: a real `radar serve` on loopback against the same work in-process.

Targets (serving issue): single-account score with drivers p50 under 10 ms and p99 under 30 ms
at 16 concurrent clients, at least 300 requests per second, bulk scoring with drivers at least
2,000 accounts per second. The model is trained on --features with the default configuration
and registered in a throw-away MLflow store first (outside the timings).

The load comes from wrk (C, Debian package `wrk`; `make bench` installs it), so the client
takes little of the two cores. Single-account requests ask for a random account each:

- 1 client, closed loop (send, wait, send);
- 16 clients, closed loop: the most requests per second the server answers;
- 16 clients paced at --rate requests per second in all (each waits a random, exponentially
  distributed pause between requests, tuned until the rate is reached): latency at the
  target load.

Bulk: --bulk accounts per call, from 1 caller, then from 2 callers at once (one per worker).
Each load is run --repeats times: the median of each figure is printed, with the range of p99
(the figure the machine's noise moves most). Latency percentiles are wrk's. The in-process
figures are the service methods themselves (same scoring and JSON) called directly, the ratio
being the serving overhead.

    .venv/bin/python benchmarks/bench_serve.py --features DIR [--rate 300] [--seconds 15]
        [--repeats 3] [--reference]

With --reference, a no-op BentoML service (benchmarks/noop_service.py: 2 workers, the same
request, a recorded answer of the same size) runs beside it, and 16-client closed-loop runs
alternate between the two: both throughputs and their ratio are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
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
from common import wait_ready  # benchmarks/common.py

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
pause_ms = tonumber(os.getenv("PAUSE_MS") or "0")
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format(nil, "/v1/score/accounts", nil, '{"account_ids": ["' .. id .. '"]}')
end
if pause_ms > 0 then
  delay = function() return -pause_ms * math.log(1 - math.random()) end
end
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, script: Path, clients: int, seconds: int, pause_ms: float = 0) -> dict:
    """One wrk run: p50 and p99 in ms, requests per second; fails on any non-2xx answer."""
    out = subprocess.run(
        ["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{seconds}s", "--latency"]
        + ["-s", str(script), url],
        env={**os.environ, "PAUSE_MS": str(pause_ms)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Non-2xx" not in out and "Socket errors" not in out, out

    def ms(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m[1]) * UNITS[m[2]]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    return {"p50": ms("50"), "p99": ms("99"), "rps": rps}


def peak_rss(pid: int) -> int:
    """Peak resident memory of a process and its children (the workers), in bytes."""
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    total = 0
    for p in procs:
        status = Path(f"/proc/{p.pid}/status").read_text()
        total += int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) * 1024
    return total


def median_of(runs: list[dict]) -> dict:
    """Median of each figure over repeated wrk runs, and the range of p99."""
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return out | {"p99_range": (min(r["p99"] for r in runs), max(r["p99"] for r in runs))}


def show(name: str, r: dict) -> None:
    lo, hi = r["p99_range"]
    print(
        f"  {name:<34} p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms ({lo:.1f}-{hi:.1f})  "
        f"{r['rps']:7,.0f} req/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=300, help="paced load, requests/s")
    parser.add_argument("--seconds", type=int, default=15, help="length of each wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="wrk runs per load")
    parser.add_argument("--bulk", type=int, default=1000, help="accounts per bulk call")
    parser.add_argument(
        "--reference", action="store_true", help="also a no-op BentoML service, side by side"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (`make bench` does it)")

    from features.store import SnapshotStore
    from training.config import TrainConfig
    from training.promotion import promote
    from training.tracking import log_training, rows_of_test_window
    from training.train import from_snapshots, train

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        cfg = TrainConfig()
        data = from_snapshots(args.features, cfg)
        result = train(data, cfg)
        log_training(result, data, uri=uri)
        promote("renewal-radar", rows_of_test_window)
        frame = SnapshotStore.open(args.features).snapshots()
        ids = frame.loc[frame["as_of"] == frame["as_of"].max(), "account_id"].tolist()
        (Path(tmp) / "ids.txt").write_text("\n".join(ids))
        script = Path(tmp) / "score.lua"
        script.write_text(LUA % {"ids": Path(tmp) / "ids.txt"})

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["BENTOML_HOME"] = f"{tmp}/bentoml"
        cmd = [sys.executable, "-m", "radar.cli", "serve", "--features", str(args.features)]
        cmd += ["--port", str(port), "--tracking-uri", uri]
        server = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, server)
            wrk(url, script, 4, 3)  # warm-up

            def repeated(clients: int, pause_ms: float = 0) -> dict:
                runs = [
                    wrk(url, script, clients, args.seconds, pause_ms) for _ in range(args.repeats)
                ]
                return median_of(runs)

            one = repeated(1)
            full = repeated(16)
            if args.reference:  # the framework's own limit, alternated with radar's
                from noop_reference import compare

                ref = compare(
                    url,
                    ids,
                    Path(tmp),
                    free_port(),
                    lambda u, c: wrk(u, script, c, args.seconds),
                    args.repeats,
                )
                print(
                    f"16 clients, closed loop, alternated ({ref['bytes']:,}-byte answers): "
                    f"radar serve {ref['radar']['rps']:,.0f} req/s (p50 {ref['radar']['p50']:.1f} "
                    f"ms), no-op BentoML {ref['noop']['rps']:,.0f} req/s (p50 "
                    f"{ref['noop']['p50']:.1f} ms): ratio {ref['ratio']:.2f}"
                )
            # A client's cycle is its answer time plus its pause: pace to --rate in all,
            # correcting the pause by the answer time seen under that load (up to 3 times).
            pause = max(16 / args.rate * 1000 - one["p50"], 0.0)
            for _ in range(3):
                trial = wrk(url, script, 16, args.seconds, pause)
                if trial["rps"] >= 0.98 * args.rate or pause == 0:
                    break
                pause = max(pause - (16 / trial["rps"] - 16 / args.rate) * 1000, 0.0)
            paced = repeated(16, pause)

            def bulk_call(k: int) -> float:
                chunk = [ids[(k * args.bulk + i) % len(ids)] for i in range(args.bulk)]
                with httpx.Client(base_url=url, timeout=300) as c:
                    t0 = time.perf_counter()
                    r = c.post("/v1/score/bulk", json={"account_ids": chunk})
                    assert r.status_code == 200, r.text
                    return time.perf_counter() - t0

            bulk_times = [bulk_call(k) for k in range(5)]
            with ThreadPoolExecutor(2) as pool:
                t0 = time.perf_counter()
                list(pool.map(bulk_call, range(8)))
                two_callers = 8 * args.bulk / (time.perf_counter() - t0)
            peak_gib = peak_rss(server.pid) / 2**30
        finally:
            server.terminate()
            server.wait(30)

        # The same work in-process: the service's own methods, response serialised to JSON.
        os.environ.update(RADAR_FEATURES=str(args.features), MLFLOW_TRACKING_URI=uri)
        from serving.service import RenewalRadar

        svc = RenewalRadar.inner()
        while svc.state is None:  # the model loads in a thread (live at once, ready after)
            if svc.error:
                raise SystemExit(f"in-process service not ready: {svc.error}")
            time.sleep(0.2)
        loop = asyncio.new_event_loop()
        inproc = []
        # The endpoints take BentoML's request context: a stand-in with what they read.
        from types import SimpleNamespace

        ctx = SimpleNamespace(
            request=SimpleNamespace(headers={}), response=SimpleNamespace(metadata={})
        )
        for i in range(500):
            t0 = time.perf_counter()
            loop.run_until_complete(svc.score_accounts([ids[i * 7919 % len(ids)]], ctx))
            inproc.append((time.perf_counter() - t0) * 1000)
        t_in = []
        for k in range(3):
            chunk = [ids[(k * args.bulk + i) % len(ids)] for i in range(args.bulk)]
            t0 = time.perf_counter()
            svc.score_bulk(chunk, ctx)
            t_in.append(time.perf_counter() - t0)

    in50 = float(np.percentile(inproc, 50))
    print(
        f"{len(ids):,} accounts served; single-account score with top-5 drivers x 4 heads; "
        f"server peak memory {peak_gib:.2f} GiB (all processes)"
    )
    show("1 client", one)
    show("16 clients, as fast as answered", full)
    show(f"16 clients, paced at {args.rate:.0f} req/s", paced)
    print(
        f"  in-process, same work: p50 {in50:.1f} ms, p99 {np.percentile(inproc, 99):.1f} ms "
        f"-> serving overhead {one['p50'] / in50:.1f}x at 1 client"
    )
    bulk = args.bulk / statistics.median(bulk_times)
    inproc_bulk = args.bulk / statistics.median(t_in)
    print(
        f"bulk, {args.bulk} accounts per call: {bulk:,.0f} accounts/s from 1 caller, "
        f"{two_callers:,.0f} from 2 callers; in-process {inproc_bulk:,.0f} "
        f"({inproc_bulk / bulk:.1f}x the 1-caller rate)"
    )


if __name__ == "__main__":
    main()
