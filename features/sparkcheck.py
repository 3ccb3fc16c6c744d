"""Validate the large logs in Spark: the rules of :mod:`features.duckcheck`, in Spark SQL.

The rules are written once, in DuckDB's SQL (:class:`features.duckcheck.SqlChecker`). Here
every query is translated to Spark SQL by sqlglot, with three rewrites where the engines
differ: ``hash`` is Spark's 64-bit ``xxhash64`` (Spark's ``hash`` has 32 bits: far more
collisions on a billion rows, each costing an exact check), ``row(...)`` is ``struct(...)``,
and ``isinf(x)`` (no Spark function) is ``abs(x) = Infinity``. Timestamps are Spark's
``TIMESTAMP_NTZ`` (sqlglot's translation of DuckDB's plain ``TIMESTAMP``), so no time zone
enters.

The data can be anywhere Spark reads: a local directory, a URI (``file://``, ``hdfs://``,
``s3a://``: passed to Spark unchanged, tables found through Hadoop's file system) or a
PostgreSQL schema read over JDBC. Rows are numbered as DuckDB numbers them: a file's data
rows in order (by file, block and position in the block, from Spark's ``_metadata``); a
JDBC table's rows in the order PostgreSQL returns them (one partition, cached for the
checks). Small tables are read raw and checked in pandas, as on DuckDB.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp

from features.checker import JdbcTable, Location, is_uri, location_label, location_suffix
from features.duckcheck import SqlChecker, quote
from features.findings import ContractError, Finding, ValidationReport
from features.postgres import PostgresSource, postgres_tables
from features.raw import find_table_file, raw_frame, read_raw
from features.schema import FILE_SUFFIXES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Debian's libpostgresql-jdbc-java (`make servers` installs it); RADAR_POSTGRES_JAR overrides.
POSTGRES_JAR = "/usr/share/java/postgresql.jar"


def postgres_jar() -> str | None:
    """The PostgreSQL JDBC driver's jar, when installed."""
    jar = os.environ.get("RADAR_POSTGRES_JAR", POSTGRES_JAR)
    return jar if Path(jar).is_file() else None


# Spark's type names (simpleString) in DuckDB's, which the typing rules are written in.
_DUCK_TYPE = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


def duck_type(spark_type: str) -> str:
    """A Spark column type in DuckDB's name (``decimal(10,2)`` is ``DECIMAL(10,2)``)."""
    return _DUCK_TYPE.get(spark_type, spark_type.upper())


def _rewrite(node: exp.Expression) -> exp.Expression:
    """DuckDB functions Spark lacks or means otherwise, as Spark's equivalents."""
    if isinstance(node, exp.Anonymous) and str(node.this).lower() in ("hash", "row"):
        name = "xxhash64" if str(node.this).lower() == "hash" else "struct"
        return exp.Anonymous(this=name, expressions=node.expressions)
    if isinstance(node, exp.IsInf):
        inf = exp.cast(exp.Literal.string("Infinity"), "DOUBLE")
        return exp.EQ(this=exp.Abs(this=node.this), expression=inf)
    return node


@lru_cache(maxsize=4096)
def to_spark_sql(sql: str) -> str:
    """A query of :class:`features.duckcheck.SqlChecker` (DuckDB's SQL) in Spark SQL."""
    return sqlglot.parse_one(sql, read="duckdb").transform(_rewrite).sql(dialect="spark")


def spark_read(session: SparkSession, where: Location) -> SparkFrame:
    """A table as Spark reads it: CSV all text (as the contract reads CSV), Parquet typed."""
    if isinstance(where, JdbcTable):
        props = dict(where.properties)
        try:
            return session.read.jdbc(where.url, where.qualified, properties=props)
        except Exception as exc:  # no driver in the session, a refused login: say so
            raise ContractError(
                ValidationReport(
                    [
                        Finding(
                            "error",
                            where.table,
                            None,
                            f"cannot read {location_label(where)} over JDBC: "
                            f"{str(exc).strip().splitlines()[0]}",
                        )
                    ]
                )
            ) from exc
    path = str(where)
    if location_suffix(where) == ".csv":
        # As the contract reads CSV: a header, every value text, empty is missing.
        return session.read.csv(path, header=True, inferSchema=False, quote='"', escape='"')
    return session.read.parquet(path)


