"""Raw table files read and typed by the contract, in pandas and Arrow only (no DuckDB).

The contract's loader (:mod:`features.contract`) reports what it finds while typing; the brief
and the service read already-validated files with :func:`read_frame`, which needs no database.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.file_checks import file_findings, first_undecodable
from features.findings import Collector, ContractError, Finding, ValidationReport
from features.schema import FILE_SUFFIXES, PANDAS_DTYPE, WHOLE_NUMBER_LIMIT, Kind, Table

# How a true/false column may be spelled (any case, surrounding blanks ignored).
TRUE = ("true", "t", "1", "yes", "y")
FALSE = ("false", "f", "0", "no", "n")
_TRUE, _FALSE = set(TRUE), set(FALSE)


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
    if found and (bad := file_findings(found[0], table)):  # size, encoding, delimiter, header
        raise ContractError(ValidationReport(bad))
    return found[0] if found else None


def read_raw(path: Path) -> pd.DataFrame:
    """A table file as read, before typing: CSV as text, Parquet as its own types."""
    if path.suffix == ".csv":
        # Everything as text first, so unparseable values can be reported, not guessed.
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        except UnicodeDecodeError:  # past the header: name the line
            line, near = first_undecodable(path) or (0, b"")
            finding = Finding(
                "error",
                path.stem,
                None,
                f"{path.name} line {line}: not UTF-8 (near {near!r}); save the file as UTF-8",
            )
            raise ContractError(ValidationReport([finding])) from None
    return raw_frame(pq.read_table(path))


def raw_frame(table: pa.Table) -> pd.DataFrame:
    """A typed Arrow table (Parquet, a database) as pandas, as the contract's checks read it."""
    # Dictionary-encoded text decodes in Arrow; pandas then wraps the strings without copying.
    for i, col in enumerate(table.schema):
        if pa.types.is_dictionary(col.type):
            table = table.set_column(i, col.name, pc.dictionary_decode(table.column(i)))
        elif pa.types.is_date(col.type):  # else pandas makes Python date objects
            table = table.set_column(i, col.name, table.column(i).cast(pa.timestamp("s")))
    return table.to_pandas()


# The contract's date format; " 00:00:00" after it is what pandas and database exports write
# for a date held as a timestamp. Other times, a "T", zones and other orders are refused.
ISO_DAY = r"\d{4}-\d{2}-\d{2}(?: 00:00:00)?"


