"""The same snapshots and findings from DuckDB on files, DuckDB on PostgreSQL, Spark
(local[2]) on files and Spark on PostgreSQL over JDBC.

A real PostgreSQL server (Debian's package, installed by `make test`) is started for the
module and the contract's tables are loaded into a schema; Spark runs in local mode on the
machine's Java. Slow: a Spark session and a PostgreSQL server.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.config import FeatureConfig
from features.contract import validate_dataset
from features.leakage import differences
from features.pipeline import run_features
from features.postgres import PostgresSource
from features.sources import validate_data
from features.store import MANIFEST_FILE, SNAPSHOTS_FILE
from radar.cli import app
from tests.pg import load_tables, postgres_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_url():
    """URL of a fresh PostgreSQL server's database (stopped after the module)."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def parity_data(small_dataset, tmp_path_factory):
    """The small dataset with a column outside the contract in a small table and a large log
    (a warning each, on every path), and the usage log as CSV (every value text), so both
    ways Spark types a large log are compared (weekly_active_users stays Parquet)."""
    out = tmp_path_factory.mktemp("parity") / "data"
    shutil.copytree(small_dataset, out, ignore=shutil.ignore_patterns("ground_truth"))
    for name in ("accounts", "usage"):
        df = pq.read_table(out / f"{name}.parquet").to_pandas()
        df["notes"] = "x"
        if name == "usage":
            (out / "usage.parquet").unlink()
            df.to_csv(out / "usage.csv", index=False)
        else:
            df.to_parquet(out / f"{name}.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def pg_data(pg_url, parity_data) -> str:
    """The parity dataset loaded into schema ``raw``."""
    load_tables(parity_data, pg_url, "raw")
    return f"{pg_url}?schema=raw"


@pytest.fixture(scope="module")
def three_runs(parity_data, pg_data, tmp_path_factory):
    """``radar features`` output of DuckDB on files, DuckDB on PostgreSQL (staged), Spark on
    files and Spark on PostgreSQL (JDBC): each validated where it runs."""
    out = tmp_path_factory.mktemp("engines")
    spark = FeatureConfig(engine="spark", spark_master="local[2]")
    runs = {
        "duckdb_files": (parity_data, FeatureConfig()),
        "duckdb_postgres": (pg_data, FeatureConfig()),
        "spark_files": (parity_data, spark),
        "spark_postgres": (pg_data, spark),
    }
    return {
        name: run_features(data, out / name, cfg).manifest | {"dir": out / name}
        for name, (data, cfg) in runs.items()
    }


def _snapshots(run) -> pd.DataFrame:
    return pd.read_parquet(run["dir"] / SNAPSHOTS_FILE)


def test_three_paths_give_the_same_snapshots(three_runs):
    base = _snapshots(three_runs["duckdb_files"])
    assert len(base) > 2000 and base["usage_trend_30d"].notna().sum() > 1000
    for name in ("duckdb_postgres", "spark_files", "spark_postgres"):
        other = _snapshots(three_runs[name])
        assert list(other.columns) == list(base.columns), name
        assert len(other) == len(base), name
        keys = ["account_id", "as_of"]
        assert other[keys].equals(base[keys]), name
        # Same nulls, cell for cell, then the same values (within 1e-9).
        assert (other.isna().to_numpy() == base.isna().to_numpy()).all(), name
        assert differences(base, other, list(base.columns)) == {}, name


def test_engine_and_source_are_recorded(three_runs, pg_data):
    spark = json.loads((three_runs["spark_files"]["dir"] / MANIFEST_FILE).read_text())
    assert spark["config"]["engine"] == "spark"
    assert spark["config"]["spark_master"] == "local[2]"
    for name in ("duckdb_postgres", "spark_postgres"):
        pg = three_runs[name]
        assert pg["input"]["directory"] == PostgresSource.parse(pg_data).display
        assert pg["input"]["rows"] == three_runs["duckdb_files"]["input"]["rows"], name
    assert three_runs["spark_postgres"]["input"]["fingerprint"] == {}  # nothing on disk


def test_findings_are_the_same_on_each_path(three_runs):
    warnings = {name: run["warnings"] for name, run in three_runs.items()}
    assert len(warnings["duckdb_files"]) == 2
    assert all("notes" in w for w in warnings["duckdb_files"])
    assert len({json.dumps(w) for w in warnings.values()}) == 1, warnings


def _corrupt(src, dst):
    """A copy of the dataset with errors in a pandas-checked table and in both large logs:
    out of range, empty, a repeated key, an unknown account (all of the types PostgreSQL
    holds)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("ground_truth"))
    subs = pq.read_table(dst / "subscriptions.parquet").to_pandas()
    subs.loc[[3, 17], "arr"] = -5.0
    subs.to_parquet(dst / "subscriptions.parquet", index=False)
    usage = pq.read_table(dst / "usage.parquet").to_pandas()
    usage["account_id"] = usage["account_id"].astype(str)
    usage.loc[[10, 250, 251], "events"] = -1
    usage.loc[40, "date"] = pd.NaT
    usage.loc[60, "account_id"] = "A999999"
    usage = pd.concat([usage, usage.iloc[[5, 7]]], ignore_index=True)  # two repeated keys
    usage.to_parquet(dst / "usage.parquet", index=False)
    wau = pq.read_table(dst / "weekly_active_users.parquet").to_pandas()
    wau.loc[[2, 30], "active_users"] = -3
    wau.to_parquet(dst / "weekly_active_users.parquet", index=False)


def _as_text_log(dst):
    """The usage log as CSV with values that do not parse (text rules: casts differ most)."""
    usage = pq.read_table(dst / "usage.parquet").to_pandas().astype("string")  # empty: NA
    usage.loc[100, "events"] = "abc"
    usage.loc[101, "events"] = "2.5"
    usage.loc[120, "date"] = "2024-13-45"
    usage.loc[121, "date"] = "yesterday"
    usage.loc[40, "date"] = ""
    usage.loc[130, "feature"] = " Dashboards "
    usage.to_csv(dst / "usage.csv", index=False)
    (dst / "usage.parquet").unlink()


def _findings(report) -> list[tuple]:
    return [
        (f.level, f.table, f.column, f.message, list(f.rows), [str(v) for v in f.values])
        for f in report.findings
    ]


def test_validation_names_the_same_rows_and_values_on_each_path(
    small_dataset, pg_url, tmp_path, monkeypatch
):
    """DuckDB on files, DuckDB on PostgreSQL (staged), Spark on PostgreSQL (JDBC); and a
    text log on DuckDB and on Spark from a file:// URI (through ``radar validate``)."""
    bad = tmp_path / "bad"
    _corrupt(small_dataset, bad)
    load_tables(bad, pg_url, "bad")
    from_files = validate_dataset(bad)
    from_pg = validate_data(f"{pg_url}?schema=bad")
    from_jdbc = validate_data(f"{pg_url}?schema=bad", engine="spark")
    assert not from_files.ok and len(from_files.errors) >= 6
    errors = {(f.table, f.column, f.message, tuple(f.rows)) for f in from_jdbc.errors}
    assert ("subscriptions", "arr", "below the minimum 0", (4, 18)) in errors
    assert ("usage", "events", "below the minimum 0", (11, 251, 252)) in errors
    assert ("usage", "date", "empty value in a required column", (41,)) in errors
    assert ("usage", "account_id", "not found in accounts.account_id", (61,)) in errors
    assert ("weekly_active_users", "active_users", "below the minimum 0", (3, 31)) in errors
    dup = next(f for f in from_jdbc.errors if f.message.startswith("duplicate key"))
    assert dup.table == "usage" and dup.count == 2 and len(dup.values[0]) == 3
    assert _findings(from_pg) == _findings(from_files)
    assert _findings(from_jdbc) == _findings(from_files)

    text = tmp_path / "text"
    shutil.copytree(bad, text)
    _as_text_log(text)
    on_duckdb = validate_dataset(text)
    got = CliRunner().invoke(
        app, ["validate", "--data", text.as_uri(), "--engine", "spark", "--json"]
    )
    assert got.exit_code == 1, got.output
    on_spark = json.loads(got.stdout)
    messages = {(f.column, f.message) for f in on_duckdb.errors}
    assert {("events", "not a number"), ("events", "not a whole number")} <= messages
    assert ("date", "not a date (YYYY-MM-DD)") in messages
    assert [
        [f["level"], f["table"], f["column"], f["message"], f["rows"], f["values"]]
        for f in on_spark["findings"]
    ] == [list(f) for f in _findings(on_duckdb)]
    # Without PostgreSQL's JDBC driver, Spark on PostgreSQL says what to install.
    monkeypatch.setenv("RADAR_POSTGRES_JAR", str(tmp_path / "no-driver.jar"))
    no_driver = validate_data(f"{pg_url}?schema=bad", engine="spark")
    assert not no_driver.ok and "libpostgresql-jdbc-java" in str(no_driver.errors[0])


def test_cli_reads_postgres_and_says_what_is_missing(pg_url, pg_data, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "--data", pg_data])
    assert ok.exit_code == 0, ok.output
    assert "schema raw" in ok.output and "valid" in ok.output
    empty = f"{pg_url}?schema=public"
    out = tmp_path / "f"
    bad = runner.invoke(app, ["features", "--data", empty, "--out", str(out)])
    assert bad.exit_code == 1
    assert "required table missing: no table accounts" in bad.output
    assert bad.exception is None or isinstance(bad.exception, SystemExit)
    assert not out.exists()
    down = runner.invoke(app, ["validate", "--data", "postgresql://radar@127.0.0.1:1/radar"])
    assert down.exit_code == 1 and "cannot connect" in down.output


