"""How often two equal configurations differ significantly, and what promotion says about them.

Trains the default configuration with several seeds on the same features and compares every
ordered pair (challenger, champion) on the test window with the paired bootstrap of
`radar promote`: how many differences are significant at 95% (about 5% expected by chance),
the interval widths, and how many pairs each pair of margins would promote.

    .venv/bin/python benchmarks/bench_equal_challengers.py --features DIR [--seeds 4]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from training.config import PromotionConfig, TrainConfig
from training.promotion import paired_comparison
from training.train import from_snapshots, train

MARGINS = ((0.005, 0.01), (0.01, 0.02), (0.01, 0.03), (0.02, 0.03))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="`radar features` output")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    cfgs = {s: TrainConfig.from_yaml(seed=s, shap_sample=50) for s in seeds}
    data = from_snapshots(args.features, cfgs[0])
    results = {s: train(data, c) for s, c in cfgs.items()}
    rows = []
    for a, b in itertools.permutations(seeds, 2):
        for head, h in results[a].heads.items():
            ta, tb = h.test, results[b].heads[head].test
            ok = ta["y"].notna().to_numpy()
            y = ta["y"][ok].to_numpy(dtype=float)
            pa, pb = ta["model"][ok].to_numpy(), tb["model"][ok].to_numpy()
            for r in paired_comparison(y, pa, pb, PromotionConfig()):
                rows.append({"challenger": a, "champion_seed": b, "head": head, "n": len(y), **r})
    t = pd.DataFrame(rows)
    significant = ((t["low"] > 0) | (t["high"] < 0)).sum()
    print(f"{args.features}: {args.seeds} seeds, {len(t)} comparisons, test rows {t['n'].max():,}")
    print(f"significant at 95%: {significant}/{len(t)} ({significant / len(t):.1%})")
    for m, g in t.groupby("metric"):
        w = g["high"] - g["low"]
        print(f"{m}: interval width median {np.median(w):.4f}, max {w.max():.4f}")
    ll = t[t["metric"] == "log_loss"]
    share = ll["high"] / ll["champion"]
    print(
        "log loss: upper end / champion's log loss by head (median, max): "
        + ", ".join(f"{h} {s.median():.1%} {s.max():.1%}" for h, s in share.groupby(ll["head"]))
    )
    pairs = t.groupby(["challenger", "champion_seed"])
    for auc_m, ll_m in MARGINS:
        passed = sum(
            bool(
                (g.loc[g["metric"] == "roc_auc", "low"] >= -auc_m).all()
                and (
                    g.loc[g["metric"] == "log_loss", "high"]
                    <= ll_m * g.loc[g["metric"] == "log_loss", "champion"]
                ).all()
            )
            for _, g in pairs
        )
        print(f"margins ROC-AUC {auc_m}, log loss {ll_m:.0%}: {passed}/{pairs.ngroups} promoted")


if __name__ == "__main__":
    main()
