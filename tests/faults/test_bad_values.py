"""Tracebacks and values accepted though wrong (findings 7 and 8)."""

from __future__ import annotations

import pandas as pd
import pytest

from features.contract import ContractError, load_dataset
from tests.cli import radar

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def set_value(data, table: str, column: str, value, row: int = 0) -> None:
    path = data / f"{table}.parquet"
    df = pd.read_parquet(path)
    df[column] = df[column].astype("float64")
    df.loc[row, column] = value
    df.to_parquet(path, index=False)


def errors_of(data) -> list:
    with pytest.raises(ContractError) as info:
        load_dataset(data)
    return info.value.report.errors


@pytest.mark.parametrize(
    ("table", "column", "value", "message"),
    [
        ("subscriptions", "seats", 1e20, "too large for a whole number"),  # was a TypeError
        ("subscriptions", "arr", float("inf"), "not a finite number"),  # summary held Infinity
        ("subscriptions", "arr", -5.0, "below the minimum 0"),
        ("subscriptions", "seats", 5e6, "above the maximum 1e+06"),
        ("usage", "events", float("inf"), "not a finite number"),  # checked in DuckDB
        ("usage", "active_users", 1e20, "too large for a whole number"),
    ],
)
def test_impossible_raw_values_are_errors_naming_table_column_row_value(
    data_copy, table, column, value, message
):
    set_value(data_copy, table, column, value)
    found = [f for f in errors_of(data_copy) if (f.table, f.column) == (table, column)]
    assert [f.message for f in found] == [message]
    assert found[0].rows == (1,) and float(found[0].values[0]) == value


def test_more_weekly_users_than_seats_allow_is_an_error(data_copy):
    """100,000 weekly active users on a 9-seat account read as 'active each week: 1111111%'."""
    subs = pd.read_parquet(data_copy / "subscriptions.parquet")
    wau = pd.read_parquet(data_copy / "weekly_active_users.parquet")
    account = wau["account_id"].iloc[0]
    seats = subs.loc[subs["account_id"] == account, "seats"].max()
    set_value(data_copy, "weekly_active_users", "active_users", 100_000)
    (found,) = [f for f in errors_of(data_copy) if f.table == "weekly_active_users"]
    assert found.column == "active_users" and found.rows == (1,)
    assert "more than 2 weekly active users per seat" in found.message and seats < 50_000


@pytest.mark.slow
def test_the_cli_names_the_value_without_a_traceback(data_copy, tmp_path):
    set_value(data_copy, "subscriptions", "seats", 1e20)
    for cmd in ("validate", "features"):
        extra = ("--out", str(tmp_path / "f")) if cmd == "features" else ()
        r = radar(cmd, "--data", str(data_copy), *extra, cwd=tmp_path)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert "subscriptions.seats: too large for a whole number" in r.stderr


@pytest.mark.parametrize(
    ("features", "field"),
    [
        ({"seats": -3}, "seats"),
        ({"seat_utilisation": 5.0}, "seat_utilisation"),
        ({"arr": -1000}, "arr"),
        ({"days_to_renewal": -4.4e16}, "days_to_renewal"),  # an overflowing renewal date
        ({"csat_90d": 9}, "csat_90d"),
    ],
)
def test_implausible_what_if_values_are_400(client, features, field):
    """Negative seats, utilisation 5.0 and negative ARR scored as health 100, green."""
    r = client.post(
        "/v1/score/snapshots", json={"snapshots": [{"account_id": "A", "features": features}]}
    )
    assert r.status_code == 400, r.text
    assert [e["field"] for e in r.json()["errors"]] == [f"snapshots[0].features.{field}"]
