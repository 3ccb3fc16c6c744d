"""The interface every checker of the large logs implements, and where a table can be.

:func:`features.contract.load_dataset` talks to a :class:`Checker`; DuckDB's is
:class:`features.duckcheck.DuckChecker`, Spark's :class:`features.sparkcheck.SparkChecker`.
Nothing here needs DuckDB or Spark.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pandas as pd

from features.findings import Collector, ValidationReport
from features.raw import type_frame
from features.schema import TABLES, ForeignKey, Table

if TYPE_CHECKING:  # the DuckDB checker's file handle, in signatures only
    from features.duckcheck import FileTable


@dataclass(frozen=True)
class JdbcTable:
    """A table in a database, read by Spark over JDBC.

    Attributes:
        url: The JDBC URL (``jdbc:postgresql://host:port/db``).
        schema: The schema holding the table.
        table: The table's name.
        properties: Connection properties (``user``, ``password``, ``driver``).

    """

    url: str
    schema: str
    table: str
    properties: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # a password

    @property
    def qualified(self) -> str:
        """``"schema"."table"``, as the database's SQL names it."""
        return f'"{self.schema}"."{self.table}"'


# Where a table is: a local file, a URI Spark reads (file://, hdfs://, s3a://), a JDBC table.
Location = Path | str | JdbcTable


def is_uri(where: object) -> bool:
    """Whether ``where`` is a URI (``scheme://...``) rather than a local path."""
    return isinstance(where, str) and len(urlsplit(where).scheme) > 1 and "://" in where


def location_label(where: Location) -> str:
    """The short name of a table's location in messages (``usage.csv``, ``raw.usage``)."""
    if isinstance(where, JdbcTable):
        return f"{where.schema}.{where.table}"
    return str(where).rstrip("/").rsplit("/", 1)[-1]


def location_suffix(where: Location) -> str:
    """``.csv`` or ``.parquet`` (the format of a file or URI); empty for a JDBC table."""
    if isinstance(where, JdbcTable):
        return ""
    return Path(location_label(where)).suffix


class Checker(ABC):
    """Where the large logs are validated.

    The interface :func:`features.contract.load_dataset` talks to, with a DuckDB
    implementation (:class:`DuckChecker`) and a Spark one
    (:class:`features.sparkcheck.SparkChecker`).

    A checker also finds the tables of the data it was opened on and reads the small ones
    raw (as :func:`features.raw.read_raw` does), so that the data can be anywhere the
    engine reads (a directory; for Spark also a URI or a PostgreSQL schema over JDBC).
    """

    @abstractmethod
    def exists(self) -> bool:
        """Whether the data (directory, URI or database) is there."""

    @abstractmethod
    def find(self, name: str) -> Location | None:
        """Where table ``name`` is, or None when absent."""

    @abstractmethod
    def is_empty(self, where: Location) -> bool:
        """Whether ``where`` holds nothing at all (not even a header)."""

    @abstractmethod
    def read_raw(self, where: Location) -> pd.DataFrame:
        """A small table as read, untyped (text for CSV), for the pandas checks."""

    @abstractmethod
    def load(self, table: Table, where: Location, out: Collector) -> FileTable | None:
        """Check large table ``table`` in ``where``; None when it cannot be read."""

    @abstractmethod
    def foreign_key(
        self, table: str, fk: ForeignKey, ref: pd.DataFrame | None, out: Collector
    ) -> None:
        """Rows of checked table ``table`` whose ``fk`` value is not in the referenced table."""

    @abstractmethod
    def after_date(
        self,
        table: str,
        date_col: str,
        when: pd.Timestamp,
        level: str,
        message: str,
        out: Collector,
    ) -> int:
        """Report rows of ``table`` whose ``date_col`` is after ``when``; return how many."""

    @abstractmethod
    def above_per_account(
        self, table: str, column: str, limit: pd.Series, message: str, out: Collector
    ) -> None:
        """Error on rows of ``table`` whose ``column`` is above their account's ``limit``."""

    @abstractmethod
    def after_churn(self, table: str, date_col: str, ended: pd.Series, out: Collector) -> None:
        """Warn about rows of ``table`` dated after their account churned for good."""

    def read_frame(self, source: FileTable) -> pd.DataFrame:
        """A checked large table typed in pandas (rare: future rows to exclude)."""
        return type_frame(
            self.read_raw(source.path), TABLES[source.name], Path(source.label), quiet()
        )

    @abstractmethod
    def close(self) -> None:
        """Release what the checker holds."""

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def quiet() -> Collector:
    """A collector whose findings go nowhere (the data was validated already)."""
    return Collector(ValidationReport())
