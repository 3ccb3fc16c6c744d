"""Contracts as they are sold (issue 33): term words, empty seats.

An unknown term word is refused with the way to give its length (``billing_term_months``);
empty seats are named among what could not be computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import FeatureConfig
from features.contract import load_dataset
from features.pipeline import build_snapshots
from tests.contract.test_duckdb_checks import _findings


def test_an_unknown_term_word_is_refused_naming_billing_term_months(data_copy):
    subs = pd.read_parquet(data_copy / "subscriptions.parquet")
    subs["billing_term"] = subs["billing_term"].astype(object)
    subs.loc[subs.index[:3], "billing_term"] = "semi_annual"
    subs.to_parquet(data_copy / "subscriptions.parquet", index=False)
    said = [f for f in _findings(data_copy, ()) if "billing_term" in f]
    assert len(said) == 1 and "not one of monthly, annual, multi_year" in said[0], said
    assert "as billing_term_months" in said[0] and "semi_annual" in said[0]


def test_any_term_length_is_a_model_input_and_empty_seats_are_named(data_copy):
    from features.catalogue import FEATURE_BY_NAME, TIMING
    from features.reference import reference_features

    subs = pd.read_parquet(data_copy / "subscriptions.parquet")
    months = subs["billing_term"].astype(object).map({"monthly": 1, "annual": 12})
    subs["billing_term_months"] = months.astype("Int64")
    six = subs.index[subs["billing_term"].astype(str) == "annual"][::3]
    subs.loc[six, "billing_term_months"] = 6  # semi-annual: no named term, 6 months
    subs["seats"] = pd.array([None] * len(subs), dtype="Int64")  # a plan not sold by seat
    subs.to_parquet(data_copy / "subscriptions.parquet", index=False)
    ds = load_dataset(data_copy)
    last = pd.Timestamp(ds["usage"]["date"].max())
    one = pd.DatetimeIndex([last - pd.offsets.MonthEnd(1)])  # one date: enough to see, cheap
    cfg = FeatureConfig(product_feature_columns=0)
    result = build_snapshots(ds, cfg, dates=one)
    snaps = result.snapshots
    got = snaps["billing_term_months"]
    assert FEATURE_BY_NAME["billing_term_months"].role == TIMING
    assert set(got.dropna().unique()) <= {1.0, 6.0, 12.0} and (got == 6).any()
    assert snaps.loc[got == 6, "billing_term"].isna().all()  # the word cannot say it
    assert (snaps.loc[snaps["billing_term"] == "monthly", "billing_term_months"] == 1).all()
    want = reference_features(ds, snaps[["account_id", "as_of"]], cfg)["billing_term_months"]
    np.testing.assert_array_equal(got.to_numpy(float), want.to_numpy(float))  # as the reference

    assert snaps["seats"].isna().all()
    assert {"seats", "seat_utilisation"} <= set(result.manifest["no_values"])
    assert "arr" not in result.manifest["no_values"]  # what has values is not named
