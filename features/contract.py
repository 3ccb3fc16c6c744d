"""Load a raw data directory and validate it against the contract in :mod:`features.schema`.

Every finding names the table, the column, the first offending rows (1-based data rows, the
header not counted: in a CSV file, row N is on line N + 1) and their values. Errors stop any
command before it writes; warnings are listed and the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.schema import FILE_SUFFIXES, PANDAS_DTYPE, TABLES, Kind, Table

log = logging.getLogger(__name__)

MAX_SHOWN = 5  # offending rows quoted per finding
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


@dataclass(frozen=True)
class Finding:
    """One validation result.

    Attributes:
        level: ``"error"`` (stops the run) or ``"warning"`` (listed only).
        table: Table at fault.
        column: Column at fault, or ``None`` for a whole-table finding.
        message: What is wrong.
        rows: 1-based data row numbers of the first offending rows.
        values: The offending values, aligned with ``rows``.
        count: How many rows are affected in all.

    """

    level: str
    table: str
    column: str | None
    message: str
    rows: tuple[int, ...] = ()
    values: tuple[object, ...] = ()
    count: int = 0

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"{self.level.upper()} {where}: {self.message}"
        if self.rows:
            shown = ", ".join(
                f"row {r} ({_show(v)})" for r, v in zip(self.rows, self.values, strict=True)
            )
            more = f" and {self.count - len(self.rows)} more" if self.count > len(self.rows) else ""
            text += f" [{self.count} row{'s' if self.count != 1 else ''}: {shown}{more}]"
        return text


def _show(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if value is None or (not isinstance(value, str | tuple) and pd.isna(value)):
        return "empty"
    return repr(value)


@dataclass
class ValidationReport:
    """All findings of one validation run."""

    findings: list[Finding] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings that stop the run."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings that are only listed."""
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return not self.errors

    def summary(self) -> str:
        """Human-readable list of every finding, errors first."""
        lines = [str(f) for f in self.errors + self.warnings]
        if self.missing_optional:
            lines.append("NOTE optional tables absent: " + ", ".join(self.missing_optional))
        return "\n".join(lines)


class ContractError(Exception):
    """Raised when the input breaks the data contract; carries the full report."""

    def __init__(self, report: ValidationReport):
        self.report = report
        n = len(report.errors)
        super().__init__(
            f"input data breaks the contract ({n} error{'s' if n != 1 else ''}):\n"
            + report.summary()
        )


@dataclass
class Dataset:
    """A loaded, typed and validated raw dataset.

    Attributes:
        tables: Table name to DataFrame with the contract's dtypes; absent optional tables
            are missing from the dict.
        report: The validation report (warnings only, when loading succeeded).
        source: Directory the data came from.

    """

    tables: dict[str, pd.DataFrame]
    report: ValidationReport
    source: Path

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    def has(self, name: str) -> bool:
        """Whether table ``name`` was provided."""
        return name in self.tables


class _Collector:
    """Accumulates findings with their first offending rows."""

    def __init__(self, report: ValidationReport):
        self.report = report

    def add(
        self,
        level: str,
        table: str,
        column: str | None,
        message: str,
        mask: pd.Series | np.ndarray | None = None,
        values: pd.Series | None = None,
    ) -> None:
        if mask is None:
            self.report.findings.append(Finding(level, table, column, message))
            return
        mask = np.asarray(mask, dtype=bool)
        count = int(mask.sum())
        if count == 0:
            return
        idx = np.flatnonzero(mask)[:MAX_SHOWN]
        shown = () if values is None else tuple(values.iloc[idx].tolist())
        self.report.findings.append(
            Finding(
                level,
                table,
                column,
                message,
                rows=tuple(int(i) + 1 for i in idx),
                values=shown if values is not None else tuple("" for _ in idx),
                count=count,
            )
        )


def find_table_file(data_dir: Path, table: str) -> Path | None:
    """Return the file holding ``table`` in ``data_dir``, or None when absent."""
    found = [data_dir / f"{table}{s}" for s in FILE_SUFFIXES if (data_dir / f"{table}{s}").exists()]
    if len(found) > 1:
        raise ContractError(
            ValidationReport(
                [
                    Finding(
                        "error",
                        table,
                        None,
                        "both " + " and ".join(p.name for p in found) + " exist; keep one",
                    )
                ]
            )
        )
    return found[0] if found else None


