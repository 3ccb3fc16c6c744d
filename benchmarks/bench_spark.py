"""What one machine pays for running on Spark: features and batch scoring, DuckDB against Spark.

The same run times, each in a fresh process: the feature engine on DuckDB and on Spark in
local mode (``local[2]``, this machine's two cores), both after the same validation, on the
same monthly as-of dates; then scoring the latest snapshot of every account with the same
model by ``score_snapshots`` in one process (what ``radar score`` does once it has the
snapshots) and by the Spark job (``scoring/spark_job.py``, local[2], Parquet by segment).
Peak memory is that of the whole process tree (Python, the JVM and Spark's Python
workers), sampled every 0.1 s. The model is trained first with the default configuration
(outside the timings). The data is generated first, outside the timings.

    .venv/bin/python benchmarks/bench_spark.py [--accounts 20000] [--months 24] [--runs 1]
        [--data D] [--features F] [--bundle B | --save-bundle B] [--spark-conf KEY=VALUE ...]

--data reuses a generated dataset, --features its `radar features` output (the latest
snapshots to score) and --bundle a saved model bundle (at 100,000 accounts the README's
figures score with the bundle trained on the 20,000-account features, as bench_score.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from common import generate, radar  # benchmarks/common.py (the script's folder is on sys.path)

CHILD = """
import json, sys, time
mode, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
spark_conf = json.loads(sys.argv[-1]) if mode == "features_spark" else {}
t0 = time.perf_counter()
stages = {}
if mode.startswith("features"):
    from features.config import FeatureConfig
    from features.contract import load_dataset
    from features.engine import compute_features
    from features.snapshots import active_snapshots, as_of_dates
    ds = load_dataset(data)
    t1 = time.perf_counter()
    engine = mode.split("_")[1]
    cfg = FeatureConfig(engine=engine, spark_master="local[2]", spark_conf=spark_conf)
    snaps = active_snapshots(ds, as_of_dates(ds, cfg))
    got = compute_features(ds, snaps, cfg)
    stages = {"load_s": t1 - t0, "compute_s": time.perf_counter() - t1, "rows": len(got),
              "accounts": ds.rows("accounts")}
else:
    import pandas as pd
    from scoring.records import score_snapshots, write_scores
    from training.registry import ScoringModel
    from training.model import ModelBundle
    bundle_dir, rows_path = data, sys.argv[4]
    model = ScoringModel(ModelBundle.load(bundle_dir), uri=bundle_dir)
    if mode == "score_plain":
        rows = pd.read_parquet(rows_path)
        t1 = time.perf_counter()
        write_scores(score_snapshots(rows, model), out + ".parquet")
        stages["scored"] = len(rows)
    else:
        from features.backends import spark_session
        from scoring.spark_job import score_table
        session = spark_session("local[2]")
        rows = session.read.parquet(rows_path).repartition(4)
        t1 = time.perf_counter()
        got = score_table(rows, model, out)
        stages |= {"rescored": got.rescored, "scored": got.rows}
    stages |= {"compute_s": time.perf_counter() - t1, "load_s": t1 - t0}
print(json.dumps({"wall_s": time.perf_counter() - t0, **stages}))
"""


def child(*args: str) -> dict:
    """Run CHILD in a fresh process; its result with the peak RSS of its process tree."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                rss = 0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]) | {"peak_gib": peak[0] / 2**30}


def _row(name: str, runs: list[dict], key: str = "compute_s") -> float:
    v = [r[key] for r in runs]
    med = statistics.median(v)
    peak = max(r["peak_gib"] for r in runs)
    print(f"| {name} | {med:.1f} | {min(v):.1f} | {max(v):.1f} | {peak:.2f} GiB |")
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--data", type=Path, help="existing dataset (skips generation)")
    parser.add_argument("--features", type=Path, help="`radar features` output of --data")
    parser.add_argument("--bundle", type=Path, help="a saved model bundle (skips training)")
    parser.add_argument("--save-bundle", type=Path, help="keep the trained bundle here")
    parser.add_argument(
        "--spark-conf",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="Spark settings for the feature run (as spark_conf in the feature config)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = args.data or generate(tmp / "data", args.accounts, args.months)
        duck = [child("features_duckdb", str(data), "-") for _ in range(args.runs)]
        conf = json.dumps(dict(kv.split("=", 1) for kv in args.spark_conf))
        spark = [child("features_spark", str(data), "-", conf) for _ in range(args.runs)]
        print(
            f"{duck[0]['accounts']:,} accounts, {duck[0]['rows']:,} monthly snapshots, "
            f"{args.runs} run(s) each"
        )
        print("| what | median s | min s | max s | peak memory (process tree) |")
        print("|---|---:|---:|---:|---:|")
        d = _row("features, DuckDB engine (after validation)", duck)
        s = _row("features, Spark local[2] engine (after validation)", spark)
        _row("  load and validate (DuckDB, the same for both)", duck, "load_s")
        ratio_f = s / d

        bundle_dir, rows_path = _model_and_rows(
            data, tmp, args.features, args.bundle, args.save_bundle
        )
        plain = [
            child("score_plain", str(bundle_dir), str(tmp / f"plain{i}"), str(rows_path))
            for i in range(args.runs)
        ]
        job = [
            child("score_spark", str(bundle_dir), str(tmp / f"spark{i}"), str(rows_path))
            for i in range(args.runs)
        ]
        p = _row("scoring the latest snapshots, one process (score_snapshots + write)", plain)
        j = _row("scoring the latest snapshots, Spark job local[2] (2 passes, by segment)", job)
        print(
            f"Spark / DuckDB features: {ratio_f:.1f}x; Spark job / one process scoring: "
            f"{j / p:.1f}x; {job[0]['scored']:,} accounts scored, "
            f"{job[0]['rescored']:,} rescored in pass 2"
        )


def _model_and_rows(
    data: Path, tmp: Path, features: Path | None, bundle: Path | None, save: Path | None
) -> tuple[Path, Path]:
    """A model trained with the default configuration on ``radar features`` output (or
    ``bundle``), and the latest snapshot of every account."""
    import pandas as pd

    from training.config import TrainConfig
    from training.train import from_snapshots, train

    if features is None:
        features = tmp / "features"
        radar("features", "--data", str(data), "--out", str(features))
    if bundle is None:
        cfg = TrainConfig()
        bundle = train(from_snapshots(features, cfg), cfg).bundle.save(save or tmp / "bundle")
    bundle_dir = bundle
    table = pd.read_parquet(features / "snapshots.parquet")
    rows_path = tmp / "latest.parquet"
    table[table["as_of"] == table["as_of"].max()].to_parquet(rows_path, index=False)
    return bundle_dir, rows_path


if __name__ == "__main__":
    main()
