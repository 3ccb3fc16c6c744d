"""The forecasts' figures: health forecast MAE and interval coverage, satisfaction heads' quality.

On synthetic data (seed 1): the health forecast at 30 and 90 days on the test window (MAE
against "the same as today", coverage of the split-conformal interval, target 0.85-0.95), and
the satisfaction heads (ROC-AUC, ECE, log loss) beside the logistic model, the health score and,
for the detractor head, an oracle: the chance of a 0-6 answer given the true latent health of
the month of the account's next answer (the generator draws NPS as round(base + slope x health
+ noise)); it knows the future latent state, so it is an upper bound, not a fair rival.

    .venv/bin/python benchmarks/bench_forecasts.py --accounts 2000
    .venv/bin/python benchmarks/bench_forecasts.py --features /tmp/f2k/features
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from common import features_of  # benchmarks/common.py (the script's folder is on sys.path)
from scipy.stats import norm

from features.catalogue import DETRACTOR_MAX_SCORE, SATISFACTION_WINDOW_DAYS
from features.synthetic.process import SyntheticConfig
from training.config import TrainConfig
from training.forecast import train_forecasts
from training.train import from_snapshots


def detractor_oracle(raw: Path, keys: pd.DataFrame) -> pd.Series:
    """P(next answer 0-6 | latent health of the answer's month), per snapshot; NaN without one."""
    gt = raw / "ground_truth"
    params = yaml.safe_load((gt / "process.yaml").read_text())["config"]
    o = SyntheticConfig.model_validate(params).observation
    lat = pd.read_parquet(gt / "latent_monthly.parquet")[["account_id", "month", "health"]]
    nps = pd.read_parquet(raw / "nps_responses.parquet")[["account_id", "date"]]
    nps["date"] = pd.to_datetime(nps["date"]).astype("datetime64[ns]")
    left = keys.assign(
        at=pd.to_datetime(keys["as_of"]).astype("datetime64[ns]") + pd.Timedelta(days=1),
        _pos=np.arange(len(keys)),
    ).sort_values("at")
    right = nps.rename(columns={"date": "at"}).drop_duplicates().sort_values("at")
    right["answer"] = right["at"]
    nxt = pd.merge_asof(left, right, on="at", by="account_id", direction="forward")
    nxt = nxt.sort_values("_pos")
    within = (nxt["answer"] - nxt["at"]).dt.days < SATISFACTION_WINDOW_DAYS
    nxt["month"] = nxt["answer"].dt.to_period("M").dt.to_timestamp()
    lat["month"] = pd.to_datetime(lat["month"]).astype("datetime64[ns]")
    h = nxt.merge(lat, on=["account_id", "month"], how="left")["health"].to_numpy()
    # score = clip(round(base + slope * h + noise * e)): <= 6 when the unrounded value < 6.5
    p = norm.cdf((DETRACTOR_MAX_SCORE + 0.5 - o.nps_base - o.nps_health * h) / o.nps_noise)
    return pd.Series(np.where(within.to_numpy(), p, np.nan), index=keys.index)


def main() -> None:
    """Build (or read) the features, train the forecasts, print their test-window figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--features", type=Path, help="a `radar features` folder to reuse")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        features = args.features or features_of(Path(tmp), args.accounts, args.months)
        cfg = TrainConfig.from_yaml(**{"forecasts.baselines": True})  # the rivals' figures
        data = from_snapshots(features, cfg)
        raw = Path(data.source["raw_data"])
        keys = data.frame[["account_id", "as_of"]]
        oracle = keys.assign(p_nps_detractor=detractor_oracle(raw, keys).to_numpy())
        data = dataclasses.replace(data, oracle=oracle)
        t0 = time.perf_counter()
        result = train_forecasts(data, cfg)
        seconds = time.perf_counter() - t0
    rows = [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
        for r in result.evaluation
    ]
    print(json.dumps({"seconds": round(seconds, 1), "notes": result.notes}, indent=1))
    health = pd.DataFrame([r for r in rows if "forecast" in r])
    sat = pd.DataFrame([r for r in rows if "head" in r])
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(health[["forecast", "predictor", "rows", "mae", "coverage", "mean_width"]])
        print(sat[["head", "predictor", "roc_auc", "ece", "log_loss", "brier"]])


if __name__ == "__main__":
    main()
