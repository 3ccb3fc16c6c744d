"""Rows to score are read as `radar train --table` read the training table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data import FeatureSpec
from training.table import coerce_rows, prepare_features

NUMERIC = ("tenure", "TotalCharges", "Paperless")
CATEGORICAL = {"Contract": ("Month-to-month", "One year")}


def test_rows_are_coerced_as_training_coerced_its_table():
    table = pd.DataFrame(
        {
            "tenure": [1, 24, 7],
            "TotalCharges": ["29.85", " ", "1889.5"],
            "Paperless": ["true", "False", ""],
            "Contract": [" Month-to-month", "One year", "  "],
        }
    )
    trained, _, _ = prepare_features(table, "t.csv", set())
    spec = FeatureSpec.infer(trained, set())
    assert spec.numeric == NUMERIC and spec.categorical == CATEGORICAL
    got, absent = coerce_rows(table, spec.numeric, spec.categorical, "t.csv")
    assert absent == []
    np.testing.assert_array_equal(spec.matrix(got), spec.matrix(trained))
    assert spec.matrix(got)[1, 1] != spec.matrix(got)[1, 1]  # the blank cell is missing
    assert list(spec.matrix(got)[:, 2][:2]) == [1.0, 0.0]
    # the same values sent as JSON would send them: numbers, booleans, None
    sent = pd.DataFrame(
        {"tenure": ["1", "24", "7"], "TotalCharges": [29.85, None, 1889.5],
         "Paperless": [True, False, None], "Contract": ["Month-to-month", "One year", None]}
    )  # fmt: skip
    again, _ = coerce_rows(sent, spec.numeric, spec.categorical, "rows")
    np.testing.assert_array_equal(spec.matrix(again), spec.matrix(trained))


def test_unreadable_infinite_and_absent_columns_are_refused_by_name():
    spec = (NUMERIC, CATEGORICAL)
    ok = {"tenure": [1, 2], "TotalCharges": ["1", "2"], "Paperless": [1, 0], "Contract": ["a", "b"]}
    with pytest.raises(ValueError, match=r"t.csv.tenure: row 2: 'abc' is not a number"):
        coerce_rows(pd.DataFrame(ok | {"tenure": ["3", "abc"]}), *spec, "t.csv")
    with pytest.raises(ValueError, match=r"t.csv.TotalCharges: row 1: inf is infinite"):
        coerce_rows(pd.DataFrame(ok | {"TotalCharges": [np.inf, 1.0]}), *spec, "t.csv")
    lacking = pd.DataFrame({k: v for k, v in ok.items() if k != "Contract"})
    with pytest.raises(ValueError, match=r"t.csv: the model's feature column\(s\) 'Contract'"):
        coerce_rows(lacking, *spec, "t.csv")
    got, absent = coerce_rows(lacking, *spec, "rows", require_all=False)  # the API's rows
    assert absent == ["Contract"] and "Contract" not in got
