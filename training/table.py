"""Reading a feature table of one's own: labels, dates and feature columns as teams have them.

Exported spreadsheets and warehouse extracts carry Yes/No labels, numbers with blank or
whitespace cells, integer counts, id columns and dates as text. Each is read for what it is,
and anything that cannot be used is refused naming the column, row and value.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from training.data import MAX_LEVELS

TRUE_WORDS = ("1", "1.0", "true", "yes", "y", "t")
FALSE_WORDS = ("0", "0.0", "false", "no", "n", "f")
_DIGITS = re.compile(r"^[+-]?\d+(\.\d+)?$")
_DATE_LIKE = re.compile(r"\d[-/.]\d|\d{4}")


def read_table(path: str | Path) -> pd.DataFrame:
    """A Parquet or CSV file as a DataFrame."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    if p.suffix.lower() == ".parquet":
        return pd.read_parquet(p)
    if p.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(p)
    raise ValueError(f"{p}: expected a .parquet or .csv file")


def cell(value: object) -> str:
    """A value as a reader would type it: text quoted, numbers plain."""
    return repr(value) if isinstance(value, str) else str(value)


def _first_bad(name: str, col: str, values: pd.Series, bad: np.ndarray, what: str) -> ValueError:
    i = int(np.flatnonzero(bad)[0])
    return ValueError(
        f"{name}.{col}: row {i + 1}: {cell(values.iloc[i])} {what} ({int(bad.sum())} row(s) "
        "like it)"
    )


def _blank_to_na(s: pd.Series) -> pd.Series:
    """Text stripped, blank or whitespace-only cells missing; other dtypes unchanged."""
    if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
        return s
    stripped = s.map(lambda v: v.strip() if isinstance(v, str) else v)
    return stripped.mask(stripped.map(lambda v: isinstance(v, str) and v == ""))


def parse_label(name: str, col: str, values: pd.Series) -> tuple[pd.Series, str | None]:
    """A 0/1 label (``Float64``, missing = unknown) and the mapping used, when not plain 0/1.

    Accepts 0/1 numbers, booleans, and true/false, yes/no, y/n, t/f in any case.

    Raises:
        ValueError: Naming the row and value of the first cell that is none of these.

    """
    s = _blank_to_na(values)
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        y = pd.to_numeric(s.astype("object").replace({True: 1, False: 0}), errors="coerce")
        bad = (s.notna() & ~y.isin([0, 1])).to_numpy()
        if bad.any():
            raise _first_bad(name, col, values, bad, "is not a 0/1 label")
        return y.astype("Float64"), None
    words = s.map(lambda v: str(v).strip().lower() if pd.notna(v) else v)
    y = words.map(lambda v: 1.0 if v in TRUE_WORDS else 0.0 if v in FALSE_WORDS else np.nan)
    bad = (words.notna() & y.isna()).to_numpy()
    if bad.any():
        raise _first_bad(
            name, col, values, bad, "is not a label (expected 0/1, true/false or yes/no)"
        )
    seen = pd.DataFrame({"v": s[s.notna()].astype("str"), "y": y[s.notna()]}).drop_duplicates()
    mapping = ", ".join(
        f"{v!r} -> {int(t)}" for v, t in sorted(zip(seen["v"], seen["y"], strict=True))
    )
    return y.astype("Float64"), f"label {col}: {mapping}"


