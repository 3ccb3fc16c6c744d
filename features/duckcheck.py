"""Validate large tables straight from their file, and scan them in place later.

A pandas copy of a large activity log costs about 3.5 times the frame while it is typed and
checked. Here the same contract rules run as SQL over the Parquet or CSV file, with the same
findings as the pandas loader (table.column, message, the first offending rows as 1-based
data rows, their values), and the engine later reads the file through
:meth:`FileTable.select_sql`: the table is never held in pandas by the pipeline.

The rules are written once, as SQL in DuckDB's dialect (:class:`SqlChecker`). They run in
DuckDB (:class:`DuckChecker`) or, translated by sqlglot, in Spark SQL
(:class:`features.sparkcheck.SparkChecker`): one rule list, the same findings.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import tempfile
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from features.checker import (
    Checker,
    Location,
    location_label,
)
from features.findings import MAX_SHOWN, Collector
from features.raw import FALSE, TRUE, find_table_file, read_raw
from features.schema import TABLES, WHOLE_NUMBER_LIMIT, Column, ForeignKey, Kind, Table

log = logging.getLogger(__name__)

_FLOATS = ("FLOAT", "DOUBLE")
_FIT_BIGINT = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")
_INTEGERS = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)
_SQL_TYPE = {
    Kind.ID: "VARCHAR",
    Kind.STR: "VARCHAR",
    Kind.CATEGORY: "VARCHAR",
    Kind.DATE: "TIMESTAMP",
    Kind.INT: "BIGINT",
    Kind.FLOAT: "DOUBLE",
    Kind.BOOL: "BOOLEAN",
}


def no_progress_bar(con: duckdb.DuckDBPyConnection) -> None:
    """Turn DuckDB's progress bar off for this connection (a session setting)."""
    # In Jupyter without ipywidgets DuckDB refuses the setting: there is no bar to turn off.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")


def quote(name: str) -> str:
    """SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _is_date(ftype: str) -> bool:
    return ftype == "DATE" or ftype.startswith("TIMESTAMP")


def _is_number(ftype: str) -> bool:
    return ftype in _FLOATS or ftype in _INTEGERS or ftype.startswith("DECIMAL")


def _strip(sql: str) -> str:
    """Python's ``str.strip()`` on the SQL text value."""
    return f"regexp_replace({sql}, '^\\s+|\\s+$', '', 'g')"


@dataclass(frozen=True)
class _Check:
    """One rule on one column: rows where ``bad`` holds are reported with ``shown``."""

    column: str
    message: str
    bad: str
    shown: str


@dataclass
class _Plan:
    """How one contract column is typed and checked, from the type it has in the file."""

    column: Column
    raw: str  # the raw value (a column of the checked view)
    null: str  # the raw value is empty
    typed: str  # the typed value, as an expression of the raw column
    checks: list[_Check] = field(default_factory=list)


