"""The service's prediction log: few files, compaction, a fast read (issue 32, finding 10).

One file per answer made 5,164 files (65 MB) for 22,666 rows in 4 minutes; reading it took
34 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.predictions import append, compact_log, read
from monitoring.service_log import PredictionLogWriter

META = {"model": "renewal-radar v1", "model_uri": "models:/x/1", "model_run_id": "r"}


def _answer(start: int, n: int, as_of: str = "2026-10-31") -> dict:
    ids = [f"A{i:06d}" for i in range(start, start + n)]
    return {
        "account_id": np.asarray(ids),
        "as_of": np.asarray([np.datetime64(as_of)] * n),
        "segment": np.asarray(["smb"] * n),
        "arr": np.full(n, 1200.0),
        "p_churn_90d": np.linspace(0.01, 0.9, n),
    }


def _files(log: Path) -> list[Path]:
    return [f for f in log.rglob("*.parquet") if not f.name.startswith(".")]


def test_the_writer_batches_answers_into_few_files(tmp_path):
    log = tmp_path / "predictions"
    writer = PredictionLogWriter(log, META, flush_s=1.0, flush_rows=60_000)
    t0 = time.monotonic()
    for k in range(2_000):  # 2,000 answers of 50 accounts: 100,000 rows
        writer.add(_answer(k * 50, 50))
    writer.close()
    assert time.monotonic() - t0 < 30
    files = _files(log)
    assert 1 <= len(files) <= 4, len(files)  # not one per answer
    t0 = time.perf_counter()
    rows = read(log)
    took = time.perf_counter() - t0
    assert len(rows) == 100_000 and rows["account_id"].is_unique
    assert took < 2.0, f"read 100,000 rows in {took:.2f} s"


def test_compaction_merges_a_partition_and_keeps_every_row(tmp_path):
    log = tmp_path / "predictions"
    for k in range(300):  # an old log: one file per answer
        frame = pd.DataFrame({c: v for c, v in _answer(k * 3, 3).items()})
        append(frame, META, log)
    append(pd.DataFrame(_answer(0, 5, as_of="2026-09-30")), META, log)
    before = read(log)
    assert len(_files(log)) == 301
    assert compact_log(log) == 1  # the partition of one file is left alone
    assert len(_files(log)) == 2
    after = read(log)
    cols = list(before.columns)
    pd.testing.assert_frame_equal(
        before.sort_values(["as_of", "account_id"]).reset_index(drop=True),
        after[cols].sort_values(["as_of", "account_id"]).reset_index(drop=True),
    )
