"""Does the evidence pick the model per head? The choice against each candidate, on the test window.

Target (issue 17): with ``model: auto`` each head's test ROC-AUC is never below the best single
candidate (LightGBM or the regularised logistic model) by more than 0.005. The heads are
trained once with ``model: blend``, which fits both candidates exactly as ``auto`` does
(LightGBM is deterministic for a seed; the linear model is fitted on the same rows); each
kind (``auto``'s own choice by :func:`training.linear.choose`, each candidate forced) is then
calibrated on the validation window and tested as a bundle, as ``train`` would have served it
(``--four-runs`` trains four times instead, the slow way, to check that the two agree).
Data and features are built first (synthetic, seed 1), outside the timings.

    .venv/bin/python benchmarks/bench_model_choice.py --accounts 2000
    .venv/bin/python benchmarks/bench_model_choice.py --features /work/bench/f20k
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import features_of  # benchmarks/common.py (the script's folder is on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from training.config import TrainConfig  # noqa: E402
from training.linear import choose  # noqa: E402
from training.model import Calibrator, Head, ModelBundle  # noqa: E402
from training.train import MODEL, from_snapshots, train  # noqa: E402

KINDS = ("auto", "lightgbm", "logistic", "blend")
SINGLE = ("lightgbm", "logistic")
MARGIN = 0.005


def test_auc(result) -> dict[str, float]:
    """The model's test ROC-AUC per head."""
    return {
        r["head"]: r["roc_auc"]
        for r in result.evaluation
        if r["predictor"] == MODEL and r["segment"] == "all"
    }


def one_fit(data, base: TrainConfig) -> tuple[dict, dict]:
    """Test ROC-AUC per kind and head, auto's choices, from a single ``model: blend`` training."""
    cfg = base.model_copy(update={"model": "blend"})
    result = train(data, cfg)
    df = data.frame
    parts, scorers, choice = {}, {}, {}
    for label, split in result.splits.items():
        part = split.assign(df[data.time])
        known = df[label].notna().to_numpy()
        rows = {p: np.flatnonzero((part == p).to_numpy(dtype=bool) & known) for p in part.unique()}
        x = {p: data.spec.matrix(df.iloc[rows[p]]) for p in ("validation", "test")}
        y = {p: df[label].to_numpy(dtype=float)[rows[p]] for p in ("validation", "test")}
        blend = result.bundle.heads[label].booster
        scorers[label] = {"lightgbm": blend.booster, "logistic": blend.linear, "blend": blend}
        raw_val = {k: m.predict(x["validation"], raw_score=True) for k, m in scorers[label].items()}
        c = choose(y["validation"], raw_val)
        choice[label] = c.as_dict()
        scorers[label]["auto"] = scorers[label][c.chosen]
        parts[label] = (x, y)
    runs = {}
    for kind in KINDS:
        heads = {}
        for label, (x, y) in parts.items():
            m = scorers[label][kind]
            raw = m.predict(x["validation"], raw_score=True)
            cal = Calibrator.fit(raw, y["validation"], cfg.calibration, cfg.min_block(len(raw)))
            heads[label] = Head(label, m, cal)
        bundle = ModelBundle(data.spec, heads)
        runs[kind] = {
            label: float(roc_auc_score(y["test"], bundle.predict_matrix(x["test"])[f"p_{label}"]))
            for label, (x, y) in parts.items()
        }
    return runs, choice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--features", type=Path, help="An existing `radar features` folder.")
    ap.add_argument("--four-runs", action="store_true", help="Train once per kind (slow).")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        features = args.features or features_of(Path(tmp), args.accounts, args.months)
        base = TrainConfig()
        data = from_snapshots(features, base)
        runs, seconds, choice = {}, {}, {}
        if not args.four_runs:
            t0 = time.perf_counter()
            runs, choice = one_fit(data, base)
            seconds["one blend training"] = time.perf_counter() - t0
        for kind in KINDS if args.four_runs else ():
            t0 = time.perf_counter()
            result = train(data, base.model_copy(update={"model": kind}))
            seconds[kind] = time.perf_counter() - t0
            runs[kind] = test_auc(result)
            if kind == "auto":
                choice = result.bundle.metadata["model_choice"]
    rows = []
    for head, c in choice.items():
        best = max(runs[k][head] for k in SINGLE)
        shortfall = best - runs["auto"][head]
        rows.append(
            {
                "head": head,
                "chosen": c["chosen"],
                "validation_roc_auc": c["validation_roc_auc"],
                "test_roc_auc": {k: runs[k][head] for k in KINDS},
                "best_single": best,
                "shortfall": shortfall,
                "ok": shortfall <= MARGIN,
            }
        )
    print(json.dumps({"features": str(features), "seconds": seconds, "heads": rows}, indent=1))
    timings = ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
    print(f"\nfeatures {features}; training seconds {timings}")
    print(
        f"{'head':20} {'chosen':9} {'auto':>7} {'lightgbm':>9} {'logistic':>9} {'blend':>7}"
        f" {'best single - auto':>19}"
    )
    for r in rows:
        t = r["test_roc_auc"]
        print(
            f"{r['head']:20} {r['chosen']:9} {t['auto']:7.4f} {t['lightgbm']:9.4f} "
            f"{t['logistic']:9.4f} {t['blend']:7.4f} {r['shortfall']:+19.4f}"
            f"{'' if r['ok'] else '  MISSED (> 0.005)'}"
        )
    met = all(r["ok"] for r in rows)
    print(
        f"target (never more than {MARGIN} below the best single candidate): "
        f"{'met' if met else 'missed'}"
    )


if __name__ == "__main__":
    main()
