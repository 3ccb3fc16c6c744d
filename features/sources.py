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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from features.contract import Dataset, load_dataset
from features.duckcheck import is_uri
from features.findings import ContractError, Finding, ValidationReport
from features.schema import TABLES

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres(data: str | Path) -> bool:
    """Whether ``data`` names a PostgreSQL database rather than a directory."""
    return isinstance(data, str) and urlsplit(data).scheme in POSTGRES_SCHEMES


@dataclass(frozen=True)
class PostgresSource:
    """A PostgreSQL schema holding the contract's tables.

    Attributes:
        conninfo: The URL without the ``schema`` parameter (what psycopg connects to).
        schema: The schema holding the tables (default ``public``).

    """

    conninfo: str
    schema: str = "public"

    @classmethod
    def parse(cls, url: str) -> PostgresSource:
        """Split ``postgresql://...?schema=NAME`` into connection string and schema."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in query if k == "schema"), "public")
        rest = urlencode([(k, v) for k, v in query if k != "schema"])
        return cls(urlunsplit(parts._replace(query=rest)), schema)

    @property
    def display(self) -> str:
        """The URL with any password hidden, and the schema: for messages and manifests."""
        parts = urlsplit(self.conninfo)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
        return f"{urlunsplit(parts._replace(netloc=netloc))} (schema {self.schema})"


def _error(where: str, message: str) -> ContractError:
    return ContractError(ValidationReport([Finding("error", where, None, message)]))


def _connect(source: PostgresSource):
    import psycopg

    try:
        return psycopg.connect(source.conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise _error(source.display, f"cannot connect: {str(exc).strip()}") from exc


def _tables_in(conn, source: PostgresSource) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        (source.schema,),
    ).fetchall()
    return {r[0] for r in rows}


def postgres_tables(source: PostgresSource) -> set[str]:
    """The tables of ``source``'s schema.

    Raises:
        ContractError: When the server cannot be reached.

    """
    with _connect(source) as conn:
        return _tables_in(conn, source)


def stage_postgres(source: PostgresSource, dest: Path) -> None:
    """Copy every contract table of ``source`` into ``dest`` as ``<table>.csv``.

    Raises:
        ContractError: When the server cannot be reached or a required table is missing.

    """
    from psycopg import sql

    with _connect(source) as conn:
        present = _tables_in(conn, source)
        for name, table in TABLES.items():
            if name not in present:
                if table.required:
                    raise _error(
                        name, f"required table missing: no table {name} in {source.display}"
                    )
                continue
            query = sql.SQL("COPY (SELECT * FROM {}.{}) TO STDOUT (FORMAT csv, HEADER true)")
            query = query.format(sql.Identifier(source.schema), sql.Identifier(name))
            path = dest / f"{name}.csv"
            with conn.cursor() as cur, cur.copy(query) as copy, path.open("wb") as out:
                for block in copy:
                    out.write(block)
            log.debug("staged %s.%s (%d bytes)", source.schema, name, path.stat().st_size)


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
