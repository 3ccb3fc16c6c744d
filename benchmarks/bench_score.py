"""Scoring speed: every head with its timing, reasons and top-5 drivers, against shap.

Target (explanations issue): 100,000 accounts, every head with its top-5 drivers and reasons,
in under 2 minutes on this 2-core machine. The model is trained first with the default
configuration on the given features (outside the timings; `--bundle DIR` scores with a saved
bundle instead); the scored rows are the latest
snapshots, as many as --accounts. Timings run in a fresh process (peak RSS is its own):
`score_snapshots` (probabilities, TreeSHAP drivers in probability points, sentences,
segments, plays, portfolio summary) --runs times, then shap.TreeExplainer on --shap-rows rows
per head for the same contributions, scaled to --accounts rows.

    .venv/bin/python benchmarks/bench_score.py --features DIR [--accounts 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
import numpy as np, pandas as pd
from scoring.records import score_snapshots
from training.registry import ScoringModel
from training.model import ModelBundle
bundle_dir, rows_path = sys.argv[1], sys.argv[2]
runs, shap_rows = int(sys.argv[3]), int(sys.argv[4])
bundle = ModelBundle.load(bundle_dir)
rows = pd.read_parquet(rows_path)
model = ScoringModel(bundle, uri=bundle_dir)
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    scores = score_snapshots(rows, model)
    times.append(time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
native, shap_s = 0.0, 0.0
import shap
sub = bundle.spec.matrix(rows.head(shap_rows))
for head in bundle.heads.values():
    t0 = time.perf_counter()
    head.booster.predict(sub, pred_contrib=True)
    native += time.perf_counter() - t0
    t0 = time.perf_counter()
    values = shap.TreeExplainer(head.booster).shap_values(sub)
    shap_s += time.perf_counter() - t0
print(json.dumps({"times": times, "peak_rss_gib": peak, "rows": len(rows),
                  "shap_rows": len(sub), "native_contrib_s": native, "shap_s": shap_s,
                  "trees": {h: hd.booster.num_trees() for h, hd in bundle.heads.items()}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="`radar features` output")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shap-rows", type=int, default=20_000)
    parser.add_argument(
        "--bundle", type=Path, help="a saved model bundle to score with (default: train one)"
    )
    args = parser.parse_args()

    from features.store import SnapshotStore
    from training.config import TrainConfig
    from training.train import from_snapshots, train

    if args.bundle:
        frame = SnapshotStore.open(args.features).snapshots()
    else:
        cfg = TrainConfig()
        data = from_snapshots(args.features, cfg)
        result = train(data, cfg)
        frame = data.frame
    frame = frame.sort_values(["as_of", "account_id"], ascending=[False, True])
    rows = frame.head(args.accounts)
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = args.bundle or result.bundle.save(Path(tmp) / "bundle")
        rows_path = Path(tmp) / "rows.parquet"
        rows.to_parquet(rows_path)
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(bundle_dir),
                str(rows_path),
                str(args.runs),
                str(args.shap_rows),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=os.environ.copy(),
        )
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    t = r["times"]
    med = statistics.median(t)
    scale = r["rows"] / r["shap_rows"]
    print(
        f"{r['rows']:,} account snapshots ({rows['as_of'].nunique()} as-of dates), "
        f"trees per head {r['trees']}"
    )
    heads = len(r["trees"])
    print(
        f"score with timing, reasons and top-5 drivers x {heads} heads: median {med:.1f} s "
        f"(min {min(t):.1f}, max {max(t):.1f}, {len(t)} runs), {r['rows'] / med:,.0f} accounts/s, "
        f"peak {r['peak_rss_gib']:.2f} GiB"
    )
    print(
        f"contributions for {r['shap_rows']:,} rows x {heads} heads: LightGBM pred_contrib "
        f"{r['native_contrib_s']:.1f} s, shap.TreeExplainer {r['shap_s']:.1f} s"
    )
    print(
        f"shap.TreeExplainer for the same {r['rows']:,} rows (scaled): "
        f"{r['shap_s'] * scale:.0f} s, i.e. {r['shap_s'] * scale / med:.1f}x the whole scoring"
    )


if __name__ == "__main__":
    main()
