"""The CLI's errors: one line and exit 1, never a traceback (issue 32, findings 12, 13, 17)."""

from __future__ import annotations

import errno
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from radar.errors import one_line
from tests.cli import clean_env, radar


def _one_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith(("error:", "ERROR"))]
    assert errors, r.stderr[-2000:]
    return "\n".join(errors)


def _as_csv(data: Path, table: str, **to_csv) -> Path:
    path = data / f"{table}.csv"
    pd.read_parquet(data / f"{table}.parquet").to_csv(path, index=False, **to_csv)
    (data / f"{table}.parquet").unlink()
    return path


def test_a_semicolon_csv_is_named_not_a_key_error(data_copy, tmp_path):
    """Finding 12: 121 lines ending in ``KeyError: 'account_id'``."""
    _as_csv(data_copy, "accounts", sep=";")
    for args in (("validate", "--data", str(data_copy)),):
        text = _one_error(radar(*args, cwd=tmp_path))
        assert "accounts.csv is not comma-separated" in text and "';'" in text


def test_a_sparse_file_is_refused_before_it_is_read(data_copy, tmp_path):
    """Finding 13: a file claiming 2 GB (200 real bytes) drove memory past 8 GiB."""
    (data_copy / "accounts.parquet").unlink()
    with (data_copy / "accounts.csv").open("wb") as f:
        f.write(b"account_id,name\n")
        f.seek(2_000_000_000)
        f.write(b"x\n")
    text = _one_error(radar("validate", "--data", str(data_copy), cwd=tmp_path))
    assert "a sparse file" in text and "2,000,000,002" in text
    # And the configured limit, against the file's size.
    env = clean_env(RADAR_MAX_INPUT_BYTES="1000")
    (data_copy / "accounts.csv").unlink()
    pd.DataFrame({"account_id": ["A"] * 200, "name": ["x" * 20] * 200}).to_csv(
        data_copy / "accounts.csv", index=False
    )
    text = _one_error(radar("validate", "--data", str(data_copy), cwd=tmp_path, env=env))
    assert "over the limit of 1,000 (RADAR_MAX_INPUT_BYTES)" in text


def test_utf16_and_duplicate_headers_are_named(data_copy, tmp_path):
    """Finding 17: UTF-16 named no row; a duplicate header was silently renamed ``name.1``."""
    path = _as_csv(data_copy, "accounts", encoding="utf-16")
    text = _one_error(radar("validate", "--data", str(data_copy), cwd=tmp_path))
    assert "accounts.csv is UTF-16" in text
    frame = pd.read_csv(path, encoding="utf-16")
    header = ",".join([*frame.columns, "name"])
    rows = [",".join(map(str, r)) + ",dup" for r in frame.astype(str).itertuples(index=False)]
    path.write_text("\n".join([header, *rows]) + "\n")
    text = _one_error(radar("validate", "--data", str(data_copy), cwd=tmp_path))
    assert "column 'name' appears twice in the header" in text


def test_latin1_names_its_line(data_copy, tmp_path):
    """Finding 17: a latin-1 file named no row."""
    path = _as_csv(data_copy, "accounts")
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b",", b",Caf\xe9 ", 1)
    path.write_bytes(b"\n".join(lines))
    text = _one_error(radar("validate", "--data", str(data_copy), cwd=tmp_path))
    assert "accounts.csv line 6: not UTF-8" in text


def _limit_file_size(size: int):
    def limit() -> None:  # in the child: a write past ``size`` fails (EFBIG) as a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_full_disk_during_radar_features_is_one_line(small_dataset, tmp_path):
    """Finding 12: disk full during ``radar features`` printed 97 lines; nothing half-written."""
    out = tmp_path / "features"
    r = subprocess.run(
        [sys.executable, "-m", "radar.cli", "features", "--data", str(small_dataset)]
        + ["--out", str(out)],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_file_size(20_000),
    )
    text = _one_error(r)
    assert "File too large" in text or "no space left" in text, text
    assert not out.exists() or not any(out.iterdir())


def test_os_errors_read_as_words_with_the_file():
    e = OSError(errno.ENOSPC, "No space left on device", "/data/out/scores.parquet")
    assert one_line(e).startswith("no space left on the device writing or reading /data/out/")
    assert one_line(KeyError("account_id")) == (
        "a column or key is missing: 'account_id' (KeyError)"
    )
    assert "\n" not in one_line(ValueError("two\nlines"))


@pytest.mark.slow
def test_first_stores_opened_at_once_do_not_collide(tmp_path):
    """Finding 12: two first ``radar train --promote`` on a new SQLite store (alembic)."""
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    code = f"from training.store_init import prepare_store; prepare_store({uri!r})"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    assert [rc for rc, _ in results] == [0, 0, 0], [err[-1500:] for _, err in results]


def test_an_empty_mlmodel_is_one_line(fault_registry, long_data, tmp_path):
    """Finding 12: an empty ``MLmodel`` printed 86 lines."""
    root, uri = fault_registry
    mlmodels = sorted(root.rglob("MLmodel"))
    assert mlmodels
    saved = {p: p.read_bytes() for p in mlmodels}
    try:
        for content in (b"", b"\xff\xfe garbage \x00\x81"):  # empty, then not even text
            for p in mlmodels:
                p.write_bytes(content)
            r = radar(
                *("score", "--data", str(long_data), "--as-of", "latest"),
                *("--out", str(tmp_path / "s.parquet"), "--tracking-uri", uri),
                cwd=tmp_path,
            )
            assert "MLmodel" in _one_error(r), r.stderr[-1500:]
    finally:
        for p, data in saved.items():
            p.write_bytes(data)


def test_dates_are_yyyy_mm_dd_and_ids_are_not_padded(data_copy, tmp_path):
    """Finding 17: zones gave pandas' "Mixed timezones detected" naming nothing; 2025/01/31
    and 2025-01-31T00:00:00 were accepted; a padded id was another account, only a warning.
    """
    path = _as_csv(data_copy, "accounts")
    lines = path.read_text().split("\n")
    bad = [
        "2024/07/21",
        "2024-07-21T00:00:00",
        "2024-07-21T00:00:00+02:00",
        "2024-07-21T00:00-05:00",
    ]
    for i, value in enumerate(bad, start=2):
        cells = lines[i].split(",")
        cells[5] = value  # customer_since
        lines[i] = ",".join(cells)
    lines[7] = " " + lines[7]
    path.write_text("\n".join(lines))
    text = _one_error(radar("validate", "--data", str(data_copy), cwd=tmp_path))
    assert "accounts.customer_since: not a date (YYYY-MM-DD) [4 rows: row 2 ('2024/07/21')" in text
    assert "'2024-07-21T00:00:00+02:00'" in text and "Mixed timezones" not in text
    assert "accounts.account_id: an id with leading or trailing spaces" in text
    assert "row 7 (' A" in text