def test_cli_engine_option(small_dataset, tmp_path):
    runner = CliRunner()
    bad = runner.invoke(
        app, ["features", "--data", str(small_dataset), "--out", str(tmp_path), "--engine", "x"]
    )
    assert bad.exit_code == 1 and "engine" in bad.output
    assert not np.any([p.name == SNAPSHOTS_FILE for p in tmp_path.iterdir()])


def test_cli_says_when_spark_cannot_start(small_dataset, tmp_path):
    from tests.cli import clean_env, radar

    env = clean_env(JAVA_HOME=str(tmp_path / "no-java"))
    out = tmp_path / "f"
    got = radar(
        "features",
        "--data",
        str(small_dataset),
        "--out",
        str(out),
        "--engine",
        "spark",
        cwd=tmp_path,
        env=env,
    )
    assert got.returncode == 1
    said = " ".join(got.stderr.split())
    assert "cannot start Spark (master local[2])" in said and "Java 17" in said
    assert "Traceback" not in got.stderr and not out.exists()


def test_a_failed_spark_query_is_one_message_that_says_what_to_change():
    """At 100,000 accounts on local[2] with the 4g default, the usage family's aggregation ran
    out of memory and `radar features --engine spark` printed a JVM trace."""
    from pyspark.errors import PySparkException

    from features.backends import EngineError, spark_failure

    exc = PySparkException(
        message="[AGGREGATE_OUT_OF_MEMORY] No enough memory for aggregation SQLSTATE: 82001\n"
        "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.aggregateOutOfMemoryError"
    )
    got = spark_failure("usage", exc)
    assert isinstance(got, EngineError)  # a ValueError: the CLI prints it and exits 1
    assert str(got).startswith(
        "Spark failed computing the usage features: [AGGREGATE_OUT_OF_MEMORY] No enough memory"
    )
    assert "spark.driver.memory" in str(got) and "QueryExecutionErrors" not in str(got)
    other = spark_failure("support", PySparkException(message="[DIVIDE_BY_ZERO] x"))
    assert "memory" not in str(other)