def _dates(raw: pd.Series) -> pd.Series:
    """Dates of a column of text (``YYYY-MM-DD`` only) or of date objects (as they are)."""
    if pd.api.types.is_object_dtype(raw.dtype):  # a frame of one's own may mix both
        is_text = raw.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    else:
        is_text = np.ones(len(raw), dtype=bool)
    text = raw.where(is_text).astype("str").str.strip()
    iso = is_text & text.str.fullmatch(ISO_DAY).fillna(False).to_numpy(dtype=bool)
    parsed = pd.to_datetime(text.where(iso).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    if not is_text.all():
        try:
            objects = pd.to_datetime(raw.where(~is_text), errors="coerce")
        except (ValueError, TypeError):  # date objects in mixed zones: reported as not dates
            objects = pd.Series(pd.NaT, index=raw.index)
        if getattr(objects.dt, "tz", None) is not None:
            objects = objects.dt.tz_localize(None)
        parsed = parsed.where(is_text, objects)
    return parsed


def _coerce(df: pd.DataFrame, table: Table, out: Collector) -> pd.DataFrame:
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
            else:  # text as the contract's YYYY-MM-DD only (no 2025/01/31, no time, no zone)
                parsed = _dates(raw).where(~was_null)
            bad = ~was_null & parsed.isna().to_numpy()
            out.add("error", table.name, col.name, "not a date (YYYY-MM-DD)", bad, raw)
            typed[col.name] = parsed.astype(PANDAS_DTYPE[col.kind])
        elif col.kind in (Kind.INT, Kind.FLOAT):
            parsed = pd.to_numeric(raw, errors="coerce")
            bad = ~was_null & parsed.isna().to_numpy()
            out.add("error", table.name, col.name, "not a number", bad, raw)
            if pd.api.types.is_float_dtype(parsed.dtype):  # inf passed and became "Infinity"
                inf = np.isinf(parsed.to_numpy(dtype="float64", na_value=np.nan))
                out.add("error", table.name, col.name, "not a finite number", inf, raw)
                parsed = parsed.where(~inf)
            if col.kind is Kind.INT and not pd.api.types.is_integer_dtype(parsed.dtype):
                frac = parsed.notna().to_numpy() & (parsed.fillna(0) % 1 != 0).to_numpy()
                out.add("error", table.name, col.name, "not a whole number", frac, raw)
                huge = (parsed.abs() > WHOLE_NUMBER_LIMIT).fillna(False).to_numpy()
                out.add("error", table.name, col.name, "too large for a whole number", huge, raw)
                parsed = parsed.where(~frac & ~huge).round()
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
            if len(norm) == 0:  # every value empty: nothing to look up
                norm = np.array([None], dtype=object)
            text = pd.Series(
                np.where(codes >= 0, norm[np.maximum(codes, 0)], None), index=raw.index, dtype="str"
            )
            if col.nullable:  # a blank cell ("  ") is an empty one
                blank = (text.str.len() == 0).fillna(False).to_numpy()
                text = text.where(~blank)
                was_null = was_null | blank
            bad = ~was_null & ~text.isin(col.values).to_numpy()
            out.add(
                "error",
                table.name,
                col.name,
                col.not_one_of(),
                bad,
                raw,
            )
            typed[col.name] = text.astype("str")
        else:  # ID, STR
            if pd.api.types.is_float_dtype(raw.dtype):  # ids read as floats: 12.0 -> "12"
                raw = raw.astype("Int64")
            text = raw if raw.dtype == "str" else raw.astype("str")
            if col.kind is Kind.ID:  # " A1" would be another account than "A1"
                padded = ~was_null & (text != text.str.strip()).fillna(False).to_numpy()
                out.add(
                    "error",
                    table.name,
                    col.name,
                    "an id with leading or trailing spaces (another id than without them)",
                    padded,
                    raw,
                )
            typed[col.name] = (
                text.where(~pd.Series(was_null, index=raw.index)) if (was_null.any()) else text
            )
    return pd.DataFrame(typed, index=df.index)


def type_frame(raw: pd.DataFrame, table: Table, path: Path, out: Collector) -> pd.DataFrame:
    """Type a raw frame by the contract, reporting missing, unknown and unparseable columns."""
    missing = [c.name for c in table.columns if c.required and c.name not in raw.columns]
    for col in missing:
        out.add("error", table.name, col, f"required column missing from {path.name}")
    unknown = [c for c in raw.columns if c not in table.column_names]
    if unknown:
        out.add(
            "warning",
            table.name,
            None,
            "columns not in the contract are ignored: " + ", ".join(map(str, unknown)),
        )
    typed = _coerce(raw, table, out)
    for col in table.columns:  # absent optional columns exist downstream, all empty
        if col.name not in typed.columns and not col.required:
            typed[col.name] = pd.Series(pd.NA, index=typed.index, dtype=PANDAS_DTYPE[col.kind])
        if col.default is not None:  # e.g. no segment recorded: "unknown", never refused
            typed[col.name] = typed[col.name].fillna(col.default)
    return typed[[c for c in table.column_names if c in typed.columns]]


def read_frame(path: Path, table: Table) -> pd.DataFrame:
    """Read and type one table file in pandas, without reporting (it was validated)."""
    raw = read_raw(path).reset_index(drop=True)
    return type_frame(raw, table, path, Collector(ValidationReport()))
