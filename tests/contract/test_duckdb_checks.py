"""The DuckDB checks of file tables give exactly the findings of the pandas loader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.contract import DUCKDB_CHECKABLE, load_dataset, validate_dataset
from features.raw import read_frame
from features.schema import TABLES

Edit = Callable[[pd.DataFrame], pd.DataFrame]


def _rewrite(data: Path, table: str, edit: Edit, fmt: str) -> None:
    """Rewrite ``table`` after ``edit``, as all-text CSV or as Parquet."""
    src = data / f"{table}.parquet"
    df = pd.read_parquet(src)
    src.unlink()
    if fmt == "csv":
        edit(df.astype(object)).to_csv(data / f"{table}.csv", index=False)
    else:
        edit(df).to_parquet(data / f"{table}.parquet", index=False)


def _findings(data: Path, in_duckdb: tuple[str, ...]) -> list[str]:
    try:
        report = load_dataset(data, strict=False, in_duckdb=in_duckdb).report
    except Exception:  # noqa: BLE001 - the other path must fail the same way
        report = validate_dataset(data)
    return [str(f) for f in report.findings] + report.missing_optional


def _set(df: pd.DataFrame, row: int, col: str, value: object) -> pd.DataFrame:
    df = df.astype({col: object})
    df.loc[row, col] = value
    return df


def _dup(row: int) -> Edit:
    return lambda df: pd.concat([df, df.iloc[[row]]], ignore_index=True)


CASES: list[tuple[str, str, Edit]] = [
    ("usage", "csv", lambda df: _set(_set(df, 0, "active_users", "many"), 1, "events", "2.5")),
    ("usage", "csv", lambda df: _set(_set(df, 2, "events", None), 3, "date", "2025-02-30")),
    ("usage", "csv", lambda df: _set(_set(df, 4, "events", "-3"), 5, "events", "nan")),
    ("usage", "csv", _dup(7)),
    ("usage", "csv", lambda df: _set(df, 9, "account_id", "NOPE-1")),
    ("usage", "csv", lambda df: df.drop(columns=["events"]).assign(extra=1)),
    ("usage", "parquet", _dup(3)),
    ("usage", "parquet", lambda df: _set(df, 2, "active_users", -1).astype({"active_users": int})),
    ("usage", "parquet", lambda df: _set(df, 1, "events", np.nan).astype({"events": float})),
    ("usage", "parquet", lambda df: _set(df, 1, "events", 2.5).astype({"events": float})),
    ("weekly_active_users", "parquet", lambda df: _set(df, 0, "account_id", "ZZZ")),
    ("weekly_active_users", "csv", lambda df: _set(df, 3, "week_start", "someday")),
    (
        "support_tickets",
        "csv",
        lambda df: _set(_set(df, 5, "severity", "urgent"), 6, "severity", " Critical"),
    ),
    (
        "support_tickets",
        "csv",
        lambda df: _set(_set(df, 2, "escalated", "maybe"), 3, "escalated", "YES"),
    ),
    ("support_tickets", "csv", lambda df: _set(_set(df, 0, "csat", "6"), 1, "csat", "0")),
    ("support_tickets", "csv", lambda df: _set(df, 0, "resolved_date", "1999-01-01")),
    ("support_tickets", "parquet", _dup(4)),
    ("engagement", "csv", lambda df: _set(_set(df, 0, "kind", "Email Reply"), 1, "kind", "party")),
    ("invoices", "parquet", lambda df: _set(df, 2, "amount", -10.0).astype({"amount": float})),
    ("invoices", "csv", lambda df: _set(df, 2, "amount", "ten")),
    ("milestones", "csv", lambda df: _set(df, 0, "target_date", "2000-01-01")),
]


@pytest.mark.parametrize(("table", "fmt", "edit"), CASES)
def test_duckdb_findings_equal_pandas_findings(data_copy, table, fmt, edit):
    _rewrite(data_copy, table, edit, fmt)
    in_pandas = _findings(data_copy, ())
    assert in_pandas, "the edit should break a rule"
    assert _findings(data_copy, DUCKDB_CHECKABLE) == in_pandas


def test_activity_after_churn_found_in_both(data_copy):
    subs = pd.read_parquet(data_copy / "subscriptions.parquet")
    churned = subs.loc[subs["change_type"] == "churn"].iloc[0]

    def edit(df):
        extra = df.iloc[[0, 1]].copy()
        extra["account_id"] = churned["account_id"]
        extra["date"] = pd.Timestamp(churned["start_date"]) + pd.Timedelta("5D")
        return pd.concat([df, extra], ignore_index=True)

    _rewrite(data_copy, "engagement", edit, "parquet")
    in_pandas = _findings(data_copy, ())
    assert any("after the account churned" in f for f in in_pandas)
    assert _findings(data_copy, DUCKDB_CHECKABLE) == in_pandas


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_typed_view_equals_pandas_loader(data_copy, fmt):
    for name in DUCKDB_CHECKABLE:
        _rewrite(data_copy, name, lambda df: df, fmt)
    ds = load_dataset(data_copy, in_duckdb=DUCKDB_CHECKABLE)
    for name in DUCKDB_CHECKABLE:
        source = ds.file_table(name)
        assert source is not None and source.rows == len(ds[name])
        table = TABLES[name]
        via_duckdb = duckdb.sql(source.select_sql()).df().astype(table.pandas_dtypes())
        via_pandas = read_frame(source.path, table)
        pd.testing.assert_frame_equal(via_duckdb, via_pandas)
        for col in (c.name for c in table.columns if c.kind == "date"):
            lo, hi = ds.date_range(name, col)
            assert (lo, hi) == (via_pandas[col].min(), via_pandas[col].max()) or (
                pd.isna(lo) and via_pandas[col].isna().all()
            )


def test_only_checkable_tables_go_to_duckdb(small_dataset):
    with pytest.raises(ValueError, match="accounts"):
        load_dataset(small_dataset, in_duckdb=("accounts",))


def test_rules_translate_to_spark_sql_with_the_engines_differences():
    """The one rule list, in Spark SQL: 64-bit hashes, structs, no isinf, no time zone."""
    from features.sparkcheck import duck_type, to_spark_sql

    got = to_spark_sql(
        'SELECT count(DISTINCT hash("t_a", "t_b")), row("t_a"), '
        "count(*) FILTER (WHERE isinf(x)), TRY_CAST(d AS TIMESTAMP), "
        "regexp_replace(s, '^\\s+|\\s+$', '', 'g') FROM v GROUP BY hash(\"t_a\")"
    )
    assert "XXHASH64(`t_a`, `t_b`)" in got and "GROUP BY XXHASH64(`t_a`)" in got
    assert "STRUCT(`t_a`)" in got and "ABS(x) = CAST('Infinity' AS DOUBLE)" in got
    assert "TRY_CAST(d AS TIMESTAMP_NTZ)" in got
    # Spark reads backslashes in literals as escapes: the pattern is doubled, DuckDB's 'g'
    # flag dropped (Spark replaces every match).
    assert "REGEXP_REPLACE(s, '^\\\\s+|\\\\s+$', '')" in got
    assert "HASH(" not in got.replace("XXHASH64(", "") and "IS_INF" not in got
    assert duck_type("decimal(10,2)") == "DECIMAL(10,2)" and duck_type("timestamp_ntz") == (
        "TIMESTAMP"
    )
