"""Load a raw data directory and validate it against the contract in :mod:`features.schema`.

Every finding names the table, the column, the first offending rows (1-based data rows, the
header not counted: in a CSV file, row N is on line N + 1) and their values. Errors stop any
command before it writes; warnings are listed and the run goes on.

The large activity logs (:data:`FILE_TABLES`) are checked by DuckDB straight from their file
(:mod:`features.duckcheck`), with the same rules and findings, and stay in the file: the
feature engine scans them in place. Everything else is typed and checked in pandas.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.checker import Checker, location_label
from features.duckcheck import DuckChecker, FileTable
from features.findings import Collector, ContractError, ValidationReport
from features.raw import read_frame, type_frame
from features.schema import (
    MAX_USERS_PER_SEAT,
    PANDAS_DTYPE,
    TABLES,
    Table,
)

log = logging.getLogger(__name__)

# Checked in DuckDB and left in their file: a pandas copy of these sets the peak memory.
FILE_TABLES = ("usage", "weekly_active_users")
# Tables the feature engine always reads: when one is absent or has no rows, an empty typed
# frame stands in so the engine runs, and every feature computed from it is then missing
# (never a count of zero: a team that does not log tickets has not had zero tickets).
STAND_IN = (
    "subscriptions",
    "support_tickets",
    "contacts",
    "nps_responses",
    "engagement",
    "invoices",
)
# Tables whose cross-table rules (foreign keys, activity after churn) DuckDB can check.
DUCKDB_CHECKABLE = (
    "usage",
    "weekly_active_users",
    "engagement",
    "support_tickets",
    "invoices",
    "milestones",
)


class Tables(Mapping[str, pd.DataFrame]):
    """Loaded tables by name, in contract order.

    A table kept in its file (a :class:`FileTable`) is read into pandas on first access and
    cached: for tests and the pandas reference on small data. The pipeline never asks.
    """

    def __init__(self, frames: dict[str, pd.DataFrame], files: dict[str, FileTable]):
        self._frames = dict(frames)
        self._files = dict(files)
        self._names = [n for n in TABLES if n in self._frames or n in self._files]

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            if name not in self._files:
                raise KeyError(name)
            source = self._files[name]
            if not isinstance(source.path, Path):
                raise ValueError(f"{name}: {source.label} was read by Spark, not loaded in pandas")
            log.debug("reading %s into pandas", name)
            self._frames[name] = read_frame(source.path, TABLES[name])
        return self._frames[name]

    def __contains__(self, name: object) -> bool:  # without reading a file table
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def file(self, name: str) -> FileTable | None:
        """The file table ``name`` is scanned from, or None when it is only in pandas."""
        return self._files.get(name)

    def replaced(self, name: str, frame: pd.DataFrame) -> Tables:
        """These tables with the pandas table ``name`` replaced by ``frame``."""
        return Tables({**self._frames, name: frame}, self._files)


@dataclass
class Dataset:
    """A loaded, typed and validated raw dataset.

    Attributes:
        tables: Table name to DataFrame with the contract's dtypes; absent optional tables
            are missing. From :func:`load_dataset` it is a :class:`Tables`, where the large
            logs stay in their file until a frame is asked for.
        report: The validation report (warnings only, when loading succeeded).
        source: Directory the data came from (or the URI Spark read it from).

    """

    tables: Mapping[str, pd.DataFrame]
    report: ValidationReport
    source: Path | str

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    def has(self, name: str) -> bool:
        """Whether table ``name`` was provided."""
        return name in self.tables

    def file_table(self, name: str) -> FileTable | None:
        """The file table ``name`` is scanned from, or None when it is in memory."""
        return self.tables.file(name) if isinstance(self.tables, Tables) else None

    def rows(self, name: str) -> int:
        """Number of rows of table ``name``."""
        source = self.file_table(name)
        return source.rows if source is not None else len(self.tables[name])

    def date_range(self, name: str, column: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Earliest and latest value of date column ``column`` of table ``name`` (NaT if none)."""
        source = self.file_table(name)
        if source is not None:
            lo, hi = source.date_ranges[column]
            return (pd.NaT if lo is None else lo), (pd.NaT if hi is None else hi)
        s = self.tables[name][column]
        return s.min(), s.max()