def _plan(col: Column, ftype: str, raw: str) -> _Plan:
    """The typing rules of :func:`features.contract._coerce`, as SQL over column ``raw``."""
    # pandas reads NaN in a float column as empty.
    null = f"({raw} IS NULL OR isnan({raw}))" if ftype in _FLOATS else f"({raw} IS NULL)"
    text = raw if ftype == "VARCHAR" else f"CAST({raw} AS VARCHAR)"
    plan = _Plan(col, raw, null, text)

    def check(message: str, bad: str, shown: str = raw) -> None:
        plan.checks.append(_Check(col.name, message, bad, shown))

    if not col.nullable:  # checked on the raw values: unparseable ones are reported below
        check("empty value in a required column", null)
    if col.kind is Kind.DATE:
        if _is_date(ftype):
            plan.typed = f"CAST({raw} AS TIMESTAMP)"
        else:
            plan.typed = f"TRY_CAST({text} AS TIMESTAMP)"
            check("not a date (YYYY-MM-DD)", f"(NOT {null} AND {plan.typed} IS NULL)")
    elif col.kind in (Kind.INT, Kind.FLOAT):
        if _is_number(ftype) or ftype == "BOOLEAN":
            num = f"CAST({raw} AS DOUBLE)"
        else:
            num = f"TRY_CAST({text} AS DOUBLE)"
            check("not a number", f"(NOT {null} AND ({num} IS NULL OR isnan({num})))")
        check("not a finite number", f"(NOT {null} AND isinf({num}))")
        if col.kind is Kind.FLOAT:
            plan.typed = f"(CASE WHEN isnan({num}) OR isinf({num}) THEN NULL ELSE {num} END)"
        elif ftype in _FIT_BIGINT or ftype == "BOOLEAN":
            plan.typed = f"CAST({raw} AS BIGINT)"
        elif ftype in _INTEGERS:
            plan.typed = f"TRY_CAST({raw} AS BIGINT)"
        else:
            finite = f"({num} IS NOT NULL AND NOT isnan({num}) AND NOT isinf({num}))"
            frac = f"({finite} AND {num} % 1 <> 0)"
            check("not a whole number", frac)
            check(
                "too large for a whole number", f"({finite} AND abs({num}) > {WHOLE_NUMBER_LIMIT})"
            )
            plan.typed = (
                f"TRY_CAST(CASE WHEN {frac} OR isnan({num}) THEN NULL ELSE round({num}) END"
                " AS BIGINT)"
            )
    elif col.kind is Kind.BOOL:
        if ftype == "BOOLEAN":
            plan.typed = raw
        else:
            word = f"lower({_strip(text)})"
            yes, no = (", ".join(literal(v) for v in vs) for vs in (TRUE, FALSE))
            plan.typed = (
                f"(CASE WHEN {word} IN ({yes}) THEN TRUE WHEN {word} IN ({no}) THEN FALSE END)"
            )
            check("not true/false", f"(NOT {null} AND {plan.typed} IS NULL)")
    elif col.kind is Kind.CATEGORY:
        # Lenient on spelling ("Mid-Market" is mid_market), strict on the set.
        norm = f"regexp_replace(lower({_strip(text)}), '[\\s\\-]+', '_', 'g')"
        plan.typed = f"(CASE WHEN NOT {null} THEN {norm} END)"
        allowed = ", ".join(literal(v) for v in col.values)
        check(col.not_one_of(), f"(NOT {null} AND {norm} NOT IN ({allowed}))")
    elif ftype in _FLOATS:  # ids read as floats: 12.0 -> "12"
        plan.typed = f"(CASE WHEN NOT {null} THEN CAST(TRY_CAST({raw} AS BIGINT) AS VARCHAR) END)"
    return plan


