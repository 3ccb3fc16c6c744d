"""Checks on a table's file before any of it is parsed: size, encoding, delimiter, header.

A reader that trusts a file finds out too late: a sparse file claiming 2 GB (200 real bytes)
drove ``radar validate`` past 8 GiB of memory with no message; a semicolon-delimited
``accounts.csv`` ended in ``KeyError: 'account_id'``; a UTF-16 file named no row; a duplicate
header was silently renamed ``name.1``. :func:`file_findings` looks at the file's size on
disk and its first bytes only, and says what is wrong in the contract's terms (table, column,
line, value).

The size limit is ``$RADAR_MAX_INPUT_BYTES`` (default 20 GiB per table file): far above any
portfolio's tables (100,000 accounts' two years of daily usage is about 2 GB as CSV), so it
only stops a file that is not what it claims to be.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections import Counter
from pathlib import Path

from features.findings import Finding

MAX_INPUT_ENV = "RADAR_MAX_INPUT_BYTES"
DEFAULT_MAX_INPUT = 20 << 30
HEAD_BYTES = 64 << 10  # enough for the header line and a few rows
SPARSE_MIN = 1 << 20  # smaller files are never called sparse (file-system block rounding)
OTHER_DELIMITERS = (";", "\t", "|")
BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def max_input_bytes() -> int:
    """The configured limit on a table file's size (``$RADAR_MAX_INPUT_BYTES``)."""
    raw = os.environ.get(MAX_INPUT_ENV, "")
    if not raw:
        return DEFAULT_MAX_INPUT
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{MAX_INPUT_ENV} must be a whole number of bytes > 0, got {raw!r}")
    return int(raw)


def _size_findings(path: Path, table: str) -> list[Finding]:
    st = path.stat()
    limit = max_input_bytes()
    if st.st_size > limit:
        return [
            Finding(
                "error",
                table,
                None,
                f"{path.name} is {st.st_size:,} bytes, over the limit of {limit:,} "
                f"({MAX_INPUT_ENV})",
            )
        ]
    on_disk = getattr(st, "st_blocks", None)
    if on_disk is not None and st.st_size > SPARSE_MIN and on_disk * 512 < st.st_size // 8:
        return [
            Finding(
                "error",
                table,
                None,
                f"{path.name} claims {st.st_size:,} bytes but holds {on_disk * 512:,} on disk "
                "(a sparse file, mostly holes): not a table export; refused before reading",
            )
        ]
    return []


def _csv_findings(path: Path, table: str) -> list[Finding]:
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    for bom, name in BOMS.items():
        if head.startswith(bom):
            return [
                Finding(
                    "error",
                    table,
                    None,
                    f"{path.name} is {name} (it starts with a byte-order mark); save it as UTF-8",
                )
            ]
    if b"\x00" in head:
        line = head[: head.index(b"\x00")].count(b"\n") + 1
        return [
            Finding(
                "error", table, None, f"{path.name} line {line}: NUL bytes; not a UTF-8 CSV file"
            )
        ]
    first = head.split(b"\n", 1)[0].rstrip(b"\r").removeprefix(codecs.BOM_UTF8)
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [
            Finding(
                "error",
                table,
                None,
                f"{path.name} line 1 (the header), byte {exc.start + 1}: not UTF-8 "
                f"({first[exc.start : exc.start + 4]!r}); save the file as UTF-8",
            )
        ]
    names = next(csv.reader([text]), [])
    if len(names) == 1:
        used = [d for d in OTHER_DELIMITERS if d in text]
        if used:
            return [
                Finding(
                    "error",
                    table,
                    None,
                    f"{path.name} is not comma-separated: its header {text[:80]!r} is one "
                    f"column (it uses {used[0]!r}); save it as CSV with commas",
                )
            ]
    twice = [n for n, k in Counter(n.strip() for n in names).items() if k > 1]
    if twice:
        return [
            Finding("error", table, n, f"{path.name}: column {n!r} appears twice in the header")
            for n in twice
        ]
    return []


def file_findings(path: Path, table: str) -> list[Finding]:
    """What is wrong with ``path`` (the file of ``table``) before it is read; [] if nothing."""
    found = _size_findings(path, table)
    if not found and path.suffix == ".csv":
        found = _csv_findings(path, table)
    return found


def first_undecodable(path: Path) -> tuple[int, bytes] | None:
    """(line number, bytes) of the first line of ``path`` that is not UTF-8, if any."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, line[max(exc.start - 10, 0) : exc.start + 10]
    return None
