"""Read vendor exports, apply their mappings, join them on one account key, write the contract.

Every export is read by DuckDB (CSV as text, JSON lines with only the paths a mapping reads,
so a large event log streams through and is parsed once), the mapped values are parsed in
SQL so that a bad value names its file, row and value, and event logs are aggregated into
``usage`` and ``weekly_active_users`` before anything reaches pandas. The contract folder is
written under a temporary name, validated with the contract's own checks, and swapped in
only when clean: an error leaves the folder as it was.
"""

from __future__ import annotations

import difflib
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from features.contract import validate_dataset
from features.imports.mapping import ANY_KEY, EVENTS, ColumnSpec, Mapping, SourceSpec
from features.io import atomic_dir
from features.raw import FALSE, TRUE, find_table_file
from features.schema import TABLES, Kind

log = logging.getLogger(__name__)

MAX_SHOWN = 3  # offending rows quoted per message
_BOOLS = {**dict.fromkeys(TRUE, True), **dict.fromkeys(FALSE, False)}
# DuckDB's memory ceiling for an import: a 10-million-event log must stay under 4 GiB.
MEMORY_LIMIT = "2GB"
# What to do next when a table stays absent (said once, whatever the presets).
NEXT_STEP = {
    "subscriptions": "no contracts: run `radar features --activity-churn-days N` "
    "(churn = N days without any activity)",
    "usage": "required: import an activity log into the same folder (--preset event_log, "
    "segment, mixpanel or amplitude) before `radar validate`",
    "weekly_active_users": "seat utilisation stays missing",
    "support_tickets": "support features and the support health component stay missing",
    "invoices": "payment features stay missing",
    "contacts": "stakeholder features stay missing",
    "nps_responses": "NPS features stay missing",
    "engagement": "engagement features stay missing",
    "milestones": "value-realisation features stay missing",
}


class ImportFailedError(ValueError):
    """A bad export or mapping: the message names preset, file, column, row and value."""


@dataclass
class SourceResult:
    """What one export source gave."""

    preset: str
    source: str
    table: str
    files: list[str]
    rows_in: int = 0
    rows_out: int = 0
    dropped: int = 0
    unmatched: int = 0
    unmatched_examples: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    """What an import wrote, from where, and what stays absent."""

    out: Path
    key: str
    sources: list[SourceResult]
    rows: dict[str, int]
    kept: dict[str, int]  # rows already in the folder before this import, per table
    absent: list[str]
    notes: list[str]


@dataclass
class _Read:
    """A source's mapped rows (pandas) with the account reference still raw."""

    spec: SourceSpec
    mapping: Mapping
    frame: pd.DataFrame
    key_used: str
    result: SourceResult