def _check_table(df: pd.DataFrame, table: Table, out: Collector) -> None:
    """Rules inside one table: nulls, value sets, ranges, keys, date order."""
    for col in table.columns:
        if col.name not in df.columns:
            continue
        s = df[col.name]
        if col.min is not None:
            out.add(
                "error",
                table.name,
                col.name,
                f"below the minimum {col.min:g}",
                (s < col.min).fillna(False).to_numpy(),
                s,
            )
        if col.max is not None:
            out.add(
                "error",
                table.name,
                col.name,
                f"above the maximum {col.max:g}",
                (s > col.max).fillna(False).to_numpy(),
                s,
            )
    if table.key and all(k in df.columns for k in table.key):
        dup = df.duplicated(list(table.key), keep="first").to_numpy()
        keys = df[list(table.key)].apply(tuple, axis=1) if dup.any() else None
        out.add(
            "error",
            table.name,
            ",".join(table.key),
            "duplicate key (the same " + ", ".join(table.key) + " appears on an earlier row)",
            dup,
            keys,
        )
    for rule in table.date_orders:
        if rule.earlier in df.columns and rule.later in df.columns:
            bad = (df[rule.later] < df[rule.earlier]).fillna(False).to_numpy()
            out.add(
                "error",
                table.name,
                rule.later,
                f"{rule.later} is before {rule.earlier}",
                bad,
                df[rule.later],
            )


def _check_foreign_keys(
    frames: dict[str, pd.DataFrame],
    files: dict[str, FileTable],
    checker: Checker,
    out: Collector,
) -> None:
    for name in [n for n in TABLES if n in frames or n in files]:
        for fk in TABLES[name].foreign_keys:
            if fk.table not in frames and fk.table not in files:
                continue
            if name in files:
                if all(c in files[name].file_types for c in fk.columns):
                    checker.foreign_key(name, fk, frames.get(fk.table), out)
                continue
            df = frames[name]
            if not all(c in df.columns for c in fk.columns):
                continue
            ref = frames[fk.table]
            (col,) = fk.columns
            (ref_col,) = fk.ref_columns
            if ref_col not in ref.columns:  # reported as a missing required column
                continue
            bad = ~df[col].isin(ref[ref_col]).to_numpy() & df[col].notna().to_numpy()
            out.add("error", name, col, f"not found in {fk.table}.{ref_col}", bad, df[col])


def _check_cross_table(
    tables: dict[str, pd.DataFrame],
    files: dict[str, FileTable],
    checker: Checker,
    out: Collector,
) -> None:
    """Rules that join tables: contact ownership, lifecycle consistency."""
    nps, contacts = tables.get("nps_responses"), tables.get("contacts")
    if nps is not None and contacts is not None:
        owner = nps["contact_id"].map(contacts.set_index("contact_id")["account_id"])
        bad = (owner.notna() & (owner != nps["account_id"])).to_numpy()
        out.add(
            "error",
            "nps_responses",
            "contact_id",
            "contact belongs to another account",
            bad,
            nps["contact_id"],
        )

    subs, accounts = tables.get("subscriptions"), tables.get("accounts")
    if subs is None or accounts is None or subs.empty:  # no contracts at all: nothing to check
        return
    has_subs = accounts["account_id"].isin(subs["account_id"]).to_numpy()
    out.add(
        "warning",
        "accounts",
        "account_id",
        "account has no subscriptions row",
        ~has_subs,
        accounts["account_id"],
    )
    first_start = subs.groupby("account_id")["start_date"].min()
    since = accounts["account_id"].map(first_start)
    out.add(
        "warning",
        "accounts",
        "customer_since",
        "after the account's first subscription start",
        (accounts["customer_since"] > since).fillna(False).to_numpy(),
        accounts["customer_since"],
    )
    _check_users_per_seat(tables, files, checker, subs, out)
    ended = churn_dates(subs)
    for name, date_col in (
        ("usage", "date"),
        ("support_tickets", "created_date"),
        ("engagement", "date"),
    ):
        if name in files:
            checker.after_churn(name, date_col, ended, out)
            continue
        df = tables.get(name)
        if df is None:
            continue
        after = np.zeros(len(df), dtype=bool)
        gone = df["account_id"].isin(ended.index).to_numpy()  # few accounts: map only theirs
        if gone.any():  # none churned: nothing to compare (and an empty map is not a date)
            churned = df.loc[gone, "account_id"].map(ended).astype(df[date_col].dtype)
            after[gone] = (df.loc[gone, date_col] > churned).to_numpy()
        out.add(
            "warning", name, date_col, "activity after the account churned", after, df[date_col]
        )