@dataclass(frozen=True)
class FileTable:
    """A table validated in DuckDB and scanned from its file, never loaded whole in pandas.

    Attributes:
        name: Contract table name.
        path: The Parquet or CSV file: a local path, or where the Spark checker read it
            (a URI, a JDBC table).
        file_types: Type of each column as read from the file, in DuckDB's names.
        rows: Number of data rows.
        date_ranges: Earliest and latest value of each date column (None when all empty).

    """

    name: str
    path: Location
    file_types: dict[str, str]
    rows: int
    date_ranges: dict[str, tuple[pd.Timestamp | None, pd.Timestamp | None]]

    @property
    def label(self) -> str:
        """The location's short name, for messages."""
        return location_label(self.path)

    @property
    def local(self) -> bool:
        """Whether DuckDB can read it (a local file, not a URI or a JDBC table)."""
        return isinstance(self.path, Path)

    def source_sql(self) -> str:
        """The file as a DuckDB relation, every CSV value read as text."""
        if not isinstance(self.path, Path):
            raise ValueError(
                f"{self.name}: {self.label} was read by Spark; this step runs on DuckDB, which "
                "reads local files only (labels from activity need a local usage file)"
            )
        return _source(self.path)

    def select_sql(self, date_type: str = "TIMESTAMP") -> str:
        """SQL for the typed table: contract columns and types, absent optional ones empty.

        Args:
            date_type: ``TIMESTAMP`` (what pandas holds) or ``DATE`` for the date columns.

        """
        return f"SELECT {self.columns_sql(date_type)} FROM {self.source_sql()}"

    def columns_sql(self, date_type: str = "TIMESTAMP") -> str:
        """The select list of :meth:`select_sql`, over a relation with the file's columns.

        The Spark engine runs it translated, over the table Spark read.
        """
        cols = []
        for col in TABLES[self.name].columns:
            ftype = self.file_types.get(col.name)
            if ftype is None:
                sql_type = date_type if col.kind is Kind.DATE else _SQL_TYPE[col.kind]
                expr = f"CAST(NULL AS {sql_type})"
            elif col.kind is Kind.DATE and date_type == "DATE":
                # Straight to days: no round trip through TIMESTAMP for a DATE column.
                raw = quote(col.name)
                expr = raw if ftype == "DATE" else f"CAST({_plan(col, ftype, raw).typed} AS DATE)"
            else:
                expr = _plan(col, ftype, quote(col.name)).typed
            cols.append(f"{expr} AS {quote(col.name)}")
        return ", ".join(cols)


def _source(path: Path) -> str:
    if path.suffix == ".csv":
        # As pandas reads it for the contract: comma separated, a header, all values text.
        return (
            f"read_csv({literal(str(path))}, header = true, all_varchar = true, "
            "delim = ',', quote = '\"', escape = '\"')"
        )
    return f"read_parquet({literal(str(path))})"


def _t(col: str) -> str:
    """The typed value of ``col`` in a checked view."""
    return quote("t_" + col)


def _py(value: object) -> object:
    """A DuckDB value as the pandas loader shows it (dates as Timestamps)."""
    if isinstance(value, tuple):
        return tuple(_py(v) for v in value)
    if isinstance(value, _dt.date):
        return pd.Timestamp(value)
    return value