def _q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def _lit(value: object) -> str:
    """A SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class _Source:
    """One source's files, read into a DuckDB temp table of text columns."""

    def __init__(self, con, mapping: Mapping, spec: SourceSpec, files: list[Path], n: int):
        self.con, self.mapping, self.spec, self.files = con, mapping, spec, files
        self.name = f"src_{n}"
        self.fmt = spec.format or (
            "jsonl" if files[0].suffix in (".jsonl", ".json", ".ndjson") else "csv"
        )
        self.where = f"preset {mapping.name}, source {spec.name}"
        self.inputs: dict[str, str] = {}  # export column -> temp column

    def _file_list(self) -> str:
        return "[" + ", ".join(_lit(str(f)) for f in self.files) + "]"

    def _available(self) -> dict[str, set[str]]:
        """Export columns (dotted paths for JSON) per file, from a sample."""
        out: dict[str, set[str]] = {}
        for f in self.files:
            reader = (
                f"read_json([{_lit(str(f))}], format='newline_delimited')"
                if self.fmt == "jsonl"
                else f"read_csv([{_lit(str(f))}], all_varchar=true, header=true)"
            )
            try:
                rel = self.con.sql(f"SELECT * FROM {reader} LIMIT 0")
            except duckdb.Error as exc:
                raise ImportFailedError(
                    f"{self.where}, file {f.name}: cannot read: {exc}"
                ) from None
            paths: set[str] = set()
            todo = list(zip(rel.columns, rel.dtypes, strict=True))
            while todo:  # nested JSON objects: every dotted path
                prefix, typ = todo.pop()
                paths.add(prefix)
                if typ.id == "struct":
                    todo.extend((f"{prefix}.{child}", ctype) for child, ctype in typ.children)
            out[f.name] = paths
        return out

    def load(self, wanted: dict[str, bool]) -> None:
        """Check the export columns ``wanted`` (name -> required) and read them as text."""
        available = self._available()
        present: list[str] = []
        for col, required in wanted.items():
            for fname, paths in available.items():
                if col not in paths and required:
                    close = difflib.get_close_matches(col, sorted(paths), n=1, cutoff=0.5)
                    hint = f" (closest: {close[0]!r})" if close else ""
                    raise ImportFailedError(
                        f"{self.where}, file {fname}: missing column {col!r}{hint}"
                    )
            if all(col in paths for paths in available.values()):
                present.append(col)
        self.inputs = {col: f"c{i}" for i, col in enumerate(present)}
        if self.fmt == "jsonl":
            reader = self._json_reader(present)
            cols = []
            for col, alias in self.inputs.items():
                head, *rest = col.split(".") if col not in ("",) else [col]
                path = _q(head) + "".join(f"[{_lit(p)}]" for p in rest)
                cols.append(f"CAST({path} AS VARCHAR) AS {alias}")
        else:
            reader = (
                f"read_csv({self._file_list()}, all_varchar=true, header=true, "
                "union_by_name=true, filename=true)"
            )
            cols = [f"{_q(col)} AS {alias}" for col, alias in self.inputs.items()]
        select = ", ".join(["filename AS __file", *cols])
        try:
            self.con.execute(f"CREATE TEMP TABLE {self.name} AS SELECT {select} FROM {reader}")
        except duckdb.Error as exc:
            raise ImportFailedError(f"{self.where}: cannot read {self.spec.files}: {exc}") from None

    def _json_reader(self, present: list[str]) -> str:
        """read_json with every wanted path typed as text (numbers and timestamps as written)."""
        tree: dict = {}
        for col in present:
            node = tree
            parts = col.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node.setdefault(parts[-1], None)

        def typ(node) -> str:
            if node is None:
                return "VARCHAR"
            return "STRUCT(" + ", ".join(f"{_q(k)} {typ(v)}" for k, v in node.items()) + ")"

        columns = "{" + ", ".join(f"{_lit(k)}: {_lit(typ(v))}" for k, v in tree.items()) + "}"
        return (
            f"read_json({self._file_list()}, format='newline_delimited', columns={columns}, "
            "filename=true)"
        )

    # --- expressions -------------------------------------------------------------------
    def raw(self, spec: ColumnSpec) -> str:
        """SQL for the spec's text value before typing (NULL for an absent optional column)."""
        if spec.const is not None:
            return _lit(spec.const if not isinstance(spec.const, bool) else str(spec.const).lower())
        if spec.source is not None:
            alias = self.inputs.get(spec.source)
            expr = "NULL::VARCHAR" if alias is None else f"nullif(trim({alias}), '')"
        else:
            expr = spec.expr or ""
            for col in spec.inputs():
                alias = self.inputs.get(col)
                expr = expr.replace("{" + col + "}", "NULL" if alias is None else alias)
            expr = f"CAST(({expr}) AS VARCHAR)"
        if spec.transform == "domain":
            expr = (
                f"nullif(regexp_replace(regexp_replace(lower({expr}), '^.*@', ''), "
                "'^[a-z]+://|^www\\.|[/?#:].*$', '', 'g'), '')"
            )
        elif spec.transform == "lower":
            expr = f"lower({expr})"
        if spec.values is not None:
            cases = " ".join(
                f"WHEN {_lit(k.strip().lower())} THEN {_lit(None if v is None else str(v))}"
                for k, v in spec.values.items()
            )
            other = expr if spec.keep_other else "NULL"
            expr = f"(CASE lower(trim({expr})) {cases} ELSE {other} END)"
        if spec.default is not None:
            expr = f"coalesce({expr}, {_lit(str(spec.default))})"
        return expr

    def typed(self, spec: ColumnSpec, kind: Kind | str, tz: str) -> str:
        """SQL for the typed value: dates to the mapping's calendar day, numbers as numbers."""
        raw = self.raw(spec)
        if kind == Kind.DATE or kind == "timestamp":
            fmt = spec.format or "iso"
            if fmt == "iso":
                ts = f"try_cast({raw} AS TIMESTAMPTZ)"
            elif fmt == "epoch_s":
                ts = f"to_timestamp(try_cast({raw} AS DOUBLE))"
            elif fmt == "epoch_ms":
                ts = f"to_timestamp(try_cast({raw} AS DOUBLE) / 1000)"
            else:
                ts = f"CAST(try_strptime({raw}, {_lit(fmt)}) AS TIMESTAMPTZ)"
            return f"CAST(timezone({_lit(tz)}, {ts}) AS DATE)"
        if kind == Kind.INT:
            return f"CAST(round(try_cast({raw} AS DOUBLE)) AS BIGINT)"
        if kind == Kind.FLOAT:
            return f"try_cast({raw} AS DOUBLE)"
        return raw

    def bad_rows(self, check: str, value: str) -> tuple[int, list[str]]:
        """Count rows where ``check`` holds; quote the first (file, row, value)."""
        n = self.con.execute(f"SELECT count(*) FROM {self.name} WHERE {check}").fetchone()[0]
        if not n:
            return 0, []
        rows = self.con.execute(
            f"SELECT __file, rn, v FROM (SELECT __file, {value} AS v, {check} AS bad, "
            f"rowid - min(rowid) OVER (PARTITION BY __file) + 1 AS rn FROM {self.name}) "
            f"WHERE bad ORDER BY __file, rn LIMIT {MAX_SHOWN}"
        ).fetchall()
        return n, [f"{Path(f).name} row {r} ({v!r})" for f, r, v in rows]