def jdbc_location(source: PostgresSource) -> tuple[str, dict[str, str]]:
    """The JDBC URL and connection properties of a libpq URL (``postgresql://...``)."""
    parts = urlsplit(source.conninfo)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    url = f"jdbc:postgresql://{host}{port}{parts.path or '/'}"
    if parts.query:  # sslmode=... and the like: the driver reads them from the URL
        url += "?" + parts.query
    props = {"driver": "org.postgresql.Driver"}
    user = parts.username or os.environ.get("PGUSER")
    password = parts.password or os.environ.get("PGPASSWORD")
    if user:
        props["user"] = user
    if password:
        props["password"] = password
    return url, props


def spark_arrow(df: pd.DataFrame, dates: tuple[str, ...] = ()) -> pa.Table:
    """A frame as Arrow for Spark: text as plain strings, ``dates`` as days."""
    t = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(t.schema):
        typ = field.type
        if field.name in dates or pa.types.is_timestamp(typ):
            # Timestamps here are midnight dates; as DATE they need no time zone.
            t = t.set_column(i, field.name, t.column(i).cast(pa.date32()))
        elif pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
            t = t.set_column(i, field.name, t.column(i).cast(pa.string()))
        elif pa.types.is_dictionary(typ):
            t = t.set_column(i, field.name, t.column(i).cast(typ.value_type))
    return t


