"""Feature pipeline speed: DuckDB/ibis engine against the pandas reference, and at scale.

Targets (features issue): 100,000 accounts x 24 months into monthly snapshots in under
5 minutes and 8 GiB peak; at 10,000 accounts, at least 10x faster than the pandas reference
measured in the same run. Each timing is a fresh process (peak RSS is its own); the data is
generated first, outside the timings.

    .venv/bin/python benchmarks/bench_features.py [--accounts 10000] [--runs 3]
    .venv/bin/python benchmarks/bench_features.py --accounts 100000 --runs 1 --no-reference
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import generate  # benchmarks/common.py (the script's folder is on sys.path)

CHILD = """
import json, resource, sys, time
from features.config import FeatureConfig
from features.contract import load_dataset
from features.snapshots import active_snapshots, as_of_dates
mode, data = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode == "pipeline":  # what `radar features` does: validate, compute, write
    from features.pipeline import run_features
    run_features(data, sys.argv[3], FeatureConfig())
    stages = {}
else:
    ds = load_dataset(data)
    if mode == "reference":  # pandas needs the large logs in memory: part of its loading
        for name in ds.tables:
            ds[name]
    t1 = time.perf_counter()
    cfg = FeatureConfig()
    snaps = active_snapshots(ds, as_of_dates(ds, cfg))
    if mode == "engine":
        from features.engine import compute_features
        compute_features(ds, snaps, cfg)
    else:
        from features.reference import reference_features
        reference_features(ds, snaps, cfg)
    stages = {"load_s": t1 - t0, "compute_s": time.perf_counter() - t1, "rows": len(snaps),
              "accounts": ds.rows("accounts")}
print(json.dumps({"wall_s": time.perf_counter() - t0, **stages,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def child(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], check=True, capture_output=True, text=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--data", type=Path, help="existing dataset (skips generation)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = generate(Path(tmp) / "data", args.accounts, args.months)
        out = Path(tmp) / "features"
        pipe = [child("pipeline", str(data), str(out)) for _ in range(args.runs)]
        eng = [child("engine", str(data)) for _ in range(args.runs)]
        print(f"{eng[0]['accounts']:,} accounts, {eng[0]['rows']:,} monthly snapshots")
        print(f"{'what':<36} {'median s':>9} {'min s':>7} {'max s':>7} {'peak GiB':>8}")

        def row(name, runs, key="wall_s"):
            v = [r[key] for r in runs]
            print(
                f"{name:<36} {statistics.median(v):>9.1f} {min(v):>7.1f} {max(v):>7.1f} "
                f"{max(r['peak_rss_gib'] for r in runs):>8.2f}"
            )

        row("radar features (validate+compute+write)", pipe)
        row("  load and validate", eng, "load_s")
        row("  engine compute (DuckDB/ibis)", eng, "compute_s")
        if not args.no_reference:
            ref = [child("reference", str(data)) for _ in range(args.runs)]
            row("  reference compute (pandas)", ref, "compute_s")
            ratio = statistics.median(r["compute_s"] for r in ref) / statistics.median(
                r["compute_s"] for r in eng
            )
            print(f"engine speed-up over the pandas reference: {ratio:.1f}x")


if __name__ == "__main__":
    main()
