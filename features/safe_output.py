"""Values from the customer's data made safe where they leave the product: file names, CSV cells.

- **File names.** An account id is whatever the customer's systems use (the contract allows
  any text), so a file named after one (``radar brief --all``) could climb out of its folder
  (``../../x``) or make folders (``EU/0001``). :func:`file_stem` maps every id to one safe
  name of its own instead of refusing ids: letters, digits, ``_``, ``-`` and ``.`` stay,
  anything else is percent-encoded (``EU/0001`` -> ``EU%2F0001``), and so is a leading dot
  (no hidden files, no ``..``). Percent-encoding is one-to-one, so two ids never share a file.
- **CSV cells.** A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return as a formula (``=HYPERLINK(...)`` in an account name). OWASP's rule
  (https://owasp.org/www-community/attacks/CSV_Injection): such a text cell is prefixed with
  a single quote, which spreadsheets show as text. Numbers are left as they are (a negative
  number is a number). A carriage return inside a cell becomes a line feed: pandas quotes a
  cell with a line feed but not one with a bare CR, which spreadsheets read as a new row
  (whose first cell could then be a formula). :func:`csv_safe` is applied to every CSV the
  product writes for people (``radar score --out x.csv``, the pages' ``/ui/export.csv``).
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_STEM = 200  # bytes of a file name's stem (file systems allow 255 with the suffix)


def file_stem(account_id: str) -> str:
    """A file name (without suffix) for ``account_id``: one per id, never a path."""
    text = str(account_id)
    stem = quote(text, safe="")  # keeps letters, digits and "_.-~"
    if stem.startswith("."):
        stem = "%2E" + stem[1:]
    if not stem:
        stem = "%00empty"
    if len(stem) > MAX_STEM:  # keep it unique: a digest of the whole id
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        stem = f"{stem[: MAX_STEM - 17]}~{digest}"
    return stem


def neutralise(value: object) -> object:
    """``value`` with a leading quote if it is text a spreadsheet would run as a formula."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_START):
        value = "'" + value
    if "\r" in value:  # a bare CR is no line end to pandas' writer: the cell went unquoted
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot run as spreadsheet formulas (OWASP)."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            out[column] = series.map(neutralise, na_action="ignore")
    out.columns = [neutralise(c) for c in out.columns]
    return out
