"""The service's brief inputs: its snapshot store and the raw tables the store was built from.

The raw tables were validated when ``radar features`` built the store, so they are only read
and typed here (by the contract's column kinds), in pandas: the service imports neither the
validator nor DuckDB or ibis (what the Bento ships: ``bentofile.yaml``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.schema import FILE_SUFFIXES, PANDAS_DTYPE, TABLES, Kind, Table
from features.store import SnapshotStore
from reports.brief import (
    RAW_TABLES,
    SNAPSHOT_COLUMNS,
    Portfolio,
    history_dates,
    portfolio_from_frames,
)

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def read_table(path: Path, table: Table) -> pd.DataFrame:
    """One raw table file, typed as the contract says (its columns only, absent ones empty)."""
    raw = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    out = {}
    for c in table.columns:
        dtype = PANDAS_DTYPE[c.kind]
        if c.name not in raw:
            out[c.name] = pd.Series(pd.NA, index=raw.index, dtype=dtype)
            continue
        s = raw[c.name]
        if c.kind == Kind.DATE:
            s = pd.to_datetime(s).astype(dtype)
        elif c.kind in (Kind.INT, Kind.FLOAT):
            s = pd.to_numeric(s).astype(dtype)
        elif c.kind == Kind.BOOL and not pd.api.types.is_bool_dtype(s):
            text = s.astype("str").str.strip().str.lower()
            s = pd.Series(pd.NA, index=s.index, dtype=dtype)
            s[text.isin(_TRUE).to_numpy()] = True
            s[text.isin(_FALSE).to_numpy()] = False
        else:
            s = s.astype(dtype)
        out[c.name] = s
    return pd.DataFrame(out)


def raw_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """The raw tables a brief reads that ``folder`` has."""
    out = {}
    for name in RAW_TABLES:
        found = [folder / f"{name}{s}" for s in FILE_SUFFIXES if (folder / f"{name}{s}").is_file()]
        if found:
            out[name] = read_table(found[0], TABLES[name])
    return out


def from_store(store: SnapshotStore, as_of: pd.Timestamp) -> Portfolio:
    """The portfolio at ``as_of`` from the store and the raw tables of its input folder."""
    folder = store.input_directory
    if folder is None or not folder.is_dir():
        raise RuntimeError(
            f"the account brief needs the raw tables the store {store.directory} was built "
            f"from, and its input folder {folder} is not there"
        )
    snaps = store.snapshots(columns=list(SNAPSHOT_COLUMNS))
    # The store's dates of the last year (monthly by default: the 13 of history_dates).
    first = pd.Timestamp(history_dates(as_of)[0])
    snaps = snaps[(snaps["as_of"] >= first) & (snaps["as_of"] <= as_of)]
    return portfolio_from_frames(snaps, raw_tables(folder), as_of)