def _fail_rows(where: str, column: str, what: str, n: int, shown: list[str]) -> ImportFailedError:
    return ImportFailedError(f"{where}, column {column}: {what} [{n} row(s): {', '.join(shown)}]")


def _kind(table: str, column: str) -> Kind | str:
    if table == EVENTS:
        return "timestamp" if column == "timestamp" else Kind.STR
    return TABLES[table].column(column).kind


def _rates(path: Path | None) -> dict[str, float] | None:
    """The user's rate table: ``{base: EUR, rates: {USD: 0.92}}`` (1 USD = 0.92 EUR)."""
    if path is None:
        return None
    try:
        raw = yaml.safe_load(Path(path).read_text())
        base = str(raw["base"]).upper()
        rates = {str(k).upper(): float(v) for k, v in raw["rates"].items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ImportFailedError(
            f"--rates {path}: expected `base: EUR` and `rates: {{USD: 0.92, ...}}` ({exc})"
        ) from None
    rates[base] = 1.0
    return rates


def _map_source(
    con, mapping: Mapping, spec: SourceSpec, files: list[Path], n: int, key: str, rates
) -> tuple[_Read | None, list[str]]:
    """Read one source and map it; events are aggregated in DuckDB."""
    notes: list[str] = []
    src = _Source(con, mapping, spec, files, n)
    result = SourceResult(mapping.name, spec.name, spec.table, [f.name for f in files])
    key_used = key if key in spec.account else ANY_KEY if ANY_KEY in spec.account else ""
    if not key_used:
        key_used = next(iter(spec.account))  # translated through an accounts crosswalk
    account_specs = spec.account if spec.table == "accounts" else {key_used: spec.account[key_used]}
    specs: dict[str, ColumnSpec] = {f"__key_{k}": s for k, s in account_specs.items()}
    specs.update(spec.columns)
    if spec.currency is not None:
        specs["__currency"] = spec.currency
    if spec.churn_at is not None:
        specs["__churn_at"] = spec.churn_at
    wanted: dict[str, bool] = {}
    for s in specs.values():
        for col in s.inputs():
            wanted[col] = wanted.get(col, False) or not s.optional
    for rule in [*spec.drop, *([spec.churn_when] if spec.churn_when else [])]:
        wanted[rule.column] = True
    src.load(wanted)
    for name, s in specs.items():
        missing = [c for c in s.inputs() if c not in src.inputs]
        if not missing:
            continue
        cols = ", ".join(map(repr, missing))
        if name.startswith("__key_"):
            what = f"no {name.removeprefix('__key_')} key"
        elif name == "__currency":
            what = "amounts as exported (no currency column)"
        elif name == "__churn_at":
            what = "no end dates: churn only from later rows"
        else:
            what = f"{spec.table}.{name} " + (
                f"is {s.default!r}" if s.default is not None else "stays empty"
            )
        notes.append(f"{mapping.name} {spec.name}: no {cols} column: {what}")
    tz = spec.timezone or mapping.timezone
    con.execute(f"SET TimeZone = {_lit(mapping.source_timezone)}")
    result.rows_in = con.execute(f"SELECT count(*) FROM {src.name}").fetchone()[0]

    # Rows to leave out.
    keep = ["TRUE"]
    for rule in spec.drop:
        col = src.inputs[rule.column]
        vals = ", ".join(_lit(v.lower()) for v in rule.values) or "NULL"
        hit = f"(lower(trim({col})) IN ({vals})" + (
            f" OR nullif(trim({col}), '') IS NULL)" if rule.empty else ")"
        )
        keep.append(f"coalesce({hit}, FALSE)" if rule.keep else f"NOT coalesce({hit}, FALSE)")
    kept = " AND ".join(keep)

    # Parse checks: a value that does not parse, or is not in a value map, names its row.
    exprs: dict[str, str] = {}
    for name, s in specs.items():
        column = name.removeprefix("__key_")
        kind = (
            Kind.DATE
            if name == "__churn_at"
            else Kind.STR
            if name.startswith("__")
            else _kind(spec.table, name)
        )
        typed = src.typed(s, kind, tz)
        exprs[name] = typed
        if s.const is not None:
            continue
        raw_plain = src.raw(
            s.model_copy(update={"values": None, "default": None, "keep_other": False})
        )
        if s.values is not None and not s.keep_other:
            check = f"({kept}) AND {raw_plain} IS NOT NULL AND {src.raw(s)} IS NULL"
            keys = {k.strip().lower(): v for k, v in s.values.items()}
            if not any(v is None for v in keys.values()):
                nbad, shown = src.bad_rows(check, raw_plain)
                if nbad:
                    raise _fail_rows(
                        src.where,
                        f"{s.source or column}",
                        f"value not in the preset's map ({', '.join(keys)})",
                        nbad,
                        shown,
                    )
        if kind in (Kind.DATE, Kind.INT, Kind.FLOAT, "timestamp"):
            check = f"({kept}) AND {src.raw(s)} IS NOT NULL AND {typed} IS NULL"
            nbad, shown = src.bad_rows(check, src.raw(s))
            if nbad:
                what = {
                    Kind.DATE: f"not a date ({s.format or 'ISO 8601'})",
                    "timestamp": f"not a timestamp ({s.format or 'ISO 8601'})",
                    Kind.INT: "not a whole number",
                    Kind.FLOAT: "not a number",
                }[kind]
                raise _fail_rows(src.where, s.source or column, what, nbad, shown)

    # Currency: amounts converted by the user's rate table, never by a made-up rate.
    if spec.currency is not None and spec.amounts:
        cur = f"upper({exprs['__currency']})"
        found = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {cur} FROM {src.name} "
                f"WHERE {kept} AND {cur} IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]
        if rates is None and len(found) > 1:
            raise ImportFailedError(
                f"{src.where}: amounts in {len(found)} currencies ({', '.join(found)}); "
                "give --rates FILE (base: EUR, rates: {USD: 0.92, ...}) to convert them"
            )
        if rates is None:
            if found:
                notes.append(f"{mapping.name} {spec.name}: amounts in {found[0]} as exported")
        else:
            known = ", ".join(_lit(c) for c in rates)
            check = f"({kept}) AND {cur} IS NOT NULL AND {cur} NOT IN ({known})"
            nbad, shown = src.bad_rows(check, cur)
            if nbad:
                raise _fail_rows(
                    src.where,
                    spec.currency.source or "currency",
                    f"unknown currency (not in --rates: {', '.join(rates)})",
                    nbad,
                    shown,
                )
            case = " ".join(f"WHEN {_lit(c)} THEN {r!r}" for c, r in rates.items())
            for amount in spec.amounts:
                exprs[amount] = f"({exprs[amount]}) * (CASE {cur} {case} ELSE 1.0 END)"

    result.dropped = con.execute(f"SELECT count(*) FROM {src.name} WHERE NOT ({kept})").fetchone()[
        0
    ]
    for rule in spec.drop if result.dropped else []:
        if rule.reason:
            notes.append(
                f"{mapping.name} {spec.name}: rows dropped where {rule.column}: {rule.reason}"
            )
    extra = ""
    if spec.churn_when is not None:
        rule = spec.churn_when
        vals = ", ".join(_lit(v.lower()) for v in rule.values)
        extra = f", coalesce(lower(trim({src.inputs[rule.column]})) IN ({vals}), FALSE) AS __lost"
    select = ", ".join(f"{e} AS {_q(name)}" for name, e in exprs.items())
    if spec.table == EVENTS:
        frame = _aggregate_events(con, src, exprs, kept, key_used)
    else:
        frame = con.execute(
            f"SELECT {select}{extra}, __file, __row FROM (SELECT *, "
            f"rowid - min(rowid) OVER (PARTITION BY __file) + 1 AS __row FROM {src.name}) "
            f"WHERE {kept}"
        ).df()
    con.execute(f"DROP TABLE {src.name}")
    return _Read(spec, mapping, frame, key_used, result), notes


def _aggregate_events(
    con, src: _Source, exprs: dict[str, str], kept: str, key: str
) -> pd.DataFrame:
    """Events -> per (account, day, feature) distinct users and events, and per ISO week."""
    acct = exprs[f"__key_{key}"]
    ident = exprs.get("event_id")
    # Exports repeat events (Mixpanel documents no deduplication): one row per event id.
    distinct = (
        f"QUALIFY row_number() OVER (PARTITION BY a, {ident}) = 1" if ident is not None else ""
    )
    con.execute(
        f"CREATE TEMP TABLE ev AS SELECT {acct} AS a, {exprs['user_id']} AS u, "
        f"{exprs['timestamp']} AS d, {exprs['feature']} AS f FROM {src.name} "
        f"WHERE {kept} AND {acct} IS NOT NULL {distinct}"
    )
    daily = con.execute(
        "SELECT a, d, f, count(DISTINCT u) AS active_users, count(*) AS events, "
        "FALSE AS __weekly FROM ev WHERE f IS NOT NULL GROUP BY ALL"
    ).df()
    weekly = con.execute(
        "SELECT a, CAST(date_trunc('week', d) AS DATE) AS d, NULL AS f, "
        "count(DISTINCT u) AS active_users, NULL AS events, TRUE AS __weekly "
        "FROM ev GROUP BY ALL"
    ).df()
    con.execute("DROP TABLE ev")
    frame = pd.concat([daily, weekly], ignore_index=True)
    return frame.rename(columns={"a": f"__key_{key}"})


def _crosswalk(reads: list[_Read], frm: str, to: str) -> dict[str, str]:
    """Map key ``frm`` values to key ``to`` values from the accounts sources that carry both."""
    out: dict[str, str] = {}
    for r in reads:
        f = r.frame
        if r.spec.table == "accounts" and f"__key_{frm}" in f and f"__key_{to}" in f:
            both = f[[f"__key_{frm}", f"__key_{to}"]].dropna()
            out.update(zip(both.iloc[:, 0].astype(str), both.iloc[:, 1].astype(str), strict=True))
    return out


def _derive_change_type(subs: pd.DataFrame) -> pd.Series:
    """New / expansion / contraction / renewal from each account's ARR history."""
    subs = subs.sort_values(["account_id", "start_date"], kind="stable")
    out = pd.Series(index=subs.index, dtype=object)
    prev_acct, prev_arr, prev_churn = None, None, False
    for idx, acct, arr, ctype in zip(
        subs.index, subs["account_id"], subs["arr"], subs["change_type"], strict=True
    ):
        if ctype == "churn":
            out[idx] = "churn"
            prev_acct, prev_arr, prev_churn = acct, 0.0, True
            continue
        if acct != prev_acct or prev_churn:
            out[idx] = "new"
        elif arr > prev_arr:
            out[idx] = "expansion"
        elif arr < prev_arr:
            out[idx] = "contraction"
        else:
            out[idx] = "renewal"
        prev_acct, prev_arr, prev_churn = acct, arr, False
    return out


def _subscriptions(frame: pd.DataFrame, spec: SourceSpec) -> pd.DataFrame:
    """Churn rows from lost renewals and end dates; derived change types where not mapped."""
    frame = frame.copy()
    if "__lost" in frame:
        lost = frame["__lost"].astype(bool)
        frame.loc[lost, ["arr", "seats"]] = 0
        frame.loc[lost, "change_type"] = "churn"
        frame.loc[lost, "end_date"] = pd.NaT
        frame = frame.drop(columns="__lost")
    if "change_type" not in frame:
        frame["change_type"] = None
    if "__churn_at" in frame:
        # An ended contract is a churn unless the account's next contract starts by then
        # (a plan change in Stripe ends one subscription and starts another).
        frame = frame.sort_values(["account_id", "start_date"], kind="stable")
        next_start = frame.groupby("account_id")["start_date"].shift(-1)
        ended = frame["__churn_at"].notna() & ~(next_start <= frame["__churn_at"])
        churn = frame[ended].copy()
        churn["start_date"] = churn["__churn_at"]
        churn[["arr", "seats"]] = 0
        churn["end_date"] = pd.NaT
        churn["change_type"] = "churn"
        frame = pd.concat([frame, churn], ignore_index=True).drop(columns="__churn_at")
    if "change_type" not in spec.columns:
        frame["change_type"] = _derive_change_type(frame).reindex(frame.index)
    return frame


def _first_rows(subs: pd.DataFrame, since: pd.Series) -> pd.DataFrame:
    """An account's first contract row after its customer_since renews an earlier contract.

    ``customer_since`` is the day the first contract started: an export whose history starts
    later (a window, or a billing system adopted later) begins with a renewal, not a new
    customer.
    """
    subs = subs.sort_values(["account_id", "start_date"], kind="stable").reset_index(drop=True)
    first = ~subs["account_id"].duplicated()
    started = pd.to_datetime(subs["account_id"].map(since))
    later = first & (subs["change_type"] == "new") & (pd.to_datetime(subs["start_date"]) > started)
    subs.loc[later, "change_type"] = "renewal"
    return subs


def _existing(out: Path, table: str) -> pd.DataFrame | None:
    path = find_table_file(out, table) if out.is_dir() else None
    if path is None:
        return None
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)