def _check_users_per_seat(
    tables: dict[str, pd.DataFrame],
    files: dict[str, FileTable],
    checker: Checker,
    subs: pd.DataFrame,
    out: Collector,
) -> None:
    """Weekly active users beyond what the account's seats make plausible.

    100,000 weekly users on a 9-seat account used to pass ("active each week: 1111111%").
    """
    if "seats" not in subs:
        return
    limit = (subs.groupby("account_id")["seats"].max() * MAX_USERS_PER_SEAT).dropna()
    limit = limit[limit > 0].astype("float64")
    message = f"more than {MAX_USERS_PER_SEAT} weekly active users per seat the account bought"
    if "weekly_active_users" in files:
        checker.above_per_account("weekly_active_users", "active_users", limit, message, out)
        return
    wau = tables.get("weekly_active_users")
    if wau is None or wau.empty:
        return
    bad = (wau["active_users"] > wau["account_id"].map(limit)).fillna(False).to_numpy()
    out.add("error", "weekly_active_users", "active_users", message, bad, wau["active_users"])


def churn_dates(subscriptions: pd.DataFrame) -> pd.Series:
    """Date each account churned for good (a churn row with no later row), by account id."""
    last = subscriptions.sort_values(["account_id", "start_date"]).groupby("account_id").tail(1)
    last = last[last["change_type"] == "churn"]
    return last.set_index("account_id")["start_date"]


def load_dataset(
    data_dir: str | Path,
    tables: Iterable[str] | None = None,
    *,
    strict: bool = True,
    in_duckdb: Iterable[str] = FILE_TABLES,
    now: str | pd.Timestamp | None = None,
    future: str = "error",
    checker: Checker | None = None,
) -> Dataset:
    """Read, type and validate the raw tables in ``data_dir``.

    Args:
        data_dir: Directory with one ``<table>.parquet`` or ``<table>.csv`` per table.
        tables: Restrict loading to these tables (default: all contract tables).
        strict: Raise :class:`ContractError` when there is any error.
        in_duckdb: Tables checked by DuckDB from their file and left there (a subset of
            :data:`DUCKDB_CHECKABLE`); the others are loaded in pandas.
        now: The data's reference date: a row dated after it (by its table's event date)
            is an error naming table, column, row and value. None (the library's default,
            for simulated worlds that run past the real clock) checks nothing; ``radar
            validate`` and ``radar features`` pass today unless given ``--now``.
        future: ``"error"``, or ``"exclude"``: such rows are a warning and left out.
        checker: Where the large logs are checked and the tables found and read (default:
            DuckDB on the directory ``data_dir``; :class:`features.sparkcheck.SparkChecker`
            for Spark, which also reads URIs and JDBC tables). Closed when done.

    Returns:
        The typed tables and the validation report.

    Raises:
        ContractError: When ``strict`` and the data breaks the contract.
        ValueError: When ``in_duckdb`` names a table DuckDB cannot check.

    """
    if checker is None:
        data_dir = Path(data_dir)
        checker = DuckChecker(data_dir)
    in_duckdb = set(in_duckdb)
    if in_duckdb - set(DUCKDB_CHECKABLE):
        raise ValueError(f"cannot check in DuckDB: {sorted(in_duckdb - set(DUCKDB_CHECKABLE))}")
    report = ValidationReport()
    out = Collector(report)
    wanted = list(tables) if tables is not None else list(TABLES)
    frames: dict[str, pd.DataFrame] = {}
    files: dict[str, FileTable] = {}
    with checker:
        if not checker.exists():
            out.add("error", str(data_dir), None, "data directory does not exist")
            raise ContractError(report)
        for name in wanted:
            table = TABLES[name]
            path = checker.find(name)
            if path is None:
                if table.required:
                    out.add(
                        "error",
                        name,
                        None,
                        f"required table missing: no {name}.parquet or {name}.csv in {data_dir}",
                    )
                else:
                    _absent(table, report, frames)
                continue
            label = Path(location_label(path))  # usage.csv, or raw.usage for a database
            if checker.is_empty(path):  # not even a header
                _empty(table, label, out, report, frames)
                continue
            if name in in_duckdb:
                checked = checker.load(table, path, out)
                if checked is not None and checked.rows == 0:
                    _empty(table, label, out, report, frames)
                elif checked is not None:
                    files[name] = checked
                continue
            try:
                raw = checker.read_raw(path)
            except Exception as exc:  # unreadable file: say which and why
                out.add("error", name, None, f"cannot read {label}: {exc}")
                continue
            if raw.empty:
                _empty(table, label, out, report, frames)
                continue
            typed = type_frame(raw.reset_index(drop=True), table, label, out)
            _check_table(typed, table, out)
            frames[name] = typed
            log.debug("loaded %s: %d rows from %s", name, len(typed), path)
        if now is not None:  # the CLI passes today unless told otherwise
            _check_future(frames, files, checker, reference_date(now), future, out)
        _check_foreign_keys(frames, files, checker, out)
        _check_cross_table(frames, files, checker, out)
    if strict and not report.ok:
        raise ContractError(report)
    return Dataset(tables=Tables(frames, files), report=report, source=data_dir)