def parse_time(name: str, col: str, values: pd.Series) -> pd.Series:
    """The as-of dates of ``col`` (``datetime64[s]``).

    Numbers are refused (an integer is a tenure or an id, not a date: read as one it would
    be nanoseconds since 1970), as is any cell that does not parse as a date.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        times = pd.to_datetime(values)
    else:
        s = _blank_to_na(values)
        known = s.dropna()
        numeric = pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
        if numeric or (len(known) and known.astype("str").str.match(_DIGITS).all()):
            example = cell(known.iloc[0]) if len(known) else "?"
            raise ValueError(
                f"{name}.{col}: values like {example} are numbers, not dates: --time needs a "
                "date column (YYYY-MM-DD); leave --time out for a random split, or give this "
                "column as a feature"
            )
        times = pd.to_datetime(s, errors="coerce", format="mixed")
        bad = times.isna().to_numpy()
        if bad.any():
            raise _first_bad(name, col, values, bad, "is not a date")
    bad = times.isna().to_numpy()
    if bad.any():
        raise _first_bad(name, col, values, bad, "is not a date")
    return times.astype("datetime64[s]")


def prepare_features(
    df: pd.DataFrame, name: str, skip: set[str]
) -> tuple[pd.DataFrame, set[str], list[str]]:
    """Feature columns as the model reads them, the columns to leave out, and notes on them.

    - text that is all numbers (with blank or whitespace cells) becomes a number, missing
      where blank; text that is all true/false becomes 0/1;
    - text that is all dates is a date, left out;
    - text with more than ``MAX_LEVELS`` distinct values, or a distinct value on every row,
      is an identifier, left out;
    - an infinite number is refused naming the column, row and value.
    """
    out = df.copy()
    leave_out: set[str] = set()
    notes: list[str] = []
    for col in df.columns:
        if col in skip:
            continue
        s = df[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            leave_out.add(col)
            continue
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            if not pd.api.types.is_bool_dtype(s):
                values = s.to_numpy(dtype="float64", na_value=np.nan)
                bad = np.isinf(values)
                if bad.any():
                    raise _first_bad(
                        name, col, s, bad, "is infinite: give a number or leave the cell empty"
                    )
            continue
        if isinstance(s.dtype, pd.CategoricalDtype):
            continue
        t = _blank_to_na(s)
        known = t.dropna()
        if known.empty:
            out[col] = np.nan
            continue
        text = known.astype("str")
        as_number = pd.to_numeric(text, errors="coerce")
        if as_number.notna().all():
            bad = np.isinf(as_number.to_numpy(dtype=float))
            if bad.any():
                pos = t.index.get_indexer(known.index[bad])
                mask = np.zeros(len(t), dtype=bool)
                mask[pos] = True
                raise _first_bad(
                    name, col, s, mask, "is infinite: give a number or leave the cell empty"
                )
            out[col] = pd.to_numeric(t.astype("object"), errors="coerce").astype("float64")
            continue
        lower = text.str.lower()
        if lower.isin(("true", "false")).all():
            out[col] = t.map(lambda v: np.nan if pd.isna(v) else float(str(v).lower() == "true"))
            continue
        if text.str.contains(_DATE_LIKE).all():
            dates = pd.to_datetime(text, errors="coerce", format="mixed")
            if dates.notna().all():
                leave_out.add(col)
                notes.append(f"{col}: dates, left out (give it as --time to split by it)")
                continue
        distinct = text.nunique()
        if distinct > MAX_LEVELS or (distinct == len(known) and distinct > 20):
            leave_out.add(col)
            notes.append(
                f"{col}: text with {distinct:,} distinct values in {len(known):,} rows, left out "
                "as an identifier (pass it as --entity to group by it)"
            )
            continue
        out[col] = t.astype("str").where(t.notna())
    return out, leave_out, notes


def trained_on_table(metadata: dict) -> dict | None:
    """The source of a model trained on a feature table of one's own (``radar train --table``).

    None for a model trained on ``radar features`` snapshots: only those read a store.
    """
    source = metadata.get("source") or {}
    return source if source.get("kind") == "table" else None


def coerce_rows(
    df: pd.DataFrame,
    numeric: tuple[str, ...],
    categorical: dict[str, tuple[str, ...]],
    name: str,
    *,
    require_all: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Rows to score, read as :func:`prepare_features` read the training table.

    ``numeric`` and ``categorical`` are the model's feature columns (its spec). A number
    column takes numbers, number text with blank or whitespace cells (missing), booleans and
    ``true``/``false`` text (1/0); a category column takes text, stripped, blank missing (a
    level the model never saw is missing too, as in training). Returns the coerced columns
    and the model's columns that are absent (missing on every row).

    Raises:
        ValueError: Naming the column, row (1-based) and value of a cell a number column
            cannot read or that is infinite, as training does; with ``require_all``, naming
            the model's columns the rows lack.

    """
    absent = [c for c in (*numeric, *categorical) if c not in df.columns]
    if absent and require_all:
        shown = ", ".join(repr(c) for c in absent[:10])
        more = f" and {len(absent) - 10} more" if len(absent) > 10 else ""
        raise ValueError(
            f"{name}: the model's feature column(s) {shown}{more} not found: score rows of the "
            "table the model was trained on (a column you have no values for may be left empty)"
        )
    out: dict[str, pd.Series] = {}
    for col in numeric:
        if col in df.columns:
            out[col] = _as_number(name, col, df[col])
    for col in categorical:
        if col in df.columns:
            t = _blank_to_na(df[col])
            out[col] = t.map(lambda v: v if pd.isna(v) else str(v)).astype("object")
    return pd.DataFrame(out, index=df.index), absent


def _as_number(name: str, col: str, s: pd.Series) -> pd.Series:
    """A number column as training read it: floats, missing where blank."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    if pd.api.types.is_numeric_dtype(s):
        values = s.to_numpy(dtype="float64", na_value=np.nan)
    else:
        t = _blank_to_na(s)
        lower = t.map(lambda v: v.lower() if isinstance(v, str) else v)
        flags = lower.map({"true": 1.0, "false": 0.0, True: 1.0, False: 0.0})
        parsed = pd.to_numeric(t.where(flags.isna()).astype("object"), errors="coerce")
        values = flags.fillna(parsed).to_numpy(dtype="float64", na_value=np.nan)
        bad = (t.notna() & np.isnan(values)).to_numpy()
        if bad.any():
            raise _first_bad(name, col, s, bad, f"is not a number (the model reads {col} as one)")
    bad = np.isinf(values)
    if bad.any():
        raise _first_bad(name, col, s, bad, "is infinite: give a number or leave the cell empty")
    return pd.Series(values, index=s.index)
