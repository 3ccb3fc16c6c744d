"""Monitor speed: `radar monitor` over a year of logged predictions.

Target (issue 17): 100,000 accounts with a year of logged predictions in under 2 minutes.
Data, features, a champion (trained with few trees: its quality does not matter here) and
the log (12 monthly as-of dates of probabilities and expected ARR, written with the same
function `radar score` uses) are built first, outside the timing; then `monitor()` runs in a
fresh process: load and validate the raw data, outcomes of every logged prediction, a
snapshot at the latest date, PSI against the training window, the report files.

    .venv/bin/python benchmarks/bench_monitor.py --accounts 100000
    .venv/bin/python benchmarks/bench_monitor.py --data /work/bench/data100k   # existing tables
    .venv/bin/python benchmarks/bench_monitor.py --data DATA --features FEATURES  # both built

The champion is LightGBM only (``model: lightgbm``): its choice does not matter here, and the
linear candidates would only lengthen the setup.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from common import generate, radar  # benchmarks/common.py (the script's folder is on sys.path)

SETUP = """
import sys
import pandas as pd
from features.catalogue import HORIZONS
from monitoring.predictions import append
from training.registry import load_model
from training.config import TrainConfig
from training.promotion import promote
from training.tracking import log_training, rows_of_test_window
from training.train import from_snapshots, train
features, uri, log = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = TrainConfig.from_yaml(**{"lightgbm.max_trees": 50, "shap_sample": 100, "model": "lightgbm"})
data = from_snapshots(features, cfg)
log_training(train(data, cfg), data, uri=uri)
promote("renewal-radar", rows_of_test_window)
model = load_model("models:/renewal-radar@champion", uri)
frame = data.frame
for t in sorted(frame["as_of"].unique())[-12:]:
    rows = frame[frame["as_of"] == t]
    p = model.bundle.predict(rows).set_axis(rows.index)
    records = rows[["account_id", "as_of", "segment", "arr"]].join(p)
    for h in HORIZONS:
        records[f"arr_at_risk_{h}d"] = records[f"p_churn_{h}d"] * records["arr"]
        grow = records[f"p_expansion_{h}d"] * records["arr"] * 0.2
        records[f"expected_expansion_arr_{h}d"] = grow
    meta = {"model": model.label, "model_uri": model.uri, "model_run_id": model.run_id}
    append(records, meta, log)
"""

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from monitoring.predictions import read
from monitoring.report import monitor, reference_for
from reports.monitor_report import write_report
from training.registry import load_model
data, uri, log, out = sys.argv[1:5]
model = load_model("models:/renewal-radar@champion", uri)
predictions = read(log)
t1 = time.perf_counter()
report = monitor(data, predictions, reference_for(model), model)
write_report(report, out)
t2 = time.perf_counter()
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": t2 - t0, "read_s": t1 - t0, "monitor_s": t2 - t1,
                  "rows": len(predictions), "verdict": report["verdict"],
                  "cpu_s": use.ru_utime + use.ru_stime, "peak_rss_gib": use.ru_maxrss / 2**20}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--data", type=Path, help="Existing raw tables (skips generating).")
    parser.add_argument("--features", type=Path, help="Their `radar features` (skips building).")
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is not None:
            data = args.data
            args.accounts = len(pd.read_parquet(data / "accounts.parquet", columns=["account_id"]))
        else:
            data = generate(Path(tmp) / "data", args.accounts, args.months)
        features = args.features
        if features is None:
            features = Path(tmp) / "features"
            radar("features", "--data", str(data), "--out", str(features))
        uri, log = f"sqlite:///{tmp}/mlflow.db", str(Path(tmp) / "predictions")
        subprocess.run([sys.executable, "-c", SETUP, str(features), uri, log], check=True, env=env)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(data), uri, log, str(Path(tmp) / "monitor")],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{args.accounts:,} accounts, {r['rows']:,} logged predictions (12 as-of dates): "
            f"radar monitor {r['wall_s']:.1f} s (read log {r['read_s']:.1f} s, report "
            f"{r['monitor_s']:.1f} s), CPU {r['cpu_s']:.0f} s, peak {r['peak_rss_gib']:.2f} GiB, "
            f"verdict {r['verdict']}; target < 120 s: {'met' if r['wall_s'] < 120 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
