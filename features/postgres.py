"""A PostgreSQL source of raw tables: its URL, its tables, and staging them as CSV files.

``postgresql://user@host:port/db?schema=raw`` names a schema holding the contract's tables.
:mod:`features.sources` stages them for DuckDB; :mod:`features.sparkcheck` reads them over
JDBC. psycopg is imported when a server is contacted (it is an optional dependency).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
