"""Churn and expansion from activity, for accounts without contract rows (`--activity-churn-days`).

A hand-made log of a few accounts pins down each rule. The leak property test
(tests/features/test_pipeline.py) checks on a usage-only copy of the synthetic data that
features at T read nothing after T and labels at T nothing after T + 90 days.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig
from features.contract import load_dataset
from features.leakage import differences, rewrite_after
from features.pipeline import build_snapshots
from features.snapshots import as_of_dates

ACTIVITY = FeatureConfig(activity_churn_days=30)


def days(first: str, last: str) -> pd.DatetimeIndex:
    return pd.date_range(first, last, freq="D")


def usage_rows(account: str, dates: pd.DatetimeIndex, users: int = 2) -> pd.DataFrame:
    return pd.DataFrame(
        {"account_id": account, "date": dates, "feature": "reports", "active_users": users,
         "events": 5 * users}
    )  # fmt: skip


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    """Seven accounts over 2025, each showing one rule; A7 alone has a contract."""
    out = tmp_path_factory.mktemp("activity") / "data"
    out.mkdir()
    ids = [f"A{i}" for i in range(1, 8)]
    since = {a: "2025-01-01" for a in ids} | {"A4": "2025-09-15"}
    pd.DataFrame(
        {"account_id": ids, "name": ids, "segment": "smb", "customer_since": list(since.values())}
    ).to_csv(out / "accounts.csv", index=False)
    year = days("2025-01-01", "2025-12-31")
    usage = pd.concat(
        [
            usage_rows("A1", year),  # active all year
            usage_rows("A2", days("2025-01-01", "2025-06-10")),  # silent from 11 June
            # a 40-day gap, 11 May .. 19 June, that straddles the 31 May snapshot
            usage_rows("A3", year[(year <= "2025-05-10") | (year >= "2025-06-20")]),
            usage_rows("A4", days("2025-10-01", "2025-12-31")),  # new: nothing until October
            usage_rows("A5", days("2025-01-01", "2025-08-31")),  # 2 users a day, then 5
            usage_rows("A5", days("2025-09-01", "2025-12-31"), users=5),
            usage_rows("A6", year),  # steady use, spend triples from September
            usage_rows("A7", days("2025-01-01", "2025-06-30")),  # a contract, silent from July
        ]
    )
    usage.assign(date=usage["date"].dt.date).to_csv(out / "usage.csv", index=False)
    months = pd.date_range("2025-01-15", "2025-12-15", freq="MS") + pd.Timedelta(days=14)
    invoices = [
        {"account_id": a, "due_date": d.date(), "paid_date": d.date(),
         "amount": 300.0 if (a == "A6" and d.month >= 9) else 100.0}
        for a in ("A1", "A6") for d in months
    ]  # fmt: skip
    inv = pd.DataFrame(invoices)
    inv.insert(0, "invoice_id", [f"I{i}" for i in range(len(inv))])
    inv.to_csv(out / "invoices.csv", index=False)
    pd.DataFrame(
        [{"account_id": "A7", "start_date": "2025-01-01", "end_date": "2025-12-31", "arr": 1200,
          "seats": 5, "plan_tier": "starter", "billing_term": "annual", "change_type": "new"}]
    ).to_csv(out / "subscriptions.csv", index=False)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def snaps(log_dir):
    return build_snapshots(load_dataset(log_dir), ACTIVITY).snapshots.set_index(
        ["account_id", "as_of"]
    )


def at(snaps, account: str, date: str) -> pd.Series:
    return snaps.loc[(account, pd.Timestamp(date))]


def test_churn_is_n_quiet_days_inside_the_horizon(snaps):
    # A2 is last active on 10 June: at 31 May, 20 quiet days in the next 30, 80 in the next 90.
    assert at(snaps, "A2", "2025-05-31")[["churn_30d", "churn_90d"]].tolist() == [0, 1]
    assert at(snaps, "A2", "2025-06-30")["churn_30d"] == 1  # still a customer on 30 June
    assert ("A2", pd.Timestamp("2025-07-31")) not in snaps.index  # 30 quiet days: gone
    assert snaps.loc["A1", "churn_90d"].dropna().eq(0).all()


def test_churn_counts_only_quiet_days_after_t(snaps):
    # A3's 40-day gap started 21 days before 31 May: only the 19 days after it count.
    assert at(snaps, "A3", "2025-05-31")[["churn_30d", "churn_90d"]].tolist() == [0, 0]
    assert ("A3", pd.Timestamp("2025-06-30")) in snaps.index  # back on 20 June


def test_a_new_account_has_n_days_to_start(snaps):
    assert ("A4", pd.Timestamp("2025-08-31")) not in snaps.index  # not a customer yet
    assert at(snaps, "A4", "2025-09-30")["churn_30d"] == 0  # 15 days in, active from 1 Oct


def test_expansion_is_growth_beyond_the_accounts_own_level(snaps):
    assert at(snaps, "A5", "2025-08-31")["expansion_30d"] == 1  # 5 users a day after 2
    assert at(snaps, "A5", "2025-06-30")["expansion_30d"] == 0
    assert snaps.loc["A1", "expansion_30d"].dropna().eq(0).all()
    # A6's use is as steady as A1's, its spend triples: spend decides where there is some.
    assert at(snaps, "A6", "2025-08-31")["expansion_30d"] == 1
    assert at(snaps, "A6", "2025-05-31")["expansion_90d"] == 0


def test_accounts_with_contracts_keep_contract_labels_and_others_lack_contract_features(snaps):
    a7 = snaps.loc["A7"]
    assert len(a7) == 9 and a7["churn_90d"].dropna().eq(0).all()  # silent, but under contract
    assert a7["arr"].eq(1200).all()
    others = snaps.drop(index="A7", level="account_id")
    for name in ("arr", "seats", "plan_tier", "billing_term", "days_to_renewal"):
        assert others[name].isna().all(), name  # missing, not invented
    assert others["renewal_likelihood"].isna().all()
    assert others["tenure_days"].notna().all() and others["active_days_30d"].notna().all()


def test_without_the_setting_only_contracts_give_snapshots(log_dir):
    snaps = build_snapshots(load_dataset(log_dir), FeatureConfig()).snapshots
    assert set(snaps["account_id"]) == {"A7"}


def test_no_contracts_and_no_setting_is_refused_with_the_option_named(log_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(log_dir, data)
    (data / "subscriptions.csv").unlink()
    ds = load_dataset(data)
    assert "subscriptions" in ds.report.missing_optional and ds.report.ok
    with pytest.raises(ValueError, match="--activity-churn-days N"):
        build_snapshots(ds, FeatureConfig())
    snaps = build_snapshots(ds, ACTIVITY).snapshots
    assert "A7" in set(snaps["account_id"]) and snaps["arr"].isna().all()


def test_the_label_check_would_see_a_label_reading_past_its_horizon(usage_only):
    """Not vacuous: rewriting the activity inside the horizon does change the labels."""
    dates = as_of_dates(usage_only, ACTIVITY)
    T = pd.Timestamp(dates[2])
    pinned = ACTIVITY.model_copy(update={"end": T.date(), "data_end": dates[-1].date()})
    a = build_snapshots(usage_only, pinned).snapshots
    later = rewrite_after(usage_only, T, np.random.default_rng(1))  # from T on
    b = build_snapshots(later, pinned).snapshots
    a, b = a[a["as_of"] == T].reset_index(drop=True), b[b["as_of"] == T].reset_index(drop=True)
    assert len(a) == len(b) > 100
    changed = differences(a, b, ["churn_30d", "churn_90d", "expansion_30d", "expansion_90d"])
    assert changed.get("expansion_30d", 0) > 10
