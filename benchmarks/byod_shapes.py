"""Figures of the own-data shapes the tests build: rows per part, label rates, ROC-AUC.

Builds each shape in a temporary directory, runs validate -> features -> train (or train
--table) with the ``radar`` command and prints what it printed about labels and the test
window. Usage: ``.venv/bin/python benchmarks/byod_shapes.py [--out DIR] [--shapes a,b]``
(shapes: table, nochurn, partial, year, purchases; default all).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.features.test_partial_data import (  # noqa: E402 (after the path)
    purchases_log,
    purchases_to_contract,
)
from tests.training.test_own_data import churn_table  # noqa: E402


def radar(*args: str, cwd: Path) -> str:
    """Run ``radar ARGS``; return stdout (exit on failure with its stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}", "COLUMNS": "120"}
    out = subprocess.run(
        [sys.executable, "-m", "radar.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"radar {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out.stdout + "\n" + out.stderr


def show(title: str, text: str) -> None:
    keep = [
        line
        for line in text.splitlines()
        if "│" in line
        or "warning:" in line
        or ": train" in line
        or "random split" in line
        or "label rates" in line
        or "labels from activity" in line
    ]
    print(f"\n=== {title}\n" + "\n".join(keep))


def raw(tmp: Path, accounts: int, months: int, seed: int) -> Path:
    data = tmp / f"raw_{accounts}_{months}"
    if not data.exists():
        radar(
            "generate",
            "--accounts",
            str(accounts),
            "--months",
            str(months),
            "--seed",
            str(seed),
            "--out",
            str(data),
            cwd=tmp,
        )
        shutil.rmtree(data / "ground_truth")
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args()
    tmp = args.out or Path(tempfile.mkdtemp(prefix="byod-"))
    tmp.mkdir(parents=True, exist_ok=True)
    for name in args.shapes.split(","):
        SHAPES[name](tmp)
    print(f"\nworking files in {tmp}")


def table_shape(tmp: Path) -> None:
    table = tmp / "customers.csv"
    churn_table().to_csv(table, index=False)
    show(
        "single-snapshot table (4,000 customers, no date)",
        radar("train", "--table", str(table), "--label", "Churn", "--max-trees", "100", cwd=tmp),
    )


def nochurn_shape(tmp: Path) -> None:
    base = raw(tmp, 1500, 15, 21)
    nochurn = tmp / "nochurn"
    shutil.copytree(base, nochurn, dirs_exist_ok=True)
    subs = pd.read_parquet(nochurn / "subscriptions.parquet")
    subs[subs["change_type"] != "churn"].to_parquet(nochurn / "subscriptions.parquet")
    radar("validate", "--data", str(nochurn), cwd=tmp)
    radar("features", "--data", str(nochurn), "--out", str(tmp / "f_nochurn"), cwd=tmp)
    show(
        "no account has churned (1,500 accounts x 15 months)",
        radar("train", "--features", str(tmp / "f_nochurn"), "--max-trees", "100", cwd=tmp),
    )


def partial_shape(tmp: Path) -> None:
    base = raw(tmp, 1500, 15, 21)
    partial = tmp / "partial"
    shutil.copytree(base, partial, dirs_exist_ok=True)
    for name in ("contacts", "nps_responses", "weekly_active_users"):
        pd.read_parquet(partial / f"{name}.parquet").head(0).to_csv(
            partial / f"{name}.csv", index=False
        )
        (partial / f"{name}.parquet").unlink()
    for name in ("milestones", "invoices", "engagement"):
        (partial / f"{name}.parquet").unlink()
    radar("validate", "--data", str(partial), cwd=tmp)
    radar("features", "--data", str(partial), "--out", str(tmp / "f_partial"), cwd=tmp)
    show(
        "header-only / absent optional tables (1,500 accounts x 15 months)",
        radar("train", "--features", str(tmp / "f_partial"), "--max-trees", "100", cwd=tmp),
    )


def year_shape(tmp: Path) -> None:
    year = raw(tmp, 2000, 12, 3)
    radar(
        "features",
        "--data",
        str(year),
        "--out",
        str(tmp / "f_year"),
        "--start",
        "2024-11-30",
        cwd=tmp,
    )
    show(
        "12 monthly as-of dates (2,000 accounts x 12 months)",
        radar("train", "--features", str(tmp / "f_year"), "--max-trees", "150", cwd=tmp),
    )


def purchases_shape(tmp: Path) -> None:
    """A purchases log and a CRM list, no contracts: labels from activity (30 quiet days)."""
    data = tmp / "purchases"
    purchases_to_contract(*purchases_log(raw(tmp, 1500, 15, 21)), data)
    radar("validate", "--data", str(data), cwd=tmp)
    built = radar(
        "features",
        "--data",
        str(data),
        "--out",
        str(tmp / "f_purchases"),
        "--activity-churn-days",
        "30",
        cwd=tmp,
    )
    trained = radar("train", "--features", str(tmp / "f_purchases"), "--max-trees", "100", cwd=tmp)
    show("purchases log without contracts (1,500 accounts x 15 months)", built + trained)


SHAPES = {
    "table": table_shape,
    "nochurn": nochurn_shape,
    "partial": partial_shape,
    "year": year_shape,
    "purchases": purchases_shape,
}


if __name__ == "__main__":
    main()
