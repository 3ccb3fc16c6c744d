"""Purchase logs without contracts: the churn heads against a recency-frequency-monetary baseline.

Builds the purchases shape of ``byod_shapes.py`` (an order log and a CRM list drawn from the
synthetic world, no contracts; churn from activity: N quiet days), runs ``radar features``,
then trains the product's heads twice on the same rows and labels: with every feature and
without the spend / purchase-frequency columns (``features.engine.SPEND``, what the product
had before them). Beside them, on each churn head's own split rows and labels, an RFM
baseline a data scientist builds first from the raw orders (days since the last order,
orders to date, spend to date and over the last 365 days), fitted by LightGBM and by a
logistic regression on the train part. Prints test ROC-AUC per head.

Usage: ``.venv/bin/python benchmarks/bench_purchases.py [--accounts 1500] [--months 15]
[--seed 21] [--quiet-days 30] [--out DIR]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from byod_shapes import radar, raw  # noqa: E402 (after the path)

from features.engine import SPEND  # noqa: E402
from tests.features.test_partial_data import (  # noqa: E402
    purchases_log,
    purchases_to_contract,
)
from training.config import TrainConfig  # noqa: E402
from training.data import TimeSplit  # noqa: E402
from training.train import LOGISTIC, MODEL, from_snapshots, metric, train  # noqa: E402

RFM = ("recency_days", "orders_to_date", "spend_to_date", "spend_365d")


def rfm(invoices: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """Recency, frequency and monetary value of each (account_id, as_of) from the raw orders."""
    inv = invoices.assign(due_date=pd.to_datetime(invoices["due_date"]))
    out = []
    for t, rows in keys.groupby("as_of"):
        known = inv[inv["due_date"] <= t]
        g = known.groupby("account_id")
        year = known[known["due_date"] > t - pd.Timedelta(days=365)].groupby("account_id")
        f = pd.DataFrame(
            {
                "recency_days": (t - g["due_date"].max()).dt.days,
                "orders_to_date": g.size(),
                "spend_to_date": g["amount"].sum(),
                "spend_365d": year["amount"].sum(),
            }
        )
        out.append(f.reindex(rows["account_id"]).set_axis(rows.index))
    return pd.concat(out).reindex(keys.index).astype(float)


def baseline_auc(frame: pd.DataFrame, label: str, split: dict, x: pd.DataFrame) -> dict:
    """Test ROC-AUC of LightGBM and logistic RFM models fitted on the head's train part."""
    windows = {k: pd.Timestamp(v) for k, v in split.items() if k != "gap_days"}
    part = TimeSplit(**windows, gap_days=int(split["gap_days"])).assign(frame["as_of"])
    known = frame[label].notna()
    tr = ((part == "train") & known).to_numpy(dtype=bool)
    te = ((part == "test") & known).to_numpy(dtype=bool)
    y = frame[label].to_numpy(dtype=float)
    booster = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, verbose=-1, num_threads=2)
    booster.fit(x[tr], y[tr])
    filled = x.fillna(x[tr].median()).fillna(0.0)
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    logistic.fit(np.log1p(filled[tr].clip(lower=0)), y[tr])
    return {
        "rfm_lightgbm": roc_auc_score(y[te], booster.predict_proba(x[te])[:, 1]),
        "rfm_logistic": roc_auc_score(
            y[te], logistic.predict_proba(np.log1p(filled[te].clip(lower=0)))[:, 1]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1500)
    parser.add_argument("--months", type=int, default=15)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--quiet-days", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    tmp = args.out or Path(tempfile.mkdtemp(prefix="purchases-"))
    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / "purchases"
    purchases_to_contract(*purchases_log(raw(tmp, args.accounts, args.months, args.seed)), data)
    features = tmp / f"features_{args.quiet_days}"
    radar(
        "features",
        "--data",
        str(data),
        "--out",
        str(features),
        "--activity-churn-days",
        str(args.quiet_days),
        cwd=tmp,
    )
    cfg = TrainConfig()
    td = from_snapshots(features, cfg)
    heads = tuple(h for h in cfg.heads if td.frame[h].notna().any())
    cfg = cfg.model_copy(update={"heads": heads})
    after = train(td, cfg)
    without = dataclasses.replace(
        td,
        spec=dataclasses.replace(
            td.spec, numeric=tuple(c for c in td.spec.numeric if c not in SPEND)
        ),
    )
    before = train(without, cfg)
    invoices = pd.read_csv(data / "invoices.csv")
    x = rfm(invoices, td.frame[["account_id", "as_of"]])

    def auc(result, head: str, predictor: str) -> float:
        value = metric(result.evaluation, head, predictor, "roc_auc")
        return float("nan") if value is None else value

    print(
        f"purchases log, {args.accounts:,} accounts x {args.months} months, seed {args.seed}, "
        f"churn after {args.quiet_days} quiet days; test ROC-AUC"
    )
    print(
        f"{'head':<15}{'before':>8}{'after':>8}{'logistic':>10}"
        f"{'RFM lgbm':>10}{'RFM logit':>11}{'after-RFM':>11}"
    )
    for head in after.bundle.heads:
        split = after.bundle.metadata["splits"][head]
        base = baseline_auc(td.frame, head, split, x) if head.startswith("churn") else {}
        best = max(base.values()) if base else float("nan")
        a = auc(after, head, MODEL)
        print(
            f"{head:<15}{auc(before, head, MODEL):>8.4f}{a:>8.4f}"
            f"{auc(after, head, LOGISTIC):>10.4f}"
            f"{base.get('rfm_lightgbm', float('nan')):>10.4f}"
            f"{base.get('rfm_logistic', float('nan')):>11.4f}{a - best:>+11.4f}"
        )
    print(f"\nworking files in {tmp}")


if __name__ == "__main__":
    main()
