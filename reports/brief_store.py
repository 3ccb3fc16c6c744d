"""The service's brief inputs: its snapshot store and the raw tables the store was built from.

The raw tables were validated when ``radar features`` built the store, so they are only read
and typed here (by the contract's column kinds), in pandas: the service imports neither the
validator nor DuckDB or ibis (what the Bento ships: ``bentofile.yaml``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.raw import find_table_file, read_frame
from features.schema import TABLES
from features.store import SnapshotStore
from reports.brief import (
    RAW_TABLES,
    SNAPSHOT_COLUMNS,
    Portfolio,
    history_dates,
    portfolio_from_frames,
)


def raw_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """The raw tables a brief reads that ``folder`` has."""
    out = {}
    for name in RAW_TABLES:
        found = find_table_file(folder, name)
        if found is not None:
            out[name] = read_frame(found, TABLES[name])
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