FUTURE_MODES = ("error", "exclude")


def reference_date(now: str | pd.Timestamp | None = None) -> pd.Timestamp:
    """The data's reference date: ``now``, or today (no row may be dated after it)."""
    return pd.Timestamp(now).normalize() if now is not None else pd.Timestamp.today().normalize()


def _check_future(
    frames: dict[str, pd.DataFrame],
    files: dict[str, FileTable],
    checker: Checker,
    now: pd.Timestamp,
    future: str,
    out: Collector,
) -> None:
    """Rows dated after ``now``: an error, or with ``future="exclude"`` a warning, left out.

    One row from 2099 otherwise moved "the latest date" of the data there.
    """
    if future not in FUTURE_MODES:
        raise ValueError(f"future rows: use one of {', '.join(FUTURE_MODES)}, got {future!r}")
    level = "error" if future == "error" else "warning"
    message = f"dated after the reference date {now.date()} (--now)"
    message += ": excluded" if future == "exclude" else "; give --now or --future-rows exclude"
    for name, table in TABLES.items():
        col = table.event_date
        if col is None:
            continue
        if name in files:
            n = checker.after_date(name, col, now, level, message, out)
            if n and future == "exclude":  # rare: this table is read in pandas instead
                df = checker.read_frame(files.pop(name))
                frames[name] = df[~(df[col] > now).fillna(False)].reset_index(drop=True)
            continue
        df = frames.get(name)
        if df is None or col not in df:
            continue
        after = (df[col] > now).fillna(False).to_numpy()
        if after.any():
            out.add(level, name, col, message, after, df[col])
            if future == "exclude":
                frames[name] = df[~after].reset_index(drop=True)


def _absent(table: Table, report: ValidationReport, frames: dict[str, pd.DataFrame]) -> None:
    """Record an optional table as absent; an empty stand-in where the engine reads it."""
    report.missing_optional.append(table.name)
    if table.name in STAND_IN:
        frames[table.name] = pd.DataFrame(
            {c.name: pd.Series(dtype=PANDAS_DTYPE[c.kind]) for c in table.columns}
        )


def _empty(
    table: Table,
    path: Path,
    out: Collector,
    report: ValidationReport,
    frames: dict[str, pd.DataFrame],
) -> None:
    """A file with no data rows: absent when the table is optional, an error when required."""
    if table.required:
        out.add("error", table.name, None, f"{path.name} has no data rows")
        return
    out.add(
        "warning",
        table.name,
        None,
        f"{path.name} has no data rows: treated as absent (its features are missing, not zero)",
    )
    _absent(table, report, frames)


def validate_dataset(data_dir: str | Path) -> ValidationReport:
    """Validate ``data_dir`` and return the report without raising."""
    try:
        return load_dataset(data_dir, strict=False).report
    except ContractError as exc:
        return exc.report