class SqlChecker(Checker):
    """The contract's rules on the large logs as SQL (DuckDB's dialect), written once.

    Subclasses say how a query runs and how a file becomes a relation numbered by data row
    (``_row``); every rule, message and shown value is built here, for every engine.
    """

    errors: tuple[type[BaseException], ...] = ()  # what the engine raises for a bad file

    def __init__(self) -> None:
        # Table name -> checked view (_row, r_ raw and t_ typed columns) and its columns.
        self._views: dict[str, tuple[str, set[str]]] = {}

    @abstractmethod
    def _rows(self, sql: str) -> list[tuple]:
        """Every row of query ``sql`` (DuckDB dialect)."""

    @abstractmethod
    def _define(self, name: str, sql: str, materialize: bool = False) -> None:
        """Make query ``sql`` the relation ``name`` (a table when ``materialize``)."""

    @abstractmethod
    def _register(self, name: str, df: pd.DataFrame) -> None:
        """Make frame ``df`` the relation ``name``."""

    @abstractmethod
    def _unregister(self, name: str) -> None:
        """Forget relation ``name`` made by :meth:`_register`."""

    @abstractmethod
    def _numbered(self, name: str, where: Location) -> tuple[str, dict[str, str]]:
        """The table's rows with ``_row`` (1-based data row) as a relation.

        Also each column's type, in DuckDB's names.
        """

    def _one(self, sql: str) -> tuple:
        """The single row of an aggregate query."""
        (row,) = self._rows(sql)
        return row

    def _first_rows(self, view: str, bad: str, shown: str) -> tuple[list[int], list[object]]:
        got = self._rows(
            f"SELECT _row, {shown} FROM {view} WHERE {bad} ORDER BY _row LIMIT {MAX_SHOWN}"
        )
        return [int(r[0]) for r in got], [_py(r[1]) for r in got]

    def _report(
        self, out: Collector, table: str, check: _Check, view: str, count: int, level: str
    ) -> None:
        if count:
            rows, values = self._first_rows(view, check.bad, check.shown)
            out.add_rows(level, table, check.column, check.message, rows, values, count)

    def load(self, table: Table, where: Location, out: Collector) -> FileTable | None:
        """Check ``table`` in ``where``; None when it cannot be read.

        Findings go to ``out`` in the order the pandas loader gives them.
        """
        name, label = table.name, location_label(where)
        try:
            rows_sql, ftypes = self._numbered(name, where)
        except self.errors as exc:  # unreadable file: say which and why
            out.add("error", name, None, f"cannot read {label}: {_why(exc)}")
            return None
        for col in table.columns:
            if col.required and col.name not in ftypes:
                out.add("error", name, col.name, f"required column missing from {label}")
        unknown = [c for c in ftypes if c not in table.column_names]
        if unknown:
            out.add(
                "warning",
                name,
                None,
                "columns not in the contract are ignored: " + ", ".join(unknown),
            )
        plans = {
            c.name: _plan(c, ftypes[c.name], quote("r_" + c.name))
            for c in table.columns
            if c.name in ftypes
        }
        view = "checked_" + name
        raw_cols = ", ".join(f"{quote(c)} AS {quote('r_' + c)}" for c in plans)
        typed_cols = ", ".join(f"{p.typed} AS {_t(c)}" for c, p in plans.items())
        try:
            self._define(
                view,
                f"SELECT *, {typed_cols} FROM (SELECT _row, {raw_cols} FROM ({rows_sql}) AS _f) "
                "AS _r",
            )
            checked = self._check(table, plans, quote(view), out)
        except self.errors as exc:
            out.add("error", name, None, f"cannot read {label}: {_why(exc)}")
            return None
        self._views[name] = (quote(view), set(plans))
        rows, date_ranges = checked
        log.debug("checked %s in %s: %d rows from %s", name, type(self).__name__, rows, label)
        return FileTable(name, where, ftypes, rows, date_ranges)

    def _check(
        self, table: Table, plans: dict[str, _Plan], view: str, out: Collector
    ) -> tuple[int, dict[str, tuple[pd.Timestamp | None, pd.Timestamp | None]]]:
        """Run the rules on the checked view; return the row count and the date ranges."""
        checks = [ch for p in plans.values() for ch in p.checks]
        for c, p in plans.items():  # ranges are checked on the typed values
            lo, hi = p.column.min, p.column.max
            if lo is not None:
                checks.append(_Check(c, f"below the minimum {lo:g}", f"({_t(c)} < {lo!r})", _t(c)))
            if hi is not None:
                checks.append(_Check(c, f"above the maximum {hi:g}", f"({_t(c)} > {hi!r})", _t(c)))
        orders = [
            _Check(
                o.later,
                f"{o.later} is before {o.earlier}",
                f"({_t(o.later)} < {_t(o.earlier)})",
                _t(o.later),
            )
            for o in table.date_orders
            if o.earlier in plans and o.later in plans
        ]
        keyed = bool(table.key) and all(k in plans for k in table.key)
        key_hash = f"hash({', '.join(_t(k) for k in table.key)})" if keyed else "NULL"
        dates = [c for c, p in plans.items() if p.column.kind is Kind.DATE]
        aggs = [f"count(*) FILTER (WHERE {ch.bad})" for ch in checks + orders]
        aggs += [f"min({_t(c)}), max({_t(c)})" for c in dates]
        # One pass over the file: every rule's count, the date ranges, and the distinct key
        # hashes (fewer than the rows only if a key repeats, or two keys' hashes collide).
        stats = self._one(
            f"SELECT count(*), count(DISTINCT {key_hash}), {', '.join(aggs)} FROM {view}"
        )
        rows, distinct_keys = int(stats[0]), int(stats[1])
        counts = [int(c) for c in stats[2 : 2 + len(checks) + len(orders)]]
        for ch, n in zip(checks, counts[: len(checks)], strict=True):
            self._report(out, table.name, ch, view, n, "error")
        if keyed and distinct_keys < rows:
            self._duplicates(table, view, out)
        for ch, n in zip(orders, counts[len(checks) :], strict=True):
            self._report(out, table.name, ch, view, n, "error")
        bounds = [None if b is None else pd.Timestamp(b) for b in stats[2 + len(counts) :]]
        return rows, {c: (bounds[2 * i], bounds[2 * i + 1]) for i, c in enumerate(dates)}

    def _duplicates(self, table: Table, view: str, out: Collector) -> None:
        """Rows whose key appears on an earlier row (exact, among the repeated key hashes)."""
        keys = ", ".join(_t(k) for k in table.key)
        repeated = (
            f"SELECT _row, {keys}, row_number() OVER (PARTITION BY {keys} ORDER BY _row) AS _n "
            f"FROM {view} WHERE hash({keys}) IN "
            f"(SELECT hash({keys}) FROM {view} GROUP BY hash({keys}) HAVING count(*) > 1)"
        )
        self._define("dup_" + table.name, repeated, materialize=True)
        dup = quote("dup_" + table.name)
        (count,) = self._one(f"SELECT count(*) FROM {dup} WHERE _n > 1")
        check = _Check(
            ",".join(table.key),
            "duplicate key (the same " + ", ".join(table.key) + " appears on an earlier row)",
            "(_n > 1)",
            f"row({keys})",  # shown as a tuple, as pandas does, even for one column
        )
        self._report(out, table.name, check, dup, int(count), "error")

    def foreign_key(
        self, table: str, fk: ForeignKey, ref: pd.DataFrame | None, out: Collector
    ) -> None:
        """Rows of file table ``table`` whose ``fk`` value is not in the referenced table.

        Args:
            table: The checked file table.
            fk: The rule.
            ref: The referenced table when it is in pandas; None when it is a file table.
            out: Where findings go.

        """
        (col,), (ref_col,) = fk.columns, fk.ref_columns
        if table not in self._views or col not in self._views[table][1]:
            return
        view = self._views[table][0]
        if ref is not None:
            self._register("_ref", ref[[ref_col]].rename(columns={ref_col: "v"}))
            ref_sql = "SELECT v FROM _ref"
        else:
            ref_sql = f"SELECT {_t(ref_col)} AS v FROM {self._views[fk.table][0]}"
        c = _t(col)
        bad = f"({c} IS NOT NULL AND {c} NOT IN ({ref_sql}))"
        (count,) = self._one(f"SELECT count(*) FROM {view} WHERE {bad}")
        check = _Check(col, f"not found in {fk.table}.{ref_col}", bad, c)
        self._report(out, table, check, view, int(count), "error")
        if ref is not None:
            self._unregister("_ref")

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
        if table not in self._views or date_col not in self._views[table][1]:
            return 0
        view, d = self._views[table][0], _t(date_col)
        bad = f"({d} > TIMESTAMP {literal(str(pd.Timestamp(when)))})"
        (count,) = self._one(f"SELECT count(*) FROM {view} WHERE {bad}")
        self._report(out, table, _Check(date_col, message, bad, d), view, int(count), level)
        return int(count)

    def above_per_account(
        self, table: str, column: str, limit: pd.Series, message: str, out: Collector
    ) -> None:
        """Error on rows of ``table`` whose ``column`` is above their account's ``limit``."""
        if table not in self._views or not {column, "account_id"} <= self._views[table][1]:
            return
        view = self._views[table][0]
        self._register("_limit", pd.DataFrame({"account_id": limit.index, "lim": limit.to_numpy()}))
        c = _t(column)
        joined = (
            f"(SELECT v.*, l.lim FROM {view} AS v JOIN _limit AS l "
            "ON v.t_account_id = l.account_id) AS _j"
        )
        bad = f"({c} > lim)"
        (count,) = self._one(f"SELECT count(*) FROM {joined} WHERE {bad}")
        self._report(out, table, _Check(column, message, bad, c), joined, int(count), "error")
        self._unregister("_limit")

    def after_churn(self, table: str, date_col: str, ended: pd.Series, out: Collector) -> None:
        """Warn about rows of ``table`` dated after their account churned for good."""
        if table not in self._views or not {date_col, "account_id"} <= self._views[table][1]:
            return
        view = self._views[table][0]
        self._register(
            "_ended", pd.DataFrame({"account_id": ended.index, "churned": ended.to_numpy()})
        )
        d = _t(date_col)
        joined = (
            f"(SELECT v.*, e.churned FROM {view} AS v JOIN _ended AS e "
            "ON v.t_account_id = e.account_id) AS _j"
        )
        bad = f"({d} > churned)"
        (count,) = self._one(f"SELECT count(*) FROM {joined} WHERE {bad}")
        check = _Check(date_col, "activity after the account churned", bad, d)
        self._report(out, table, check, joined, int(count), "warning")
        self._unregister("_ended")


