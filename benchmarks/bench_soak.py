"""Bounded soak: a real `radar serve` under a paced mix of good calls, unknown URLs and bad bodies.

Target (faults issue): 10 minutes at 200 requests/s, with random unknown URLs and bad bodies
mixed in, gives no 5xx, and the server's memory grows by under 5% from start to end. Printed:
answers by status and content type, 5xx and transport errors, p50/p99 of all answers (wrk's)
and of good calls alone (a probe), the server's memory (sum of RSS of the server and its
workers) after a warm-up and after each minute, and the size of
``/metrics`` (which must not grow with the number of distinct URLs).

The load comes from wrk (C, Debian package `wrk`; `make bench` installs it), so the client
takes little of the two cores (a Python client saturated a core at 200 requests/s and the
rate it reached was its own, not the server's). 16 connections, each waiting a random,
exponentially distributed pause between requests; the soak is a row of one-minute wrk runs,
the pause corrected after each by the rate it reached (the server speeds up as it warms).
Each request of the mix (a Lua script) is one of

- 60% score one random account (``/v1/score/accounts``), 5% a bulk call of 50 ids;
- 15% a random unknown URL (``/x<random>``, ``/ui/accounts/X<random>``, ``/v1/<random>``);
- 20% a bad body: malformed JSON, unknown feature, empty id list, text/plain, too many ids,
  an overlong id, a what-if out of range.

Every answer of 400 or more must be ``application/problem+json`` except the pages' HTML 404;
wrk counts them by status and content type. A probe beside wrk scores one random account
every 0.25 s and times it: the latency of good calls under the mixed load.

    .venv/bin/python benchmarks/bench_soak.py --features DIR [--tracking-uri URI]
        [--rate 200] [--minutes 10]

Without --tracking-uri a model is trained on --features first (outside the timings).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from common import wait_ready  # benchmarks/common.py

WARMUP_S = 10
CLIENTS = 16

# wrk's Lua: the mix, and counts of answers by status and content type gathered from every
# thread in done() (each wrk thread has its own Lua state; setup() keeps them for done()).
LUA = r"""
local threads, counter = {}, 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter * 7919 + os.time())
  table.insert(threads, thread)
end
ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
pause_ms = tonumber(os.getenv("PAUSE_MS") or "0")
function init(args)
  math.randomseed(seed)
  counts = {}
end
local function hex()
  return string.format("%%08x%%08x", math.random(0, 2147483646), math.random(0, 2147483646))
end
local function json_post(path, body, ctype)
  return wrk.format("POST", path, {["Content-Type"] = ctype or "application/json"}, body)