def _duplicates(frame: pd.DataFrame, table: str, where: str) -> None:
    key = list(TABLES[table].key)
    if not key or frame.empty:
        return
    dup = frame.duplicated(key, keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        value = ", ".join(str(first[k]) for k in key)
        rows = frame[dup].head(MAX_SHOWN)
        shown = (
            ", ".join(
                f"{Path(f).name} row {int(r)}"
                for f, r in zip(rows["__file"], rows["__row"], strict=True)
            )
            if "__file" in rows
            else ""
        )
        raise ImportFailedError(
            f"{where}: duplicate {table} key {', '.join(key)} ({value!r}) "
            f"[{int(dup.sum())} rows: {shown}]"
        )


def _typed_frame(frame: pd.DataFrame, table: str) -> pa.Table:
    """The contract columns present, typed for Parquet (dates as dates)."""
    frame = frame.copy()
    for col in TABLES[table].columns:
        if col.name not in frame and col.required:
            frame[col.name] = None  # a column the export does not carry: empty, never made up
    cols = [c for c in TABLES[table].column_names if c in frame]
    arrays, names = [], []
    for c in cols:
        kind = TABLES[table].column(c).kind
        s = frame[c]
        if kind == Kind.DATE:
            arr = pa.array(pd.to_datetime(s).dt.date.where(s.notna(), None), type=pa.date32())
        elif kind == Kind.INT:
            arr = pa.array(pd.to_numeric(s).round().astype("Int64"), type=pa.int64())
        elif kind == Kind.FLOAT:
            arr = pa.array(pd.to_numeric(s).astype("Float64"), type=pa.float64())
        else:
            text = (
                s.astype(object).where(s.notna(), None).map(lambda v: None if v is None else str(v))
            )
            flags = text.str.strip().str.lower().map(_BOOLS) if kind == Kind.BOOL else None
            if flags is not None and flags[text.notna()].notna().all():
                arr = pa.array(flags.where(text.notna(), None), type=pa.bool_())
            else:  # not all true/false: written as text, and the contract's check names the row
                arr = pa.array(text, type=pa.string())
        arrays.append(arr)
        names.append(c)
    return pa.Table.from_arrays(arrays, names=names)


def run_import(
    mappings: list[Mapping],
    sources: list[Path],
    out: str | Path,
    *,
    rates: Path | None = None,
    key: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import the exports under ``sources`` (one folder per mapping, or one for all) into ``out``.

    Raises:
        ImportFailedError: A bad export or mapping; nothing is written.

    """
    out = Path(out)
    if len(sources) not in (1, len(mappings)):
        raise ImportFailedError(
            f"give one --from for all presets or one per preset, got {len(sources)}"
        )
    folders = sources * len(mappings) if len(sources) == 1 else sources
    key = key or mappings[0].default_key
    rate_table = _rates(rates)
    notes: list[str] = []
    reads: list[_Read] = []
    with tempfile.TemporaryDirectory(prefix="radar-import-") as spill:
        con = duckdb.connect()
        con.execute(f"SET memory_limit = {_lit(MEMORY_LIMIT)}")
        con.execute(f"SET temp_directory = {_lit(spill)}")
        con.execute("SET enable_progress_bar = false")  # it writes to stdout: the CLI's output
        n = 0
        for mapping, folder in zip(mappings, folders, strict=True):
            if not Path(folder).is_dir():
                raise ImportFailedError(f"--from {folder}: not a folder")
            for spec in mapping.sources:
                files = sorted(p for p in Path(folder).glob(spec.files) if p.is_file())
                if not files:
                    if spec.required:
                        raise ImportFailedError(
                            f"preset {mapping.name}, source {spec.name}: no file matches "
                            f"{spec.files!r} under {folder}"
                        )
                    continue
                if progress:
                    progress(f"{mapping.name} {spec.name}: {len(files)} file(s)")
                n += 1
                read, more = _map_source(con, mapping, spec, files, n, key, rate_table)
                reads.append(read)
                notes.extend(more)
        con.close()
    return _assemble(mappings, reads, out, key, notes)


def _resolve(read: _Read, key: str, crosswalks: dict[str, dict[str, str]]) -> pd.Series:
    """Each row's account under ``key`` (None where it does not match)."""
    col = read.frame[f"__key_{read.key_used}"].astype(object)
    if read.key_used in (key, ANY_KEY):
        return col.where(col.notna(), None)
    if read.key_used not in crosswalks:
        raise ImportFailedError(
            f"preset {read.mapping.name}, source {read.spec.name}: its account key is "
            f"{', '.join(read.spec.account)}; no accounts source carries both "
            f"{read.key_used} and --key {key} to join them"
        )
    return col.map(crosswalks[read.key_used])


def _assemble(
    mappings: list[Mapping], reads: list[_Read], out: Path, key: str, notes: list[str]
) -> ImportReport:
    """Join the sources on the key, merge with the folder's rows, validate and write."""
    other_keys = {r.key_used for r in reads} - {key, ANY_KEY}
    crosswalks = {k: _crosswalk(reads, k, key) for k in other_keys}
    crosswalks = {k: v for k, v in crosswalks.items() if v}

    # The account list: the first preset with an accounts source, others fill its gaps.
    account_frames: list[pd.DataFrame] = []
    for r in reads:
        if r.spec.table != "accounts":
            continue
        if f"__key_{key}" not in r.frame and ANY_KEY not in r.spec.account:
            raise ImportFailedError(
                f"preset {r.mapping.name}, source {r.spec.name}: carries no {key!r} key "
                f"(it has {', '.join(r.spec.account)}); use --key one of those"
            )
        acct = r.frame[f"__key_{key if key in r.spec.account else ANY_KEY}"]
        f = r.frame.assign(account_id=acct.astype(object))
        r.result.unmatched = int(f["account_id"].isna().sum())
        r.result.unmatched_examples = [
            str(v) for v in f.loc[f["account_id"].isna(), f.columns[0]].head(MAX_SHOWN)
        ]
        f = f[f["account_id"].notna()]
        if key == next(iter(r.spec.account)):  # the source's own id: a repeat is an error
            _duplicates(f, "accounts", f"preset {r.mapping.name}, source {r.spec.name}")
        else:  # several billing customers of one CRM account: one account, the first row
            repeats = int(f["account_id"].duplicated().sum())
            if repeats:
                notes.append(
                    f"{r.mapping.name} {r.spec.name}: {repeats} row(s) name an account by "
                    f"{key} another row names too: one account each, its first row"
                )
            f = f.drop_duplicates("account_id")
        account_frames.append(f)
        r.result.rows_out = len(f)
    old_accounts = _existing(out, "accounts")
    accounts: pd.DataFrame | None = None
    for f in account_frames:
        cols = [c for c in TABLES["accounts"].column_names if c in f]
        f = f[cols].set_index("account_id")
        if accounts is None:
            accounts = f
        else:
            unmatched = ~f.index.isin(accounts.index)
            accounts = accounts.combine_first(f[~unmatched]).reindex(accounts.index)
    known: set[str] | None = None
    if accounts is not None:
        known = set(accounts.index)
    if old_accounts is not None:
        old = old_accounts.set_index(old_accounts["account_id"].astype(str)).drop(
            columns="account_id"
        )
        accounts = old if accounts is None else accounts.combine_first(old)
        known = set(accounts.index)
    # Later accounts sources' rows outside the list are unmatched.
    for r, f in zip([r for r in reads if r.spec.table == "accounts"], account_frames, strict=True):
        if accounts is not None and known is not None:
            miss = ~f["account_id"].isin(known)
            r.result.unmatched += int(miss.sum())

    # Every other table: resolve the account, drop the unmatched, merge with the folder.
    tables: dict[str, list[pd.DataFrame]] = {}
    for r in reads:
        if r.spec.table == "accounts":
            continue
        f = r.frame.copy()
        f["account_id"] = _resolve(r, key, crosswalks)
        miss = f["account_id"].isna() | (
            ~f["account_id"].isin(known) if known is not None else False
        )
        r.result.unmatched = int(miss.sum())
        r.result.unmatched_examples = [
            str(v) for v in f.loc[miss, f"__key_{r.key_used}"].drop_duplicates().head(MAX_SHOWN)
        ]
        f = f[~miss]
        if r.spec.table == EVENTS:
            weekly = f["__weekly"].astype(bool)
            daily = f[~weekly].rename(columns={"d": "date", "f": "feature"})
            wau = f[weekly].rename(columns={"d": "week_start"})
            # Two group ids of one account (via a crosswalk) add up within a day/week.
            tables.setdefault("usage", []).append(
                daily.groupby(["account_id", "date", "feature"], as_index=False)[
                    ["active_users", "events"]
                ].sum()
            )
            tables.setdefault("weekly_active_users", []).append(
                wau.groupby(["account_id", "week_start"], as_index=False)[["active_users"]].sum()
            )
            r.result.rows_out = len(daily)
            continue
        if r.spec.table == "subscriptions":
            f = _subscriptions(f, r.spec)
        _duplicates(f, r.spec.table, f"preset {r.mapping.name}, source {r.spec.name}")
        r.result.rows_out = len(f)
        tables.setdefault(r.spec.table, []).append(f)

    merged: dict[str, pd.DataFrame] = {}
    kept: dict[str, int] = {}
    for table, frames in tables.items():
        new = pd.concat(frames, ignore_index=True)
        cols = [c for c in TABLES[table].column_names if c in new]
        new = new[cols]
        old = _existing(out, table)
        kept[table] = 0 if old is None else len(old)
        merged[table] = _merge(table, old, new)

    # Accounts without a CRM: every account an activity or billing source names.
    if accounts is None:
        ids = sorted({a for f in merged.values() for a in f["account_id"].astype(str)})
        accounts = pd.DataFrame({"name": ids}, index=pd.Index(ids, name="account_id"))
        notes.append(
            "accounts: no CRM or billing customer list among the presets: one account per id "
            "seen, named by its id (segment, industry, region, csm_owner absent)"
        )
    accounts = accounts.copy()
    if "customer_since" not in accounts:
        accounts["customer_since"] = pd.NaT
    accounts["customer_since"] = pd.to_datetime(accounts["customer_since"])
    firsts = [
        merged[t].groupby("account_id")[c].min()
        for t, c in (("subscriptions", "start_date"), ("usage", "date"))
        if t in merged
    ]
    if firsts:
        first = pd.to_datetime(pd.concat(firsts, axis=1).min(axis=1))
        missing = accounts["customer_since"].isna()
        accounts.loc[missing, "customer_since"] = first.reindex(accounts.index)[missing]
        if missing.any():
            notes.append(
                "accounts.customer_since: where the export has none, the first contract "
                "start or activity day"
            )
    if "subscriptions" in merged and any(
        r.spec.table == "subscriptions" and "change_type" not in r.spec.columns for r in reads
    ):
        # Derived over the folder's whole history: a newer export's first row continues it.
        subs = merged["subscriptions"]
        subs["change_type"] = _derive_change_type(subs).reindex(subs.index)
        merged["subscriptions"] = _first_rows(subs, accounts["customer_since"])
    accounts["name"] = accounts["name"].fillna(pd.Series(accounts.index, index=accounts.index))
    accounts = accounts[accounts["customer_since"].notna()] if firsts else accounts
    merged["accounts"] = accounts.reset_index()
    kept.setdefault("accounts", 0 if old_accounts is None else len(old_accounts))

    absent = _absent(mappings, merged, out)
    rows = {t: len(f) for t, f in merged.items()}
    _write(out, merged)
    return ImportReport(out, key, [r.result for r in reads], rows, kept, absent, notes)


def _merge(table: str, old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """The folder's rows and the import's, each key once (the newer import wins)."""
    if old is None:
        return new.reset_index(drop=True)
    old = old[[c for c in old.columns if c in TABLES[table].column_names]]
    for c in old.columns:
        if TABLES[table].column(c).kind == Kind.DATE:
            old[c] = pd.to_datetime(old[c])
            new[c] = pd.to_datetime(new[c])
        elif TABLES[table].column(c).kind in (Kind.ID, Kind.STR, Kind.CATEGORY):
            old[c] = old[c].astype(object)
    key = list(TABLES[table].key)
    if table in ("usage", "weekly_active_users"):
        # An export that covers a day or week in part counts less: keep the larger count.
        both = pd.concat([old, new], ignore_index=True)
        counts = [c for c in ("active_users", "events") if c in both]
        return both.groupby(key, as_index=False)[counts].max()
    if table == "subscriptions":
        # A newer export restates the history: its rows win by (account, start date).
        key = ["account_id", "start_date"]
    if not key:
        # A keyless log (engagement): the newer export replaces the period it covers.
        date = TABLES[table].event_date
        start = new[date].min()
        old = old[pd.to_datetime(old[date]) < start]
        return pd.concat([old, new], ignore_index=True)
    both = pd.concat([old.assign(__new=0), new.assign(__new=1)], ignore_index=True)
    both = both.sort_values("__new", kind="stable").drop_duplicates(key, keep="last")
    out = both.drop(columns="__new").reset_index(drop=True)
    if table == "subscriptions":
        out = out.drop_duplicates(["account_id", "start_date", "change_type"])
    return out


def _absent(mappings: list[Mapping], merged: dict[str, pd.DataFrame], out: Path) -> list[str]:
    """Each absent optional table once, with what the presets say and the next step."""
    lines = []
    for name in TABLES:
        if name in merged or (out.is_dir() and find_table_file(out, name) is not None):
            continue
        if name == "csm_actions":
            continue  # written by `radar daily`, never by an export
        said = next((m.absent[name] for m in mappings if name in m.absent), "")
        step = NEXT_STEP.get(name, "")
        lines.append(f"{name}: " + "; ".join(x for x in (said, step) if x))
    for m in mappings:
        for what, text in m.absent.items():
            if "." in what:
                lines.append(f"{what}: {text} ({m.name})")
    return lines


def _write(out: Path, merged: dict[str, pd.DataFrame]) -> None:
    """Write the folder atomically; the contract's checks run on it before the swap."""
    with atomic_dir(out) as tmp:
        if out.is_dir():
            for p in out.iterdir():
                if p.is_file() and p.stem not in merged:
                    shutil.copy2(p, tmp / p.name)
        for table, frame in merged.items():
            pq.write_table(_typed_frame(frame, table), tmp / f"{table}.parquet")
        report = validate_dataset(tmp)
        # A billing, CRM or support export alone has no activity log: the folder is written
        # (the absent list says to import one) and every other contract check still applies.
        errors = [
            f
            for f in report.errors
            if not (f.table == "usage" and f.column is None and "required table" in f.message)
        ]
        if errors:
            raise ImportFailedError(
                "the imported tables break the data contract:\n" + "\n".join(str(f) for f in errors)
            )
