"""What a CSM reads: reasons apart from timing, plays that follow the signals, honest tails.

Trains the default configuration on a snapshot store (synthetic data, so the oracle is known),
then reports (issue 14's figures):

- the share of accounts whose listed churn reasons or drivers include a timing feature
  (target 0), and whose evidence reads the wrong way round (target 0);
- the play mix of the at-risk accounts (top decile of 90-day churn risk): the share sent to
  the catch-all value review, and the largest single play's share (target: at most half);
- expansion plays given to accounts with a high-severity alert or health below 70 (target 0);
- tail calibration on the test window, per churn head: for the top 1% of accounts by the
  model, mean predicted minus mean oracle (target within 0.05), and the largest predicted
  probability against the largest oracle one (target at most +0.10); ECE and ROC-AUC.

    .venv/bin/python benchmarks/bench_reasons.py --features build/demo/features
    .venv/bin/python benchmarks/bench_reasons.py --accounts 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import generate, radar  # benchmarks/common.py

from features.catalogue import FEATURE_BY_NAME, TIMING
from features.store import SnapshotStore
from scoring.plays import ScoringConfig
from scoring.records import score_store_rows
from training.config import TrainConfig
from training.model import ModelBundle
from training.registry import ScoringModel
from training.train import MODEL, ORACLE, from_snapshots, train


def reasons_figures(records: pd.DataFrame, cfg: ScoringConfig) -> None:
    n = len(records)
    churn_heads = [c.removeprefix("drivers_") for c in records if c.startswith("drivers_churn")]

    def timing_listed(row) -> bool:
        for h in churn_heads:
            feats = [d["feature"] for d in row[f"drivers_{h}"]]
            feats += [e["feature"] for r in row[f"reasons_{h}"] for e in r["evidence"]]
            if any(FEATURE_BY_NAME.get(f) and FEATURE_BY_NAME[f].role == TIMING for f in feats):
                return True
        return False

    timing = sum(timing_listed(r) for _, r in records.iterrows())
    print(f"accounts scored: {n:,}")
    print(
        f"churn reasons or drivers listing a timing feature: {timing} ({timing / n:.1%}; target 0)"
    )
    top = records[records["churn_risk_top_decile"]]
    mix = top["play"].value_counts(normalize=True)
    print(f"at-risk accounts (top decile of 90-day churn risk): {len(top):,}")
    print("  play mix: " + ", ".join(f"{k} {v:.0%}" for k, v in mix.items()))
    value = float(mix.get("value_review", 0.0))
    print(
        f"  catch-all value review: {value:.0%}; largest single play {mix.max():.0%} "
        "(target <= 50%)"
    )
    expansion = records[records["play"] == "expansion_conversation"]
    severe = expansion["alerts"].map(lambda a: bool(set(a) & set(cfg.high_severity_alerts)))
    unhealthy = expansion["health_score"].fillna(0) < cfg.healthy_score
    bad = int((severe | unhealthy).sum())
    print(
        f"expansion plays: {len(expansion):,}; with a high-severity alert or health < 70: "
        f"{bad} (target 0)"
    )
    print("all plays: " + ", ".join(f"{k} {v}" for k, v in records["play"].value_counts().items()))


def tails(result, data) -> None:
    print(
        f"{'head':<14} {'AUC':>6} {'ECE':>6} {'top1% pred':>10} {'oracle':>7} {'diff':>6} "
        f"{'max pred':>8} {'max oracle':>10}  targets"
    )
    for label in data.labels:
        r = {
            e["predictor"]: e
            for e in result.evaluation
            if e["head"] == label and e["segment"] == "all"
        }
        test = result.heads[label].test
        if not label.startswith("churn"):  # the tail targets are the churn heads'
            print(f"{label:<14} {r[MODEL]['roc_auc']:>6.3f} {r[MODEL]['ece']:>6.3f}")
            continue
        if ORACLE not in test:
            print(f"{label}: no oracle (not synthetic data)")
            continue
        pred, oracle = test[MODEL].to_numpy(), test[ORACLE].to_numpy()
        ok = ~np.isnan(oracle)
        pred, oracle = pred[ok], oracle[ok]
        k = max(1, int(round(0.01 * len(pred))))
        idx = np.argsort(-pred)[:k]
        diff = pred[idx].mean() - oracle[idx].mean()
        mx, mo = pred.max(), oracle.max()
        checks = f"diff {'ok' if abs(diff) <= 0.05 else 'MISSED'}, "
        checks += f"max {'ok' if mx <= mo + 0.10 else 'MISSED'}"
        print(
            f"{label:<14} {r[MODEL]['roc_auc']:>6.3f} {r[MODEL]['ece']:>6.3f} "
            f"{pred[idx].mean():>10.3f} "
            f"{oracle[idx].mean():>7.3f} {diff:>+6.3f} {mx:>8.3f} {mo:>10.3f}  {checks}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--features", type=Path, help="existing `radar features` output")
    parser.add_argument("--calibration-min-share", type=float, help="TrainConfig override")
    parser.add_argument("--save-bundle", type=Path, help="keep the trained bundle in this folder")
    parser.add_argument(
        "--bundle", type=Path, help="score with a saved bundle instead of training (no tails)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        features = args.features
        if features is None:
            data_dir = generate(Path(tmp) / "data", args.accounts, args.months)
            features = Path(tmp) / "features"
            radar("features", "--data", str(data_dir), "--out", str(features))
        share = args.calibration_min_share
        cfg = TrainConfig() if share is None else TrainConfig(calibration_min_share=share)
        if args.bundle:
            bundle = ModelBundle.load(args.bundle)
        else:
            t0 = time.perf_counter()
            data = from_snapshots(features, cfg)
            result = train(data, cfg)
            print(f"trained in {time.perf_counter() - t0:.0f} s on {features}")
            tails(result, data)
            bundle = result.bundle
            if args.save_bundle:
                bundle.save(args.save_bundle)
        store = SnapshotStore.open(features)
        frame = store.snapshots()
        latest = frame[frame["as_of"] == frame["as_of"].max()]
        scoring = ScoringConfig()
        records = score_store_rows(store, latest, ScoringModel(bundle, "bench"), scoring).records
        reasons_figures(records, scoring)


if __name__ == "__main__":
    main()