end
local function ids_json(n)
  local picked = {}
  for i = 1, n do picked[i] = '"' .. ids[math.random(#ids)] .. '"' end
  return '{"account_ids": [' .. table.concat(picked, ",") .. ']}'
end
local bad = {
  function() return json_post("/v1/score/accounts", "{not json") end,
  function() return json_post("/v1/score/snapshots",
    '{"snapshots": [{"account_id": "x", "features": {"seat_utilisaton": 1}}]}') end,
  function() return json_post("/v1/score/accounts", '{"account_ids": []}') end,
  function() return json_post("/v1/score/accounts", '{"account_ids": ["A"]}', "text/plain") end,
  function()
    local many = {}
    for i = 1, 101 do many[i] = '"' .. ids[1] .. '"' end
    return json_post("/v1/score/accounts", '{"account_ids": [' .. table.concat(many, ",") .. ']}')
  end,
  function() return json_post("/v1/score/accounts",
    '{"account_ids": ["' .. string.rep("A", 5000) .. '"]}') end,
  function() return json_post("/v1/score/snapshots",
    '{"snapshots": [{"account_id": "x", "features": {"seats": -3}}]}') end,
}
local unknown = {"/x", "/ui/accounts/X", "/v1/"}
request = function()
  local r = math.random()
  if r < 0.60 then return json_post("/v1/score/accounts", ids_json(1)) end
  if r < 0.65 then return json_post("/v1/score/bulk", ids_json(50)) end
  if r < 0.80 then
    return wrk.format("GET", unknown[math.random(#unknown)] .. hex(), {}, nil)
  end
  return bad[math.random(#bad)]()
end
response = function(status, headers, body)
  local ctype = "-"
  for k, v in pairs(headers) do
    if string.lower(k) == "content-type" then ctype = string.match(v, "^[^;]+") end
  end
  local key = status .. " " .. ctype
  counts[key] = (counts[key] or 0) + 1
end
if pause_ms > 0 then
  delay = function() return -pause_ms * math.log(1 - math.random()) end
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("COUNT %%s\t%%d\n", k, v)) end
  local e = summary.errors
  io.write(string.format("TRANSPORT %%d\n", e.connect + e.read + e.write + e.timeout))
  io.write(string.format("REQUESTS %%d\n", summary.requests))
  io.write(string.format("SECONDS %%.3f\n", summary.duration / 1e6))
  io.write(string.format("P50 %%.3f\nP99 %%.3f\n", latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3))
end
"""


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


def wrk(url: str, script: Path, seconds: float, pause_ms: float) -> dict:
    """One wrk run of the mix: answers by 'status content-type', errors, rate, p50/p99 (ms)."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CLIENTS}", f"-d{int(seconds)}s", "--timeout", "30s"]
        + ["-s", str(script), url],
        env={**os.environ, "PAUSE_MS": f"{pause_ms:.3f}"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts = Counter({m[1]: int(m[2]) for m in re.finditer(r"^COUNT (.+)\t(\d+)$", out, re.M)})

    def num(name: str) -> float:
        return float(re.search(rf"^{name} ([\d.]+)$", out, re.M)[1])

    return {
        "counts": counts,
        "requests": int(num("REQUESTS")),
        "rate": num("REQUESTS") / num("SECONDS"),
        "transport_errors": int(num("TRANSPORT")),
        "p50_ms": num("P50"),
        "p99_ms": num("P99"),
    }


def tune(pause: float, run: dict, rate: float) -> float:
    """The pause (ms) that brings ``run``'s rate to ``rate``: CLIENTS / rate is the cycle."""
    return max(pause - (CLIENTS / run["rate"] - CLIENTS / rate) * 1000, 0.0)


class Probe(threading.Thread):
    """Scores one random account every 0.25 s and keeps the latency of each answer."""

    def __init__(self, url: str, ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.ids = url, ids
        self.latencies: list[float] = []
        self.failures: Counter = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.wait(0.25):
                t0 = time.perf_counter()
                try:
                    r = client.post(
                        "/v1/score/accounts", json={"account_ids": [random.choice(self.ids)]}
                    )
                except httpx.HTTPError as exc:
                    self.failures[type(exc).__name__] += 1
                    continue
                if r.status_code == 200:
                    self.latencies.append((time.perf_counter() - t0) * 1e3)
                else:
                    self.failures[r.status_code] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--tracking-uri", default=None, help="a store with @champion")
    parser.add_argument("--rate", type=float, default=200, help="requests/s")
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (`make bench` does it)")

    from features.store import SnapshotStore

    with tempfile.TemporaryDirectory() as tmp:
        uri = args.tracking_uri
        if uri is None:
            from training.config import TrainConfig
            from training.train import from_snapshots, train
            from training.workflow import register

            uri = f"sqlite:///{tmp}/mlflow.db"
            cfg = TrainConfig()
            data = from_snapshots(args.features, cfg)
            register(train(data, cfg), data, uri=uri, promote=True)
        frame = SnapshotStore.open(args.features).snapshots(["account_id", "as_of"])
        ids = frame.loc[frame["as_of"] == frame["as_of"].max(), "account_id"].tolist()
        (Path(tmp) / "ids.txt").write_text("\n".join(ids))
        script = Path(tmp) / "soak.lua"
        script.write_text(LUA % {"ids": Path(tmp) / "ids.txt"})
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RADAR_"))}
        env["BENTOML_HOME"] = f"{tmp}/bentoml"
        cmd = [sys.executable, "-m", "radar.cli", "serve", "--features", str(args.features)]
        cmd += ["--port", str(port), "--tracking-uri", uri]
        log = Path(tmp) / "server.log"
        server = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        samples: list[float] = []
        minutes: list[dict] = []
        try:
            wait_ready(url, server, log)
            # A connection's cycle is its answer time plus its pause: start from the pause
            # the rate needs, correct it by the rate each run reached. The soak is a row of
            # one-minute runs, so the pause keeps being corrected as the server warms up.
            pause = CLIENTS / args.rate * 1000
            wrk(url, script, WARMUP_S, pause)  # warm-up: caches, pools, metrics
            pause = tune(pause, wrk(url, script, WARMUP_S, pause), args.rate)
            rss0 = tree_rss_mib(server.pid)
            metrics0 = len(httpx.get(f"{url}/metrics").content)
            probe = Probe(url, ids)
            probe.start()
            left = args.minutes * 60
            while left > 0.5:
                run = wrk(url, script, min(60.0, left), pause) | {"pause_ms": pause}
                minutes.append(run)
                samples.append(tree_rss_mib(server.pid))
                pause = tune(pause, run, args.rate)
                left -= min(60.0, left)
            probe.stop.set()
            probe.join()
            rss1 = samples[-1]
            metrics1 = len(httpx.get(f"{url}/metrics").content)
        finally:
            server.terminate()
            server.wait(30)
        tracebacks = log.read_text().count("Traceback")

    counts = sum((m["counts"] for m in minutes), Counter())
    sent = sum(m["requests"] for m in minutes)
    rate = sent / (args.minutes * 60)
    transport = sum(m["transport_errors"] for m in minutes)
    p99s = [m["p99_ms"] for m in minutes]
    server_errors = sum(v for k, v in counts.items() if int(k.split()[0]) >= 500)
    not_problem = {
        k: v
        for k, v in counts.items()
        if int(k.split()[0]) >= 400 and not k.endswith(("application/problem+json", "text/html"))
    }
    good = sorted(probe.latencies)
    q = statistics.quantiles(good, n=100) if len(good) > 100 else [float("nan")] * 99
    growth = (rss1 - rss0) / rss0 * 100
    print(
        f"soak: {args.minutes:g} min at {rate:.0f} requests/s ({sent:,} sent by wrk, "
        f"{CLIENTS} connections; rate of each minute: "
        + ", ".join(f"{m['rate']:.0f}" for m in minutes)
        + ")"
    )
    print(
        "answers by status and content type: "
        + ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items()))
    )
    print(
        f"5xx: {server_errors}, transport errors: {transport}, errors not "
        f"problem+json: {sum(not_problem.values())} {not_problem or ''}, tracebacks in the "
        f"server log: {tracebacks}"
    )
    print(
        f"all answers (wrk, per minute): p50 median "
        f"{statistics.median(m['p50_ms'] for m in minutes):.1f} ms, p99 median "
        f"{statistics.median(p99s):.1f} ms (worst minute {max(p99s):.1f} ms)"
    )
    print(
        f"good calls (probe, {len(good):,} single-account scores beside the load): "
        f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, failures {dict(probe.failures) or 0}"
    )
    trail = " -> ".join(f"{s:.0f}" for s in samples)
    print(
        f"server memory: {rss0:.0f} MiB after warm-up -> {rss1:.0f} MiB at the end "
        f"({growth:+.1f}%); each minute: {trail}"
    )
    print(f"/metrics: {metrics0 / 1024:.0f} KB -> {metrics1 / 1024:.0f} KB")
    ok = (
        server_errors == 0 and transport == 0 and not not_problem and growth < 5 and tracebacks == 0
    )
    print("target met" if ok else "TARGET MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
