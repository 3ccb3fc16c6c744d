"""A real PostgreSQL server for tests (Debian's package, installed by `make test`).

PostgreSQL refuses to run as root, and tests run as root: the data folder is owned by the
``postgres`` user and the server runs as that user (``runuser``), on a free loopback port,
with its socket in the same temporary folder. It is stopped (fast) when the block ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.raw import find_table_file
from features.schema import TABLES

_PG_TYPE = {"int": "bigint", "float": "double precision", "bool": "boolean", "date": "date"}


def pg_bin() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: $RADAR_PG_BIN, else the newest Debian install."""
    found = os.environ.get("RADAR_PG_BIN") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None
    )
    if not found or not (Path(found) / "initdb").exists():
        raise RuntimeError(
            "PostgreSQL is not installed: `make test` installs Debian's postgresql package "
            "(or set RADAR_PG_BIN to the folder holding initdb and pg_ctl)"
        )
    return Path(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh PostgreSQL server; yields the URL of its database ``radar`` (user ``radar``)."""
    bin_dir = pg_bin()
    tmp = Path(tempfile.mkdtemp(prefix="radar-pg-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    data, port = tmp / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run(
            _as_server_user([str(bin_dir / args[0]), *args[1:]]),
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp,
        )

    try:
        run("initdb", "-D", str(data), "-A", "trust", "-U", "radar", "--no-sync")
        opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
        run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "start")
        try:
            url = f"postgresql://radar@127.0.0.1:{port}/postgres"
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE radar")
            yield f"postgresql://radar@127.0.0.1:{port}/radar"
        finally:
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_tables(data_dir: Path, url: str, schema: str) -> None:
    """Create ``schema`` and load every contract table file of ``data_dir`` into it.

    Columns get the contract's SQL types; rows are copied in file order.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for name, table in TABLES.items():
            path = find_table_file(data_dir, name)
            if path is None:
                continue
            df = pd.read_csv(path) if path.suffix == ".csv" else pq.read_table(path).to_pandas()
            kinds = {c.name: c.kind.value for c in table.columns}
            for c in df.columns:
                if kinds.get(c) == "date":
                    df[c] = pd.to_datetime(df[c]).dt.date
                elif kinds.get(c) == "int":  # NaN made ints floats: "2.0" is not a bigint
                    df[c] = df[c].astype("Int64")
            cols = [
                sql.SQL("{} {}").format(
                    sql.Identifier(c), sql.SQL(_PG_TYPE.get(kinds.get(c, "str"), "text"))
                )
                for c in df.columns
            ]
            ident = sql.Identifier(schema, name)
            conn.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(", ").join(cols)))
            copy_sql = sql.SQL("COPY {} FROM STDIN").format(ident)
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in df.itertuples(index=False):
                    copy.write_row([None if _missing(v) else v for v in row])


def _missing(v: object) -> bool:
    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))
