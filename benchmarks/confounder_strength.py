"""How strong the recorded signals are as confounders: a yardstick for the robustness values.

The robustness value of a play (effects/sensitivity.py) is the strength an unseen factor
would need to erase its effect. Whether 0.5% is a little or a lot is read against the signals
one can see: hide a group of them, estimate again, and measure the strength the group had
(the share of the outcome's residual variance it explains, c_y, and of the Riesz
representer's, c_t; Chernozhukov et al. 2022), with the equal-strength equivalent the
robustness value is on (c with c / sqrt(1 - c) = sqrt(c_y c_t / (1 - c_t))) and how far
hiding it moved each effect.

    .venv/bin/python benchmarks/confounder_strength.py --accounts 5000 --seed 1 \\
        --hide "usage_*,seat_utilisation" --hide seat_utilisation --hide nps_latest
    .venv/bin/python benchmarks/confounder_strength.py --data DIR --hide nps_latest
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import tempfile
import warnings
from pathlib import Path


def equal_strength(c_y: float, c_t: float) -> float:
    """The strength c in both (c_y = c_t = c) with the same bias bound as (c_y, c_t)."""
    if c_y <= 0 or c_t <= 0:
        return 0.0
    target = math.sqrt(c_y * c_t / (1 - c_t))  # c / sqrt(1 - c) = target
    return (-(target**2) + target * math.sqrt(target**2 + 4)) / 2


def main() -> None:
    """Estimate with every signal, then with each group hidden; print the strengths."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="A world with plays (radar generate --plays); else generated.")
    ap.add_argument("--accounts", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hide", action="append", required=True, help="Columns (globs, commas).")
    args = ap.parse_args()

    from effects.config import EffectsConfig
    from effects.estimate import covariates, estimate_effects
    from effects.run import load_from_data
    from effects.sensitivity import params

    warnings.simplefilter("ignore")
    cfg = EffectsConfig()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from features.synthetic.dataset import generate_dataset
            from features.synthetic.process import SyntheticConfig

            data = str(Path(tmp) / "data")
            plays = SyntheticConfig.from_yaml(None, plays={"enabled": True})
            generate_dataset(data, args.accounts, 24, args.seed, plays)
        table, _ = load_from_data(data, cfg)
    table = table[table["outcome"].notna()]
    full = estimate_effects(table, cfg)
    seen = {p.play: params(full.rows, p.play) for p in full.plays}
    print(f"{table['account_id'].nunique():,} accounts, {len(table):,} rows; robustness values:")
    for p in full.plays:
        rv = p.robustness
        print(f"  {p.play:20s} {p.effect.estimate:+.4f}  interval {rv.interval if rv else 0:.2%}")
    head = f"{'hidden':36s} {'play':20s} {'c_y':>7s} {'c_t':>7s} {'equal':>7s}"
    print(f"{head} {'effect moves':>16s}")
    for group in args.hide:
        globs = group.split(",")
        cols = [c for c in covariates(table) if any(fnmatch.fnmatch(c, g) for g in globs)]
        hidden = estimate_effects(table.drop(columns=cols), cfg)
        for p in hidden.plays:
            long, short = seen[p.play], params(hidden.rows, p.play)
            c_y, c_t = 1 - long.sigma / short.sigma, 1 - short.nu / long.nu
            print(
                f"{group[:36]:36s} {p.play:20s} {c_y:+7.2%} {c_t:+7.2%} "
                f"{equal_strength(c_y, c_t):7.2%} {long.theta:+.4f} -> {short.theta:+.4f}"
            )


if __name__ == "__main__":
    main()
