"""The renewal-likelihood label: renewed or churned at the next renewal decision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.catalogue import LABELS, RENEWAL_LABEL, horizon_days
from features.contract import Dataset
from features.snapshots import labels
from features.store import SnapshotStore
from features.synthetic.dataset import load_world, realised_labels
from features.synthetic.oracle import Oracle, next_renewal
from tests.synthetic.mc import monte_carlo
from training.model import enforce_horizon_order

END = pd.Timestamp("2026-06-30")
# account: (as-of, days to renewal, churn row start or None, billing term)
CASES = {
    "renews": ("2026-01-31", 60, None, "annual"),
    "churns_at_decision": ("2026-01-31", 60, "2026-04-01", "annual"),
    "churns_before_decision": ("2026-01-31", 60, "2026-03-01", "annual"),
    "churns_after_decision": ("2026-01-31", 60, "2026-04-11", "annual"),
    "decision_beyond_180_days": ("2026-01-31", 200, None, "annual"),
    "decision_at_180_days": ("2025-12-31", 180, "2026-06-29", "annual"),
    "outcome_after_data_end": ("2026-05-31", 60, None, "annual"),
    "no_term_end": ("2026-01-31", None, None, "annual"),
    "monthly_churns": ("2026-05-31", 15, "2026-06-15", "monthly"),
    "monthly_renews": ("2026-05-31", 15, None, "monthly"),
}
EXPECTED = {
    "renews": 1.0,
    "churns_at_decision": 0.0,
    "churns_before_decision": 0.0,
    "churns_after_decision": 1.0,
    "decision_beyond_180_days": None,
    "decision_at_180_days": 0.0,
    "outcome_after_data_end": None,
    "no_term_end": None,
    "monthly_churns": 0.0,
    "monthly_renews": 1.0,
}


def _hand_built() -> tuple[Dataset, pd.DataFrame]:
    subs, snaps = [], []
    for account, (as_of, days, churn, term) in CASES.items():
        base = {"account_id": account, "arr": 1200.0, "seats": 10, "plan_tier": "starter"}
        subs.append(
            base
            | {
                "start_date": pd.Timestamp("2025-01-01"),
                "end_date": pd.NaT,
                "billing_term": term,
                "change_type": "new",
            }
        )
        if churn:
            subs.append(
                base
                | {
                    "start_date": pd.Timestamp(churn),
                    "end_date": pd.NaT,
                    "billing_term": term,
                    "change_type": "churn",
                    "arr": 0.0,
                }
            )
        snaps.append(
            {
                "account_id": account,
                "as_of": pd.Timestamp(as_of),
                "days_to_renewal": np.nan if days is None else float(days),
            }
        )
    ds = Dataset({"subscriptions": pd.DataFrame(subs)}, None, Path("."))
    return ds, pd.DataFrame(snaps)


def test_renewal_label_on_a_hand_built_dataset():
    ds, snaps = _hand_built()
    out = labels(ds, snaps, END)
    assert list(out.columns) == ["account_id", "as_of", *LABELS]
    got = dict(zip(out["account_id"], out[RENEWAL_LABEL], strict=True))
    for account, want in EXPECTED.items():
        value = got[account]
        assert pd.isna(value) if want is None else value == want, (account, value)
    # the churn labels are the same as before the renewal label existed
    churn_90d = dict(zip(out["account_id"], out["churn_90d"], strict=True))
    assert churn_90d["churns_at_decision"] == 1.0 and churn_90d["renews"] == 0.0
    assert pd.isna(churn_90d["outcome_after_data_end"])


def test_renewal_horizon_is_180_days_and_outside_the_horizon_ordering():
    assert horizon_days(RENEWAL_LABEL) == 180
    assert horizon_days("churn_30d") == 30
    p = pd.DataFrame({"p_churn_30d": [0.5], "p_churn_90d": [0.2], f"p_{RENEWAL_LABEL}": [0.1]})
    ordered = enforce_horizon_order(p)
    # the crossed churn pair meets at its average; renewal likelihood has no pair
    assert ordered.loc[0, "p_churn_30d"] == ordered.loc[0, "p_churn_90d"] == 0.35
    assert ordered.loc[0, f"p_{RENEWAL_LABEL}"] == 0.1


@pytest.mark.slow
def test_label_and_oracle_agree_on_synthetic_data(long_data, long_features):
    """The feature-side decision date is the generator's: known labels have an oracle value,
    and with the whole 180 days inside the data, the oracle has one exactly where they do."""
    snaps = SnapshotStore.open(long_features).snapshots()
    world = load_world(long_data)
    idx = pd.Series(np.arange(world.n), index=world.account_ids())
    dates = np.sort(snaps["as_of"].unique())[::3]
    oracle = Oracle(world)
    parts = []
    for T in dates:
        o = oracle.probabilities(np.datetime64(T, "D"))
        o["account_id"] = world.account_ids()[o.pop("account_index").to_numpy()]
        o["as_of"] = pd.Timestamp(T)
        parts.append(o)
    o = pd.concat(parts, ignore_index=True)
    m = snaps[snaps["as_of"].isin(dates)].merge(o, on=["account_id", "as_of"], how="left")
    label, p = m[RENEWAL_LABEL], m[f"p_{RENEWAL_LABEL}"]
    assert label.notna().sum() > 1000 and (label == 0).sum() > 50
    assert p[label.notna()].notna().all()
    full = (m["as_of"] + pd.Timedelta(days=180)).to_numpy() <= world.window_end
    assert (label.notna() == p.notna())[full].all()
    # the simulation's own record of the outcome says the same as the subscriptions table
    sim = realised_labels(world, m["as_of"], idx[m["account_id"]].to_numpy())[RENEWAL_LABEL]
    np.testing.assert_array_equal(sim.to_numpy(), label.to_numpy(dtype=float, na_value=np.nan))
    known = label.notna().to_numpy()
    y, q = label[known].to_numpy(dtype=float), p[known].to_numpy()
    assert roc_auc_score(y, q) > 0.75
    assert abs(q.mean() - y.mean()) < 0.02  # calibrated on average


@pytest.mark.slow
def test_renewal_oracle_matches_monte_carlo(small_dataset):
    world = load_world(small_dataset)
    as_of = "2025-05-31"
    probs = Oracle(world).probabilities(as_of).dropna(subset=[f"p_{RENEWAL_LABEL}"])
    probs = probs.sort_values(f"p_{RENEWAL_LABEL}")
    T = np.datetime64(as_of, "D")
    for _, row in probs.iloc[[0, 3, len(probs) // 2, -1]].iterrows():
        i = int(row["account_index"])
        days = int((next_renewal(world, np.array([i]), T)[0] - T).astype(int))
        assert 0 < days <= 180
        churn, _ = monte_carlo(world, i, as_of, days, draws=200_000, seed=i)
        assert abs(row[f"p_{RENEWAL_LABEL}"] - (1 - churn)) < 0.005, (i, days)