def _read_raw(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        # Everything as text first, so unparseable values can be reported, not guessed.
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    table = pq.read_table(path)
    # Dictionary-encoded text decodes in Arrow; pandas then wraps the strings without copying.
    for i, col in enumerate(table.schema):
        if pa.types.is_dictionary(col.type):
            table = table.set_column(i, col.name, pc.dictionary_decode(table.column(i)))
        elif pa.types.is_date(col.type):  # else pandas makes Python date objects
            table = table.set_column(i, col.name, table.column(i).cast(pa.timestamp("s")))
    return table.to_pandas()


def _coerce(df: pd.DataFrame, table: Table, out: _Collector) -> pd.DataFrame:
    """Cast each contract column to its dtype, reporting values that do not parse."""
    typed = {}
    for col in table.columns:
        if col.name not in df.columns:
            continue
        raw = df[col.name]
        was_null = raw.isna().to_numpy()
        if not col.nullable:  # checked on the raw values: unparseable ones are reported below
            out.add(
                "error", table.name, col.name, "empty value in a required column", was_null, raw
            )
        if col.kind is Kind.DATE:
            if pd.api.types.is_datetime64_any_dtype(raw.dtype):
                parsed = raw
            else:
                parsed = pd.to_datetime(raw.astype("str"), format="ISO8601", errors="coerce")
                parsed = parsed.where(~was_null)
            bad = ~was_null & parsed.isna().to_numpy()
            out.add("error", table.name, col.name, "not a date (YYYY-MM-DD)", bad, raw)
            typed[col.name] = parsed.astype(PANDAS_DTYPE[col.kind])
        elif col.kind in (Kind.INT, Kind.FLOAT):
            parsed = pd.to_numeric(raw, errors="coerce")
            bad = ~was_null & parsed.isna().to_numpy()
            out.add("error", table.name, col.name, "not a number", bad, raw)
            if col.kind is Kind.INT and not pd.api.types.is_integer_dtype(parsed.dtype):
                frac = parsed.notna().to_numpy() & (parsed.fillna(0) % 1 != 0).to_numpy()
                out.add("error", table.name, col.name, "not a whole number", frac, raw)
                parsed = parsed.where(~frac).round()
            typed[col.name] = parsed.astype(PANDAS_DTYPE[col.kind])
        elif col.kind is Kind.BOOL:
            if pd.api.types.is_bool_dtype(raw.dtype):
                parsed = raw.astype("boolean")
            else:
                text = raw.astype("str").str.strip().str.lower()
                parsed = pd.Series(pd.NA, index=raw.index, dtype="boolean")
                parsed[text.isin(_TRUE).to_numpy()] = True
                parsed[text.isin(_FALSE).to_numpy()] = False
            bad = ~was_null & parsed.isna().to_numpy()
            out.add("error", table.name, col.name, "not true/false", bad, raw)
            typed[col.name] = parsed
        elif col.kind is Kind.CATEGORY:
            # Lenient on spelling ("Mid-Market" is mid_market), strict on the set. Normalise
            # the distinct values only: category columns have few.
            codes, uniques = pd.factorize(raw)
            norm = (
                pd.Series(uniques, dtype="str")
                .str.strip()
                .str.lower()
                .str.replace(r"[\s\-]+", "_", regex=True)
                .to_numpy(dtype=object)
            )
            text = pd.Series(
                np.where(codes >= 0, norm[np.maximum(codes, 0)], None), index=raw.index, dtype="str"
            )
            bad = ~was_null & ~text.isin(col.values).to_numpy()
            out.add(
                "error",
                table.name,
                col.name,
                "not one of " + ", ".join(col.values),
                bad,
                raw,
            )
            typed[col.name] = text.astype("str")
        else:  # ID, STR
            if pd.api.types.is_float_dtype(raw.dtype):  # ids read as floats: 12.0 -> "12"
                raw = raw.astype("Int64")
            text = raw if raw.dtype == "str" else raw.astype("str")
            typed[col.name] = (
                text.where(~pd.Series(was_null, index=raw.index)) if (was_null.any()) else text
            )
    return pd.DataFrame(typed, index=df.index)


def _check_table(df: pd.DataFrame, table: Table, out: _Collector) -> None:
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


def _check_foreign_keys(tables: dict[str, pd.DataFrame], out: _Collector) -> None:
    for name, df in tables.items():
        for fk in TABLES[name].foreign_keys:
            if fk.table not in tables or not all(c in df.columns for c in fk.columns):
                continue
            ref = tables[fk.table]
            (col,) = fk.columns
            (ref_col,) = fk.ref_columns
            bad = ~df[col].isin(ref[ref_col]).to_numpy() & df[col].notna().to_numpy()
            out.add("error", name, col, f"not found in {fk.table}.{ref_col}", bad, df[col])


def _check_cross_table(tables: dict[str, pd.DataFrame], out: _Collector) -> None:
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
    if subs is None or accounts is None:
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
    ended = churn_dates(subs)
    for name, date_col in (
        ("usage", "date"),
        ("support_tickets", "created_date"),
        ("engagement", "date"),
    ):
        df = tables.get(name)
        if df is None:
            continue
        after = np.zeros(len(df), dtype=bool)
        gone = df["account_id"].isin(ended.index).to_numpy()  # few accounts: map only theirs
        after[gone] = (df.loc[gone, date_col] > df.loc[gone, "account_id"].map(ended)).to_numpy()
        out.add(
            "warning", name, date_col, "activity after the account churned", after, df[date_col]
        )


def churn_dates(subscriptions: pd.DataFrame) -> pd.Series:
    """Date each account churned for good (a churn row with no later row), by account id."""
    last = subscriptions.sort_values(["account_id", "start_date"]).groupby("account_id").tail(1)
    last = last[last["change_type"] == "churn"]
    return last.set_index("account_id")["start_date"]


def load_dataset(
    data_dir: str | Path, tables: Iterable[str] | None = None, *, strict: bool = True
) -> Dataset:
    """Read, type and validate the raw tables in ``data_dir``.

    Args:
        data_dir: Directory with one ``<table>.parquet`` or ``<table>.csv`` per table.
        tables: Restrict loading to these tables (default: all contract tables).
        strict: Raise :class:`ContractError` when there is any error.

    Returns:
        The typed tables and the validation report.

    Raises:
        ContractError: When ``strict`` and the data breaks the contract.

    """
    data_dir = Path(data_dir)
    report = ValidationReport()
    out = _Collector(report)
    if not data_dir.is_dir():
        out.add("error", str(data_dir), None, "data directory does not exist")
        raise ContractError(report)
    wanted = list(tables) if tables is not None else list(TABLES)
    loaded: dict[str, pd.DataFrame] = {}
    for name in wanted:
        table = TABLES[name]
        path = find_table_file(data_dir, name)
        if path is None:
            if table.required:
                out.add(
                    "error",
                    name,
                    None,
                    f"required table missing: no {name}.parquet or {name}.csv in {data_dir}",
                )
            else:
                report.missing_optional.append(name)
            continue
        try:
            raw = _read_raw(path)
        except Exception as exc:  # unreadable file: say which and why
            out.add("error", name, None, f"cannot read {path.name}: {exc}")
            continue
        raw = raw.reset_index(drop=True)
        missing = [c.name for c in table.columns if c.required and c.name not in raw.columns]
        for col in missing:
            out.add("error", name, col, f"required column missing from {path.name}")
        unknown = [c for c in raw.columns if c not in table.column_names]
        if unknown:
            out.add(
                "warning",
                name,
                None,
                "columns not in the contract are ignored: " + ", ".join(map(str, unknown)),
            )
        typed = _coerce(raw, table, out)
        for col in table.columns:  # absent optional columns exist downstream, all empty
            if col.name not in typed.columns and not col.required:
                typed[col.name] = pd.Series(pd.NA, index=typed.index, dtype=PANDAS_DTYPE[col.kind])
        typed = typed[[c for c in table.column_names if c in typed.columns]]
        _check_table(typed, table, out)
        loaded[name] = typed
        log.debug("loaded %s: %d rows from %s", name, len(typed), path)
    _check_foreign_keys(loaded, out)
    _check_cross_table(loaded, out)
    if strict and not report.ok:
        raise ContractError(report)
    return Dataset(tables=loaded, report=report, source=data_dir)


def validate_dataset(data_dir: str | Path) -> ValidationReport:
    """Validate ``data_dir`` and return the report without raising."""
    try:
        return load_dataset(data_dir, strict=False).report
    except ContractError as exc:
        return exc.report
