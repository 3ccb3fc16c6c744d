"""The snapshot store: what ``radar features`` writes and everything downstream reads.

One folder holds three files, written together (the manifest last, with the size and SHA-256
of the other two; :meth:`SnapshotStore.open` refuses files that do not match it):

- ``snapshots.parquet``: one row per account and as-of date (features, labels, health columns);
- ``accounts.parquet``: the per-account context a reader of a score needs and the snapshots
  do not carry: name, CSM owner, industry, region, and the first date each per-account input
  has data (so the inputs an account lacks at any date follow without the raw tables);
- ``manifest.json``: input fingerprint, feature configuration, row counts, the typical
  expansion size at each as-of date, and the input folder (relative to the store's folder).

Scoring, serving, training and the notebooks read the store through this module only; none
of them opens raw tables or builds SQL. This module imports neither ibis nor DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from features.config import FeatureConfig
from features.io import atomic_file, check_record, clean_stale, file_record

SNAPSHOTS_FILE = "snapshots.parquet"
CONTEXT_FILE = "accounts.parquet"
MANIFEST_FILE = "manifest.json"
FILES_KEY = "files"  # manifest: size and SHA-256 of each data file written with it
# Raw-table columns of ``accounts`` carried into the context (those a table has).
ACCOUNT_INFO = ("name", "csm_owner", "industry", "region")
# Per-account inputs whose absence is worth saying (no tickets or engagement is a real zero).
CHECKED_INPUTS = ("usage", "weekly_active_users", "contacts", "nps_responses", "milestones")
FIRST_PREFIX = "first_"  # context column: first date an input has a row for the account
DEFAULT_EXPANSION_UPLIFT = 0.2  # share of ARR a typical expansion adds, when history has none


def missing_inputs(
    context: pd.DataFrame, absent_tables: list[str], account_ids: pd.Series, as_of: pd.Timestamp
) -> list[list[str]]:
    """Per account, the inputs it has no rows in up to ``as_of``, or whose table is absent.

    ``context`` is the store's context table (indexed by account id).
    """
    notes: list[list[str]] = [[] for _ in range(len(account_ids))]
    ids = pd.Index(account_ids)
    for name in CHECKED_INPUTS:
        if name in absent_tables:
            for n in notes:
                n.append(f"{name} (table not provided)")
            continue
        col = f"{FIRST_PREFIX}{name}"
        first = context[col].reindex(ids) if col in context else pd.Series(pd.NaT, index=ids)
        lacking = ~(pd.to_datetime(first) <= as_of).to_numpy()
        for i in np.flatnonzero(lacking):
            notes[i].append(name)
    return notes


def with_context(snaps: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    """Snapshot rows with their accounts' identity columns (name, owner, ...) added."""
    info = [c for c in ACCOUNT_INFO if c in context]
    ids = snaps["account_id"]
    # One concat, not one insert per column: a wide snapshot frame took pandas'
    # "highly fragmented" PerformanceWarning to the user (radar monitor).
    added = pd.DataFrame({c: context[c].reindex(ids).to_numpy() for c in info}, index=snaps.index)
    return pd.concat([snaps.drop(columns=info, errors="ignore"), added], axis=1)


@dataclass(frozen=True)
class SnapshotStore:
    """A folder written by ``radar features`` (see the module docstring)."""

    directory: Path

    @classmethod
    def open(cls, directory: str | Path) -> SnapshotStore:
        """The store at ``directory``; raises if its files are not there or not written together."""
        d = Path(directory)
        for name in (SNAPSHOTS_FILE, MANIFEST_FILE):
            if not (d / name).is_file():
                raise FileNotFoundError(
                    f"{d / name} not found: run `radar features --out {d}` first"
                )
        store = cls(d)
        # Stores from before the hashes were recorded have none to check.
        for name, record in store.manifest.get(FILES_KEY, {}).items():
            check_record(d / name, record, f"radar features --out {d}")
        return store

    @cached_property
    def manifest(self) -> dict:
        """The manifest, as written."""
        path = self.directory / MANIFEST_FILE
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path} is not valid JSON ({exc}): rebuild it with `radar features`"
            ) from exc

    def snapshots(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The snapshot table (``as_of`` as datetime64[s]); only ``columns`` when given."""
        frame = pd.read_parquet(self.directory / SNAPSHOTS_FILE, columns=columns)
        if "as_of" in frame:
            frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[s]")
        return frame

    def snapshots_at(self, as_of: pd.Timestamp) -> pd.DataFrame:
        """The snapshot rows of one as-of date (read with a filter, not the whole table)."""
        frame = pd.read_parquet(
            self.directory / SNAPSHOTS_FILE, filters=[("as_of", "==", pd.Timestamp(as_of))]
        )
        frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[s]")
        return frame

    def context(self) -> pd.DataFrame:
        """Per-account context indexed by account id (empty when the store predates it)."""
        path = self.directory / CONTEXT_FILE
        if not path.is_file():
            return pd.DataFrame(index=pd.Index([], name="account_id"))
        return pd.read_parquet(path).set_index("account_id")

    @property
    def latest(self) -> pd.Timestamp:
        """The latest as-of date."""
        return pd.Timestamp(self.manifest["as_of_dates"][-1])

    @property
    def feature_config(self) -> FeatureConfig:
        """The feature configuration the snapshots were built with."""
        return FeatureConfig.model_validate(self.manifest.get("config", {}))

    @property
    def absent_tables(self) -> list[str]:
        """Optional tables the input did not provide."""
        return list(self.manifest.get("missing_optional_tables", []))

    @property
    def input_directory(self) -> Path | None:
        """The raw-table folder, resolved from the store's folder (None for a database)."""
        raw = self.manifest.get("input", {}).get("directory")
        if raw is None or "://" in raw:  # no folder: a database source
            return None
        return (self.directory / raw).resolve()

    def expansion_uplift(self, as_of: pd.Timestamp) -> float:
        """Share of ARR a typical expansion added up to ``as_of`` (default when unknown)."""
        value = self.manifest.get("expansion_uplift", {}).get(str(pd.Timestamp(as_of).date()))
        return DEFAULT_EXPANSION_UPLIFT if value is None else float(value)

    @property
    def fingerprint(self) -> str:
        """Short hash of the inputs the table was built from."""
        raw = json.dumps(self.manifest.get("input", {}).get("fingerprint", {}), sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def write_store(
    out_dir: str | Path, snapshots: pd.DataFrame, context: pd.DataFrame, manifest: dict
) -> SnapshotStore:
    """Write the three files of a store; each appears whole or not at all.

    The manifest's ``input.directory`` is stored relative to ``out_dir``, so the store can be
    read from any working folder (and moved together with its input).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(json.dumps(manifest, default=str))
    raw = manifest.get("input", {}).get("directory")
    if raw is not None and "://" not in raw:  # a folder (not a database URL): relative
        manifest["input"]["directory"] = os.path.relpath(Path(raw).resolve(), out.resolve())
    clean_stale(out, [SNAPSHOTS_FILE, CONTEXT_FILE, MANIFEST_FILE])
    with atomic_file(out / SNAPSHOTS_FILE) as tmp:
        snapshots.to_parquet(tmp, index=False)
    with atomic_file(out / CONTEXT_FILE) as tmp:
        context.reset_index().to_parquet(tmp, index=False)
    # Last, and naming the data files' hashes: a reader refuses a pair not written together.
    manifest[FILES_KEY] = {n: file_record(out / n) for n in (SNAPSHOTS_FILE, CONTEXT_FILE)}
    with atomic_file(out / MANIFEST_FILE) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    return SnapshotStore(out)
