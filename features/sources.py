"""Where the raw tables come from: a directory of files, or a PostgreSQL schema.

A PostgreSQL source (``postgresql://user@host:port/db?schema=raw``) is read with ``COPY ...
TO STDOUT (FORMAT csv)``, streamed table by table into a private staging directory, and
from there takes exactly the path a directory of CSV files takes: the same validation with
the same findings, the same engines (DuckDB scans the staged logs in place; Spark in local
mode reads them). Rows are numbered in the order PostgreSQL returns them (for a table
loaded once and not updated, the order it was loaded in). The staging directory lives as
long as the :func:`open_data` block and holds one table at a time in memory: nothing.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from features.checker import is_uri
from features.contract import Dataset, load_dataset
from features.findings import ContractError, ValidationReport
from features.postgres import PostgresSource, is_postgres, stage_postgres

log = logging.getLogger(__name__)


@contextmanager
def open_data(
    data: str | Path,
    engine: str = "duckdb",
    spark_master: str | None = None,
    spark_conf: dict[str, str] | None = None,
    **options: object,
) -> Iterator[Dataset]:
    """The validated dataset of a directory, a URI or a PostgreSQL URL (module text).

    With ``engine="spark"`` the large logs are validated in Spark
    (:class:`features.sparkcheck.SparkChecker`), which also reads a URI (``file://``,
    ``hdfs://``, ``s3a://``, passed to Spark unchanged) and a PostgreSQL schema over JDBC.
    With DuckDB a PostgreSQL source is staged for the duration of the block. ``options``
    go to :func:`features.contract.load_dataset`.

    Raises:
        ContractError: When the data breaks the contract or cannot be read.
        ValueError: For a URI with the DuckDB engine, or an unknown engine.

    """
    if engine == "spark":
        from features.backends import DEFAULT_SPARK_MASTER, spark_session
        from features.sparkcheck import SparkChecker

        session = spark_session(spark_master or DEFAULT_SPARK_MASTER, spark_conf)
        where = PostgresSource.parse(str(data)) if is_postgres(data) else data
        yield load_dataset(data, checker=SparkChecker(where, session), **options)
        return
    if engine != "duckdb":
        raise ValueError(f"unknown engine {engine!r}; use duckdb or spark")
    if is_uri(data) and not is_postgres(data):
        raise ValueError(f"{data}: a URI is read by Spark only; use --engine spark")
    if not is_postgres(data):
        yield load_dataset(data, **options)
        return
    source = PostgresSource.parse(str(data))
    with tempfile.TemporaryDirectory(prefix="radar-postgres-") as tmp:
        stage_postgres(source, Path(tmp))
        yield load_dataset(tmp, **options)


def describe(data: str | Path) -> str:
    """Where ``data`` is, for manifests and messages (no password)."""
    if is_postgres(data):
        return PostgresSource.parse(str(data)).display
    return str(data)


def validate_data(data: str | Path, **options: object) -> ValidationReport:
    """Validate a directory, a URI or a PostgreSQL source; the report, without raising.

    ``options`` go to :func:`open_data` (``engine``, ``spark_master``, ``now``, ...).
    """
    try:
        with open_data(data, strict=False, **options) as ds:
            return ds.report
    except ContractError as exc:
        return exc.report
