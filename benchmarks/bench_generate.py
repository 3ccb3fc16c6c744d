"""Synthetic generator speed: wall time (median of several runs) and peak memory.

Target (foundation issue): 100,000 accounts x 24 months in under 3 minutes and under 8 GiB
on the 2-core machine. Each run is a fresh process so its peak RSS is its own.

    .venv/bin/python benchmarks/bench_generate.py [--sizes 10000 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from features.synthetic.dataset import generate_dataset
n, months, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
t = time.perf_counter()
g = generate_dataset(out, n, months, seed=1)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF)
                  .ru_maxrss / 2**20, "summary": g.summary}))
"""


def run_once(accounts: int, months: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(accounts), str(months), str(out)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["usage_rows"] = _rows(out / "usage.parquet")
        result["disk_mib"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        return result


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'accounts':>9} {'months':>6} {'median s':>9} {'min s':>7} {'max s':>7} "
        f"{'peak GiB':>8} {'usage rows':>11} {'disk MiB':>8}"
    )
    for n in args.sizes:
        runs = [run_once(n, args.months) for _ in range(args.runs)]
        walls = [r["wall_s"] for r in runs]
        print(
            f"{n:>9} {args.months:>6} {statistics.median(walls):>9.1f} {min(walls):>7.1f} "
            f"{max(walls):>7.1f} {max(r['peak_rss_gib'] for r in runs):>8.2f} "
            f"{runs[0]['usage_rows']:>11,} {runs[0]['disk_mib']:>8.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
