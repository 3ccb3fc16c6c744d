"""Rows dated after the data's reference date (finding 3)."""

from __future__ import annotations

import pandas as pd
import pytest

from features.contract import ContractError, load_dataset
from tests.cli import radar


def add_future_usage(data) -> int:
    """Append one usage row dated 2099-01-01; return its 1-based data row."""
    path = next(data.glob("usage.*"))
    usage = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    row = usage.iloc[[0]].copy()
    row["date"] = pd.Timestamp("2099-01-01") if path.suffix == ".parquet" else "2099-01-01"
    usage = pd.concat([usage, row], ignore_index=True)
    if path.suffix == ".parquet":
        usage.to_parquet(path, index=False)
    else:
        usage.to_csv(path, index=False)
    return len(usage)


def test_one_future_row_is_an_error_naming_table_column_row_and_value(data_copy):
    """It used to pass validation and move "now" to 2099 (888 as-of dates)."""
    row = add_future_usage(data_copy)
    with pytest.raises(ContractError) as info:
        load_dataset(data_copy, now="2026-12-01")
    (finding,) = [f for f in info.value.report.errors if f.table == "usage"]
    assert finding.column == "date" and finding.rows == (row,)
    assert pd.Timestamp(finding.values[0]) == pd.Timestamp("2099-01-01")
    assert "dated after the reference date 2026-12-01" in str(finding)


def test_excluded_with_a_flag_the_row_is_a_warning_and_left_out(data_copy):
    add_future_usage(data_copy)
    ds = load_dataset(data_copy, now="2026-12-01", future="exclude")
    assert [f.table for f in ds.report.warnings if "reference date" in f.message] == ["usage"]
    assert ds.date_range("usage", "date")[1] < pd.Timestamp("2027-01-01")


@pytest.mark.slow
def test_the_cli_refuses_then_excludes(data_copy, tmp_path):
    add_future_usage(data_copy)
    r = radar("validate", "--data", str(data_copy), cwd=tmp_path)
    assert r.returncode == 1 and "usage.date" in r.stderr and "2099-01-01" in r.stderr
    assert "Traceback" not in r.stderr
    r = radar("validate", "--data", str(data_copy), "--future-rows", "exclude", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "excluded" in r.stderr
    r = radar("validate", "--data", str(data_copy), "--now", "someday", cwd=tmp_path)
    assert r.returncode == 1 and "--now 'someday' is not a date" in r.stderr
    r = radar("validate", "--data", str(data_copy), "--now", "2099-06-01", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_radar_score_checks_future_rows_as_validate_does(data_copy, registry, tmp_path):
    """`radar score` used to take the 2099 row and score everyone as of 2099-01-01."""
    add_future_usage(data_copy)
    args = ["score", "--data", str(data_copy), "--as-of", "latest", "--tracking-uri", registry]
    r = radar(*args, "--out", str(tmp_path / "a.csv"), cwd=tmp_path)
    assert r.returncode == 1 and "usage.date" in r.stderr and "2099-01-01" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "a.csv").exists()
    out = tmp_path / "b.csv"
    r = radar(*args, "--out", str(out), "--future-rows", "exclude", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert pd.read_csv(out)["as_of"].max() < "2027-01-01"  # the data's own last day
    r = radar(*args, "--out", str(out), "--future-rows", "later", cwd=tmp_path)
    assert r.returncode == 1 and "--future-rows: use error or exclude" in r.stderr