def _why(exc: BaseException) -> str:
    """The first line of an engine's error (Spark's run on with a JVM stack)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DuckChecker(SqlChecker):
    """Validates file tables of a local directory in one DuckDB connection, bounded memory.

    Args:
        data_dir: The directory holding the tables' files.
        memory_limit: DuckDB memory limit; past it DuckDB spills to a temporary directory.

    """

    errors = (duckdb.Error,)

    def __init__(self, data_dir: str | Path = ".", memory_limit: str = "2GB"):
        super().__init__()
        self.data_dir = Path(data_dir)
        self._spill = tempfile.TemporaryDirectory(prefix="radar-validate-")
        self.con = duckdb.connect(
            config={"memory_limit": memory_limit, "temp_directory": self._spill.name}
        )
        no_progress_bar(self.con)

    def close(self) -> None:
        """Release the connection and its spill directory."""
        self.con.close()
        self._spill.cleanup()

    def exists(self) -> bool:
        """See :meth:`Checker.exists`."""
        return self.data_dir.is_dir()

    def find(self, name: str) -> Path | None:
        """See :meth:`Checker.find`."""
        return find_table_file(self.data_dir, name)

    def is_empty(self, where: Location) -> bool:
        """See :meth:`Checker.is_empty`."""
        return Path(str(where)).stat().st_size == 0

    def read_raw(self, where: Location) -> pd.DataFrame:
        """See :meth:`Checker.read_raw`."""
        return read_raw(Path(str(where)))

    def _rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def _define(self, name: str, sql: str, materialize: bool = False) -> None:
        kind = "TABLE" if materialize else "VIEW"
        self.con.execute(f"CREATE TEMP {kind} {quote(name)} AS {sql}")

    def _register(self, name: str, df: pd.DataFrame) -> None:
        self.con.register(name, df)

    def _unregister(self, name: str) -> None:
        self.con.unregister(name)

    def _numbered(self, name: str, where: Location) -> tuple[str, dict[str, str]]:
        path = Path(str(where))
        if path.suffix == ".csv":
            # A table keeps the file's row order (rowid), which numbers the data rows.
            raw = quote("raw_" + name)
            self.con.execute(f"CREATE TEMP TABLE {raw} AS SELECT * FROM {_source(path)}")
            rows_sql = f"SELECT rowid + 1 AS _row, * FROM {raw}"
        else:
            src = f"read_parquet({literal(str(path))}, file_row_number = true)"
            rows_sql = f"SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) FROM {src}"
        described = self.con.sql(f"DESCRIBE {rows_sql}").fetchall()
        return rows_sql, {str(r[0]): str(r[1]) for r in described if r[0] != "_row"}
