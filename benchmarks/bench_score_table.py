"""`radar score --table` on a one-row-per-customer table: time and peak memory.

A churn export as teams have it (Yes/No label, integer counts, number text with blank cells,
true/false text, categories, an id column) of --train-rows rows trains a model with
`radar train --table` (outside the timing); then `radar score --table` scores a table of
--rows rows of the same shape, probabilities and top-5 drivers per row, to a Parquet file,
--runs times, each in a fresh process (the figure includes start-up and loading the model;
peak RSS is the scoring command's own).

    .venv/bin/python benchmarks/bench_score_table.py [--rows 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def churn_export(n: int, seed: int) -> pd.DataFrame:
    """A telco-style churn export: its columns typed as a spreadsheet export types them."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 73, n)
    monthly = rng.normal(70, 30, n).clip(18, 120).round(2)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    calls = rng.poisson(1.5, n)
    logit = -0.9 - 0.045 * (tenure - 30) + 1.3 * (contract == "Month-to-month")
    logit = logit + 0.015 * (monthly - 70) + 0.25 * calls
    total = (monthly * tenure).round(2).astype(str)
    total[rng.random(n) < 0.01] = " "
    return pd.DataFrame(
        {
            "customerID": [f"C{i:07d}" for i in range(n)],
            "tenure": tenure,
            "Contract": contract,
            "Partner": rng.choice(["Yes", "No"], n),
            "PaperlessBilling": rng.choice(["true", "false"], n),
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "SupportCalls": calls,
            "Churn": np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "Yes", "No"),
        }
    )


# `radar ARGS` in this process, then its own peak RSS (KiB) on stderr's last line.
CHILD = """
import resource, runpy, sys
sys.argv = ["radar", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("radar.cli", run_name="__main__")
except SystemExit as exc:
    code = exc.code or 0
use = resource.getrusage(resource.RUSAGE_SELF)
sys.stderr.write(f"\\nCPU_S={use.ru_utime + use.ru_stime} PEAK_KIB={use.ru_maxrss}\\n")
sys.exit(code)
"""


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Seconds, CPU seconds and peak GiB of ``radar ARGS`` in a fresh process; raises if it fails.

    CPU seconds say what the command cost where other work shares the cores.
    """
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"radar {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    tail = done.stderr.rsplit("CPU_S=", 1)[1].split()
    cpu, peak = float(tail[0]), int(tail[1].removeprefix("PEAK_KIB=")) / 2**20
    return seconds, cpu, peak


def main() -> None:
    """Train once, then time `radar score --table` and report its peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--train-rows", type=int, default=7_000)
    parser.add_argument("--runs", type=int, default=3)
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
        churn_export(a.train_rows, 0).to_csv(root / "train.csv", index=False)
        churn_export(a.rows, 1).drop(columns="Churn").to_csv(root / "score.csv", index=False)
        run(["train", "--table", str(root / "train.csv"), "--label", "Churn"], env)
        args = ["score", "--table", str(root / "score.csv"), "--out", str(root / "out.parquet")]
        args += ["--model", "models:/renewal-radar-Churn@challenger"]
        got = [run(args, env) for _ in range(a.runs)]
        times, peak = [t for t, _, _ in got], max(p for _, _, p in got)
        cpu = [c for _, c, _ in got]
        rows = len(pd.read_parquet(root / "out.parquet"))
    print(
        json.dumps(
            {
                "rows": rows,
                "runs_s": [round(t, 2) for t in times],
                "median_s": round(statistics.median(times), 2),
                "cpu_s": [round(c, 2) for c in cpu],
                "load_average_1m": round(os.getloadavg()[0], 1),
                "peak_rss_gib": round(peak, 3),  # the scoring command's own, largest run
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
