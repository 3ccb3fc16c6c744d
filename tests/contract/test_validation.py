"""Each class of bad input is caught with a message naming table, column, rows and values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract import ContractError, load_dataset, validate_dataset
from radar.cli import app


def as_csv(data: Path, table: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """Rewrite ``table`` as CSV (all text) after ``edit``; return the edited frame."""
    src = data / f"{table}.parquet"
    df = pd.read_parquet(src).astype(object)
    src.unlink()
    df = edit(df)
    df.to_csv(data / f"{table}.csv", index=False)
    return df


def only_error(data: Path):
    report = validate_dataset(data)
    assert len(report.errors) == 1, report.summary()
    return report.errors[0]


def test_generated_data_is_valid(data_copy):
    report = validate_dataset(data_copy)
    assert report.ok, report.summary()
    dataset = load_dataset(data_copy)
    assert dataset["subscriptions"]["start_date"].dtype == "datetime64[s]"
    assert dataset["usage"]["active_users"].dtype == "Int64"
    assert set(dataset["accounts"]["segment"]) <= {"enterprise", "mid_market", "smb"}


def test_csv_roundtrip_and_lenient_category_spelling(data_copy):
    def edit(df):
        df.loc[0, "segment"] = "Mid-Market"
        return df

    as_csv(data_copy, "accounts", edit)
    dataset = load_dataset(data_copy)
    assert dataset["accounts"].loc[0, "segment"] == "mid_market"


def test_missing_required_table(data_copy):
    (data_copy / "usage.parquet").unlink()
    f = only_error(data_copy)
    assert f.table == "usage" and "required table missing" in f.message


def test_subscriptions_are_optional_and_their_absence_is_noted(data_copy):
    (data_copy / "subscriptions.parquet").unlink()
    report = validate_dataset(data_copy)
    assert report.ok and "subscriptions" in report.missing_optional
    assert not any("subscriptions row" in str(w) for w in report.warnings)  # none expected


def test_missing_optional_table_is_noted_not_an_error(data_copy):
    (data_copy / "milestones.parquet").unlink()
    report = validate_dataset(data_copy)
    assert report.ok
    assert report.missing_optional == ["milestones", "csm_actions"]


def test_missing_required_column(data_copy):
    as_csv(data_copy, "support_tickets", lambda df: df.drop(columns=["severity"]))
    f = only_error(data_copy)
    assert (f.table, f.column) == ("support_tickets", "severity")
    assert "required column missing" in f.message


def test_unparseable_date(data_copy):
    def edit(df):
        df["start_date"] = df["start_date"].astype(str)
        df.loc[3, "start_date"] = "2025-13-45"
        df.loc[7, "start_date"] = "yesterday"
        return df

    as_csv(data_copy, "subscriptions", edit)
    f = only_error(data_copy)
    assert (f.table, f.column, f.rows, f.values) == (
        "subscriptions",
        "start_date",
        (4, 8),
        ("2025-13-45", "yesterday"),
    )
    assert "not a date" in str(f) and "row 4 ('2025-13-45')" in str(f)


def test_not_a_number_and_not_whole(data_copy):
    def edit(df):
        df.loc[0, "active_users"] = "many"
        df.loc[1, "events"] = "2.5"
        return df

    as_csv(data_copy, "usage", edit)
    errors = {(f.column, f.message, f.rows) for f in validate_dataset(data_copy).errors}
    assert errors == {
        ("active_users", "not a number", (1,)),
        ("events", "not a whole number", (2,)),
    }


def test_bad_category(data_copy):
    def edit(df):
        df.loc[5, "severity"] = "urgent"
        return df

    as_csv(data_copy, "support_tickets", edit)
    f = only_error(data_copy)
    assert (f.column, f.rows, f.values) == ("severity", (6,), ("urgent",))
    assert "low, medium, high, critical" in f.message


def test_bad_boolean(data_copy):
    def edit(df):
        df.loc[2, "escalated"] = "maybe"
        return df

    as_csv(data_copy, "support_tickets", edit)
    f = only_error(data_copy)
    assert (f.column, f.rows, f.message) == ("escalated", (3,), "not true/false")


def test_empty_required_value(data_copy):
    def edit(df):
        df.loc[1, "customer_since"] = None
        return df

    as_csv(data_copy, "accounts", edit)
    f = only_error(data_copy)
    assert (f.table, f.column, f.rows) == ("accounts", "customer_since", (2,))
    assert "empty value" in f.message


def test_out_of_range(data_copy):
    def edit(df):
        df.loc[0, "score"] = 11
        df.loc[4, "score"] = -1
        return df

    as_csv(data_copy, "nps_responses", edit)
    messages = {(f.column, f.message, f.rows, f.values) for f in validate_dataset(data_copy).errors}
    assert messages == {
        ("score", "above the maximum 10", (1,), (11,)),
        ("score", "below the minimum 0", (5,), (-1,)),
    }


def test_negative_arr(data_copy):
    def edit(df):
        df.loc[2, "arr"] = -500.0
        return df

    as_csv(data_copy, "subscriptions", edit)
    f = only_error(data_copy)
    assert (f.column, f.rows, f.values) == ("arr", (3,), (-500.0,))


def test_duplicate_key(data_copy):
    as_csv(data_copy, "accounts", lambda df: pd.concat([df, df.iloc[[4]]], ignore_index=True))
    report = validate_dataset(data_copy)
    (f,) = [e for e in report.errors if e.table == "accounts"]
    assert f.column == "account_id" and "duplicate key" in f.message
    assert f.rows == (301,)


def test_unknown_account_reference(data_copy):
    def edit(df):
        df.loc[9, "account_id"] = "NOPE-1"
        return df

    as_csv(data_copy, "invoices", edit)
    f = only_error(data_copy)
    assert (f.table, f.column, f.rows, f.values) == ("invoices", "account_id", (10,), ("NOPE-1",))
    assert "not found in accounts.account_id" in f.message


def test_date_order(data_copy):
    def edit(df):
        df["resolved_date"] = df["resolved_date"].astype(object)
        df.loc[0, "resolved_date"] = pd.Timestamp(df.loc[0, "created_date"]) - pd.Timedelta("3D")
        return df

    as_csv(data_copy, "support_tickets", edit)
    f = only_error(data_copy)
    assert (f.column, f.rows) == ("resolved_date", (1,))
    assert "resolved_date is before created_date" in f.message


def test_nps_contact_of_another_account(data_copy):
    contacts = pd.read_parquet(data_copy / "contacts.parquet")

    def edit(df):
        other = contacts.loc[contacts["account_id"] != df.loc[0, "account_id"], "contact_id"]
        df.loc[0, "contact_id"] = other.iloc[0]
        return df

    as_csv(data_copy, "nps_responses", edit)
    f = only_error(data_copy)
    assert (f.table, f.column, f.rows) == ("nps_responses", "contact_id", (1,))
    assert "another account" in f.message


def test_both_csv_and_parquet_is_ambiguous(data_copy):
    pd.read_parquet(data_copy / "accounts.parquet").to_csv(data_copy / "accounts.csv", index=False)
    f = only_error(data_copy)
    assert f.table == "accounts" and "accounts.parquet and accounts.csv" in f.message


def test_unreadable_file(data_copy):
    (data_copy / "engagement.parquet").write_bytes(b"not parquet at all")
    f = only_error(data_copy)
    assert f.table == "engagement" and "cannot read engagement.parquet" in f.message


def test_activity_after_churn_is_a_warning(data_copy):
    subs = pd.read_parquet(data_copy / "subscriptions.parquet")
    churned = subs.loc[subs["change_type"] == "churn"].iloc[0]

    def edit(df):
        extra = df.iloc[[0]].copy()
        extra["account_id"] = churned["account_id"]
        extra["date"] = pd.Timestamp(churned["start_date"]) + pd.Timedelta("5D")
        return pd.concat([df, extra], ignore_index=True)

    as_csv(data_copy, "usage", edit)
    report = validate_dataset(data_copy)
    assert report.ok
    (w,) = [w for w in report.warnings if w.table == "usage"]
    assert w.column == "date" and "after the account churned" in w.message


def test_strict_load_raises_with_full_report(data_copy):
    def edit(df):
        df.loc[0, "amount"] = "ten"
        return df

    as_csv(data_copy, "invoices", edit)
    with pytest.raises(ContractError) as exc:
        load_dataset(data_copy)
    assert "invoices.amount: not a number" in str(exc.value)


def test_cli_validate_exit_codes(data_copy, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "--data", str(data_copy)])
    assert ok.exit_code == 0, ok.output
    assert "valid" in ok.output

    def edit(df):
        df.loc[1, "seats"] = "-3"
        return df

    as_csv(data_copy, "subscriptions", edit)
    bad = runner.invoke(app, ["validate", "--data", str(data_copy)])
    assert bad.exit_code == 1
    assert "subscriptions.seats: below the minimum 0" in bad.output
    assert "row 2 (-3)" in bad.output
    missing = runner.invoke(app, ["validate", "--data", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_optional_column_may_be_absent(data_copy):
    as_csv(data_copy, "accounts", lambda df: df.drop(columns=["csm_owner", "region"]))
    dataset = load_dataset(data_copy)
    assert dataset["accounts"]["csm_owner"].isna().all()
    assert list(dataset["accounts"].columns) == [
        "account_id",
        "name",
        "segment",
        "industry",
        "region",
        "customer_since",
        "csm_owner",
    ]


def test_segment_is_optional_and_empty_reads_unknown(data_copy):
    def edit(df):
        df.loc[2, "segment"] = None  # empty
        df.loc[3, "segment"] = "   "  # blank
        df.loc[4, "segment"] = "Unknown"
        return df

    as_csv(data_copy, "accounts", edit)
    ds = load_dataset(data_copy)
    assert ds.report.ok and not ds.report.errors
    assert list(ds["accounts"]["segment"].iloc[2:5]) == ["unknown"] * 3
    assert ds["accounts"]["segment"].iloc[[0, 1, 5]].isin(("enterprise", "mid_market", "smb")).all()
    csv = data_copy / "accounts.csv"
    original = pd.read_csv(csv)
    original.drop(columns=["segment"]).to_csv(csv, index=False)
    absent = load_dataset(data_copy)
    assert (absent["accounts"]["segment"] == "unknown").all()
    original.loc[7, "segment"] = "galactic"
    original.to_csv(csv, index=False)
    f = only_error(data_copy)
    assert (f.column, f.rows, f.values) == ("segment", (8,), ("galactic",))