class SparkChecker(SqlChecker):
    """The contract's checks of the large logs in Spark SQL (see the module's text).

    Args:
        data: A local directory, a URI Spark reads, or a PostgreSQL source (read over JDBC).
        session: The Spark session to run in.

    """

    def __init__(self, data: str | Path | PostgresSource, session: SparkSession):
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        super().__init__()
        self.errors = (PySparkException, Py4JError)
        self.session = session
        self.data = data
        self._temp: list[str] = []
        self._cached: list[SparkFrame] = []
        self._tables: set[str] | None = None

    # --- where the tables are ------------------------------------------------------------

    def _jdbc(self) -> PostgresSource | None:
        return self.data if isinstance(self.data, PostgresSource) else None

    def _fs_path(self, uri: str):
        """Hadoop's file system and path for ``uri`` (what Spark itself opens)."""
        jvm = self.session._jvm
        path = jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self.session._jsc.hadoopConfiguration()), path

    def exists(self) -> bool:
        """See :meth:`features.checker.Checker.exists`."""
        pg = self._jdbc()
        if pg is not None:
            if postgres_jar() is None:
                raise ContractError(
                    ValidationReport(
                        [
                            Finding(
                                "error",
                                pg.display,
                                None,
                                "PostgreSQL on Spark needs the JDBC driver: install Debian's "
                                f"libpostgresql-jdbc-java ({POSTGRES_JAR}) or set "
                                "RADAR_POSTGRES_JAR",
                            )
                        ]
                    )
                )
            self._tables = postgres_tables(pg)  # raises "cannot connect" as a finding
            return True
        if is_uri(self.data):
            fs, path = self._fs_path(str(self.data))
            return bool(fs.exists(path) and fs.getFileStatus(path).isDirectory())
        return Path(self.data).is_dir()

    def find(self, name: str) -> Location | None:
        """See :meth:`features.checker.Checker.find`."""
        pg = self._jdbc()
        if pg is not None:
            if name not in (self._tables or set()):
                return None
            url, props = jdbc_location(pg)
            return JdbcTable(url, pg.schema, name, tuple(sorted(props.items())))
        if not is_uri(self.data):
            return find_table_file(Path(self.data), name)
        base = str(self.data).rstrip("/")
        found = []
        for suffix in FILE_SUFFIXES:
            fs, path = self._fs_path(f"{base}/{name}{suffix}")
            if fs.exists(path):
                found.append(f"{base}/{name}{suffix}")
        if len(found) > 1:
            names = " and ".join(location_label(f) for f in found)
            raise ContractError(
                ValidationReport([Finding("error", name, None, f"both {names} exist; keep one")])
            )
        return found[0] if found else None

    def is_empty(self, where: Location) -> bool:
        """See :meth:`features.checker.Checker.is_empty`."""
        if isinstance(where, JdbcTable):
            return False
        if not is_uri(where):
            return Path(where).stat().st_size == 0
        fs, path = self._fs_path(str(where))
        status = fs.getFileStatus(path)
        return bool(status.isFile() and status.getLen() == 0)

    def read_raw(self, where: Location) -> pd.DataFrame:
        """See :meth:`features.checker.Checker.read_raw`."""
        if isinstance(where, Path):
            return read_raw(where)
        return raw_frame(spark_read(self.session, where).toArrow())

    # --- running the rules -----------------------------------------------------------------

    def _rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self.session.sql(to_spark_sql(sql)).collect()]

    def _view(self, name: str, df: SparkFrame, cache: bool) -> None:
        if cache:
            df = df.persist()
            self._cached.append(df)
        df.createOrReplaceTempView(name)
        self._temp.append(name)

    def _define(self, name: str, sql: str, materialize: bool = False) -> None:
        self._view(name, self.session.sql(to_spark_sql(sql)), materialize)

    def _register(self, name: str, df: pd.DataFrame) -> None:
        self._view(name, self.session.createDataFrame(spark_arrow(df)), cache=False)

    def _unregister(self, name: str) -> None:
        self.session.catalog.dropTempView(name)

    def _numbered(self, name: str, where: Location) -> tuple[str, dict[str, str]]:
        from pyspark.sql import functions as sf

        df = spark_read(self.session, where)
        cols = [sf.col(quote(c).replace('"', "`")) for c in df.columns]
        if isinstance(where, JdbcTable):
            # One partition (no partition column): the ids count the rows as PostgreSQL
            # returns them. Cached, so every check sees the same numbering and the database
            # is read once.
            df = df.coalesce(1)
            numbered = df.select((sf.monotonically_increasing_id() + 1).alias("_row"), *cols)
            cache = True
        else:
            numbered, cache = self._file_rows(df, cols), False
        self._view("rows_" + name, numbered, cache)
        types = {f.name: duck_type(f.dataType.simpleString()) for f in df.schema.fields}
        return f"SELECT * FROM {quote('rows_' + name)}", types

    def _file_rows(self, df: SparkFrame, cols: list) -> SparkFrame:
        """The rows of a file scan numbered in file order (one or more files, any split).

        A task reads its blocks in order, so within a block the row ids rise by one; the
        blocks' sizes (one small job) give each block's first data row.
        """
        from pyspark.sql import functions as sf

        tagged = df.select(
            *cols,
            sf.col("_metadata.file_path").alias("_file"),
            sf.col("_metadata.file_block_start").alias("_block"),
            sf.monotonically_increasing_id().alias("_id"),
        )
        blocks = (
            tagged.groupBy("_file", "_block")
            .agg(sf.min("_id").alias("_first"), sf.count("*").alias("_n"))
            .collect()
        )
        offsets, seen = [], 0
        for b in sorted(blocks, key=lambda r: (r["_file"], r["_block"])):
            offsets.append((b["_file"], b["_block"], b["_first"], seen))
            seen += b["_n"]
        starts = self.session.createDataFrame(
            offsets, "_file string, _block bigint, _first bigint, _offset bigint"
        )
        row = sf.col("_offset") + sf.col("_id") - sf.col("_first") + 1
        return tagged.join(sf.broadcast(starts), ["_file", "_block"]).select(
            row.alias("_row"), *cols
        )

    def close(self) -> None:
        """Drop the views and cached tables of the checks."""
        for df in self._cached:
            df.unpersist()
        for name in self._temp:
            self.session.catalog.dropTempView(name)
