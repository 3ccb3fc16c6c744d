"""`radar import` of a large Segment or Mixpanel JSON-lines export: wall time and peak memory.

Target (issue 30): 10 million events in under 2 minutes and under 4 GiB. The export is
written by DuckDB (accounts x users x 365 days, event names from 10 product features, one
event in 1,000 repeated to exercise the dedupe); the import runs in a fresh process so its
peak RSS (DuckDB included: it runs in-process) is its own.

    .venv/bin/python benchmarks/bench_import.py [--events 1000000] [--preset segment|mixpanel]
    .venv/bin/python benchmarks/bench_import.py --events 10000000      # the target size
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from features.imports.engine import run_import
from features.imports.mapping import load_preset
src, out, preset = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
r = run_import([load_preset(preset)], [__import__('pathlib').Path(src)], out)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF)
                  .ru_maxrss / 2**20, "rows": r.rows,
                  "events_in": sum(s.rows_in for s in r.sources)}))
"""
FEATURES = (
    "['dashboards','reports','alerts','integrations','workflows','api','forecasting',"
    "'sso_admin','audit_log','sandbox']"
)


def write_export(path: Path, events: int, preset: str, accounts: int) -> float:
    """Write ``events`` events as the preset's JSON lines; returns the seconds it took."""
    import duckdb

    t = time.perf_counter()
    base = (
        f"SELECT i, 'A' || lpad(CAST(i % {accounts} AS VARCHAR), 6, '0') AS acct, "
        f"'u' || CAST((i * 7919) % ({accounts} * 20) AS VARCHAR) AS usr, "
        "TIMESTAMP '2025-01-01' + to_seconds(CAST((i * 104729) % (365 * 86400) AS BIGINT)) AS ts, "
        f"{FEATURES}[1 + CAST(i % 10 AS INTEGER)] AS ev "
        f"FROM range({events}) t(i)"
    )
    # One event in 1,000 appears twice (exports repeat events; the import counts it once).
    rows = f"SELECT * FROM ({base}) UNION ALL SELECT * FROM ({base}) WHERE i % 1000 = 0"
    if preset == "segment":
        sql = (
            "SELECT 'track' AS type, ev AS event, usr AS userId, "
            "strftime(ts, '%Y-%m-%dT%H:%M:%S.000Z') AS timestamp, 'm' || CAST(i AS VARCHAR) "
            "AS messageId, struct_pack(groupId := acct) AS context FROM r"
        )
    else:
        sql = (
            "SELECT ev AS event, struct_pack(time := epoch(ts)::BIGINT, distinct_id := usr, "
            "\"$insert_id\" := 'm' || CAST(i AS VARCHAR), company_id := acct) AS properties "
            "FROM r"
        )
    con = duckdb.connect()
    con.execute(f"COPY (WITH r AS ({rows}) {sql}) TO '{path}' (FORMAT JSON)")
    return time.perf_counter() - t


def main() -> None:
    """Write the export, import it in a fresh process, print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--preset", choices=("segment", "mixpanel"), default="segment")
    ap.add_argument("--accounts", type=int, default=2_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        export = src / f"{args.preset}_export.jsonl"
        written = write_export(export, args.events, args.preset, args.accounts)
        size = export.stat().st_size / 2**30
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(src), str(Path(tmp) / "out"), args.preset],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(
        {
            "events": args.events,
            "preset": args.preset,
            "file_gib": round(size, 3),
            "write_s": round(written, 1),
        }
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
