"""Where the feature engine's ibis expressions run: DuckDB in-process, or Spark.

The feature families (:mod:`features.engine`) are plain ibis expressions over tables named
as in the contract. What differs between engines is everything around them, and that is
all this module holds: how raw tables become relations (DuckDB views over the files and
registered frames; Spark DataFrames read by Spark, typed like the DuckDB views), how the
engine's own small tables are stored, how queries are run (DuckDB: one cursor and one
thread per query, several at once; Spark: one job at a time, parallel inside), and the
one type the engines do not share (the 64-bit masks: DuckDB's UBIGINT, Spark's signed
BIGINT, which has the same bits).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
import warnings
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from features.contract import Dataset
from features.duckcheck import FileTable, no_progress_bar
from features.schema import TABLES, Kind
from features.sparkcheck import postgres_jar, spark_arrow, spark_read, to_spark_sql

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

ENGINES = ("duckdb", "spark")


class EngineError(ValueError):
    """The engine cannot run (not installed, cannot start): a message for the user."""


DEFAULT_SPARK_MASTER = "local[2]"


def usable_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and cgroup pinning
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Backend(ABC):
    """The engine-specific half of a feature run.

    Attributes:
        con: The ibis connection the family expressions are built on.
        parts: Into how many parts (by account number) the largest families are split.
        mask_type: ibis type of the 64-bit bit masks of the usage family.

    """

    con: ibis.BaseBackend
    parts: int = 1
    mask_type: str = "uint64"

    @abstractmethod
    def register_raw(self, ds: Dataset) -> None:
        """Make every table of ``ds`` a relation named as in the contract."""

    @abstractmethod
    def put(self, name: str, obj: pd.DataFrame | ir.Table) -> ir.Table:
        """Store a frame or the result of an expression as table ``name``; return it."""

    @abstractmethod
    def build(self, name: str, expr: ir.Table) -> Future[None]:
        """Queue the computation of table ``name`` from ``expr`` (read later by others)."""

    @abstractmethod
    def fetch(self, name: str, expr: ir.Table) -> Future[pa.Table]:
        """Queue ``expr``; the future gives its rows ordered by ``sid``."""

    def table(self, name: str) -> ir.Table:
        """A table stored by :meth:`put` or :meth:`build`."""
        return self.con.table(name)

    @abstractmethod
    def close(self) -> None:
        """Wait for queued queries and release what the run holds."""


class DuckDBBackend(Backend):
    """DuckDB in this process, with bounded memory (it spills past ``memory_limit``).

    Each query runs on one DuckDB thread, in its own cursor: the feature families are many
    small queries that gain little from DuckDB's threads inside one query, so they share the
    cores by running side by side instead (and cost no more than one thread each when the
    machine is busy). A query is compiled and queued as soon as its inputs exist, so the
    compilation of the next ones overlaps the running ones.
    """

    mask_type = "uint64"

    def __init__(self, threads: int | None = None, memory_limit: str = "3GB"):
        self.parts = threads or usable_cores()
        self._spill = tempfile.TemporaryDirectory(prefix="radar-duckdb-")
        self.con = ibis.duckdb.connect(
            memory_limit=memory_limit,
            temp_directory=self._spill.name,
            preserve_insertion_order=False,
            threads=1,
        )
        no_progress_bar(self.con.con)
        self.frames: dict[str, pd.DataFrame] = {}
        self._pool = ThreadPoolExecutor(max_workers=self.parts, thread_name_prefix="features")
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def register_raw(self, ds: Dataset) -> None:
        """Views over the large logs' files; the other tables registered without a copy."""
        for name in ds.tables:
            source = ds.file_table(name)
            if source is not None:  # large log: a view over its file, validated on load
                self.con.con.execute(f'CREATE VIEW "{name}" AS {source.select_sql("DATE")}')
            else:
                self.frames[name] = ds[name]
                self.con.con.register(name, self.frames[name])

    def put(self, name: str, obj: pd.DataFrame | ir.Table) -> ir.Table:
        """See :meth:`Backend.put`."""
        return self.con.create_table(name, obj)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.con.con.cursor()
            for name, df in self.frames.items():  # registrations belong to a connection
                cur.register(name, df)
            with self._lock:
                self._cursors.append(cur)
            self._local.cursor = cur
        return cur

    def build(self, name: str, expr: ir.Table) -> Future[None]:
        """See :meth:`Backend.build`."""
        sql = self.con.compile(expr)

        def create() -> None:
            start = time.perf_counter()
            self._cursor().execute(f'CREATE TABLE "{name}" AS {sql}')
            log.debug("built %s in %.2f s", name, time.perf_counter() - start)

        return self._pool.submit(create)

    def fetch(self, name: str, expr: ir.Table) -> Future[pa.Table]:
        """See :meth:`Backend.fetch`."""
        sql = self.con.compile(expr)

        def get() -> pa.Table:
            start = time.perf_counter()
            got = self._cursor().sql(f"SELECT * FROM ({sql}) ORDER BY sid").to_arrow_table()
            log.debug("computed the %s features in %.2f s", name, time.perf_counter() - start)
            return got

        return self._pool.submit(get)

    def close(self) -> None:
        """See :meth:`Backend.close`."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for cur in self._cursors:
            cur.close()
        self.con.disconnect()
        self._spill.cleanup()


# --- Spark -------------------------------------------------------------------------------

# Settings that make Spark compute what DuckDB computes: dates in UTC, NULL (not an error)
# for x / 0 as in DuckDB, Arrow transfers, no UI server.
SPARK_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "4g",
}
_sessions: dict[str, SparkSession] = {}


def spark_session(master: str = DEFAULT_SPARK_MASTER, conf: dict[str, str] | None = None):
    """The Spark session for ``master`` (one per process; later settings are not applied).

    In local mode the shuffle partitions follow the cores (Spark's 200 are tiny tasks here).
    """
    # PySpark 4.3 warns that pandas 3 is not fully supported; the engine hands Spark Arrow
    # tables, not pandas frames, and the parity test checks the results.
    warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
    from pyspark.sql import SparkSession

    if master in _sessions:
        return _sessions[master]
    settings = dict(SPARK_DEFAULTS)
    if master.startswith("local"):
        settings["spark.sql.shuffle.partitions"] = str(4 * usable_cores())
        # Python workers run this interpreter (its packages), not whatever python3 is first
        # on the PATH (PySpark reads only the environment variable for this).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, no warning
    settings.update(conf or {})
    jar = postgres_jar()
    if jar is not None:  # PostgreSQL's JDBC driver: --data postgresql://... on Spark
        jars = [j for j in settings.get("spark.jars", "").split(",") if j]
        settings["spark.jars"] = ",".join([*jars, jar] if jar not in jars else jars)
    builder = SparkSession.builder.master(master).appName("renewal-radar")
    for k, v in settings.items():
        builder = builder.config(k, v)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # no Java, a master that does not answer: say so, not a trace
        raise EngineError(
            f"cannot start Spark (master {master}): {str(exc).strip()[:500]}; Spark needs "
            "Java 17 (JAVA_HOME or java on the PATH)"
        ) from exc
    session.sparkContext.setLogLevel("ERROR")
    _sessions[master] = session
    return session


def current_spark() -> SparkSession:
    """The Spark session this process started last (the one that read the data)."""
    if not _sessions:
        return spark_session()
    return list(_sessions.values())[-1]


def spark_file_table(session: SparkSession, source: FileTable) -> SparkFrame:
    """A large log read by Spark where it was validated, with the contract's types.

    Where: a file, a URI, a JDBC table.
    """
    view = f"radar_raw_{source.name}"
    spark_read(session, source.path).createOrReplaceTempView(view)
    # The typing rules DuckDB applies (FileTable.columns_sql), translated: written once.
    return session.sql(to_spark_sql(f"SELECT {source.columns_sql('DATE')} FROM {view}"))


def spark_failure(family: str, exc: Exception) -> EngineError:
    """A failed Spark query as one message: the family, Spark's first line, what to change."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    message = f"Spark failed computing the {family} features: {first[:300]}"
    if "MEMORY" in first.upper():
        message += (
            "; give Spark more memory (spark_conf in the feature configuration: "
            "spark.driver.memory in local mode, spark.executor.memory on a cluster) or more "
            "spark.sql.shuffle.partitions (docs/scale.md)"
        )
    return EngineError(message)


class SparkBackend(Backend):
    """Spark (local mode or a cluster) through ibis' PySpark backend.

    Raw tables in pandas (the small ones) are sent to Spark; the large logs are read by
    Spark from their files. Intermediate tables are cached temporary views. Queries run one
    at a time: Spark runs each across the executors.
    """

    mask_type = "int64"

    def __init__(self, master: str = DEFAULT_SPARK_MASTER, conf: dict[str, str] | None = None):
        self.session = spark_session(master, conf)
        self.con = ibis.pyspark.connect(self.session)
        self.parts = 1
        self._cached: list[SparkFrame] = []
        self._views: list[str] = []

    def _view(self, name: str, df: SparkFrame, cache: bool = True) -> ir.Table:
        if cache:
            df = df.cache()
            self._cached.append(df)
        df.createOrReplaceTempView(name)
        self._views.append(name)
        return self.con.table(name)

    def register_raw(self, ds: Dataset) -> None:
        """The large logs read by Spark from their files; the other tables sent from pandas."""
        for name in ds.tables:
            source = ds.file_table(name)
            if source is not None:
                self._view(name, spark_file_table(self.session, source), cache=False)
            else:
                dates = tuple(c.name for c in TABLES[name].columns if c.kind is Kind.DATE)
                frame = self.session.createDataFrame(spark_arrow(ds[name], dates))
                self._view(name, frame)

    def put(self, name: str, obj: pd.DataFrame | ir.Table) -> ir.Table:
        """See :meth:`Backend.put`."""
        if isinstance(obj, pd.DataFrame):
            return self._view(name, self.session.createDataFrame(spark_arrow(obj)))
        return self._view(name, self.session.sql(self.con.compile(obj)))

    def build(self, name: str, expr: ir.Table) -> Future[None]:
        """See :meth:`Backend.build`."""
        start = time.perf_counter()
        self.put(name, expr)
        log.debug("defined %s in %.2f s", name, time.perf_counter() - start)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def fetch(self, name: str, expr: ir.Table) -> Future[pa.Table]:
        """See :meth:`Backend.fetch`."""
        from pyspark.errors import PySparkException

        start = time.perf_counter()
        try:
            got = self.session.sql(self.con.compile(expr)).toArrow()
        except PySparkException as exc:  # a JVM trace of hundreds of lines: say what to do
            raise spark_failure(name, exc) from exc
        # Sorted here: a global sort in Spark is one more shuffle for no gain.
        got = got.sort_by("sid")
        log.debug("computed the %s features in %.2f s", name, time.perf_counter() - start)
        done: Future[pa.Table] = Future()
        done.set_result(got)
        return done

    def close(self) -> None:
        """See :meth:`Backend.close`."""
        for df in self._cached:
            df.unpersist()
        for name in self._views:
            self.session.catalog.dropTempView(name)


def make_backend(
    engine: str,
    *,
    threads: int | None = None,
    memory_limit: str = "3GB",
    spark_master: str = DEFAULT_SPARK_MASTER,
    spark_conf: dict[str, str] | None = None,
) -> Backend:
    """The backend named ``engine`` (one of :data:`ENGINES`)."""
    if engine == "duckdb":
        return DuckDBBackend(threads, memory_limit)
    if engine == "spark":
        try:
            import pyspark  # noqa: F401
        except ImportError as exc:
            raise EngineError(
                "--engine spark needs PySpark: pip install 'renewal-radar[spark]' (and Java 17)"
            ) from exc
        return SparkBackend(spark_master, spark_conf)
    raise EngineError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
