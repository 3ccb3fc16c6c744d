"""The service's side of the prediction log: what it served by account id, written off the request.

``radar serve --prediction-log DIR`` (``RADAR_PREDICTION_LOG``) makes every answer of the by-id
and bulk endpoints append its probabilities to the same log ``radar score`` writes
(:mod:`monitoring.predictions`), so ``radar monitor`` joins what the service said with what
happened. What-if answers (``/v1/score/snapshots``) are not logged: their feature values were
sent by the caller and are not the account's.

A request only hands its records to a queue; one background thread per worker process
collects them for ``FLUSH_S`` seconds (or ``FLUSH_ROWS`` rows, whichever comes first) and
writes them as one file per as-of date: a few files per minute however busy the service
(one file per answer made 5,164 files for 22,666 rows in 4 minutes, and a 34 s read).
Writing costs milliseconds, which a request should not wait for. Pending records are written
at exit (SIGTERM included). Partitions that gathered many files anyway (older logs) are
compacted into one (:func:`monitoring.predictions.compact`) after each write.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitoring.predictions import LOGGED, append, compact

log = logging.getLogger(__name__)

ENV = "RADAR_PREDICTION_LOG"
FLUSH_ENV = "RADAR_PREDICTION_LOG_FLUSH_S"
FLUSH_S = 15.0  # at most 4 files a minute per worker and as-of date ($RADAR_PREDICTION_LOG_FLUSH_S)
FLUSH_ROWS = 50_000  # a burst of bulk answers is written sooner, in files of bounded size
COMPACT_AT = 64  # files in one as-of partition before they are merged into one
_STOP = object()


def logged_columns(columns: dict[str, Any]) -> pd.DataFrame:
    """The columns of scoring records (``score_rows``'s dict) that the log keeps."""
    names = [c for c in LOGGED if c in columns] + [c for c in columns if c.startswith("p_")]
    return pd.DataFrame({c: np.asarray(columns[c]) for c in names})


class PredictionLogWriter:
    """Queue scored records; a background thread appends them to the prediction log."""

    def __init__(
        self,
        log_dir: str | Path,
        metadata: dict[str, str | None],
        flush_s: float = FLUSH_S,
        flush_rows: int = FLUSH_ROWS,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.metadata = dict(metadata)
        self.flush_s = flush_s
        self.flush_rows = flush_rows
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def add(self, columns: dict[str, Any]) -> None:
        """Queue the records of one answer (returns at once)."""
        if len(columns.get("account_id", ())):
            self._queue.put(logged_columns(columns))

    def close(self, timeout: float = 30) -> None:
        """Write what is pending and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _collect(self) -> tuple[list[pd.DataFrame], bool]:
        """The answers of one file (``flush_s`` s or ``flush_rows`` rows); whether to stop."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        frames, rows = [first], len(first)
        deadline = time.monotonic() + self.flush_s
        while rows < self.flush_rows:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if item is _STOP:
                return frames, True
            frames.append(item)
            rows += len(item)
        return frames, False

    def _run(self) -> None:
        stop = False
        while not stop:
            frames, stop = self._collect()
            if not frames:
                continue
            try:
                written = append(pd.concat(frames, ignore_index=True), self.metadata, self.log_dir)
                for path in written:
                    compact(path.parent, min_files=COMPACT_AT)
            except Exception:  # a full disk must not take scoring down: say so and go on
                log.exception("could not append %d answers to %s", len(frames), self.log_dir)


def writer_from_env(model) -> PredictionLogWriter | None:
    """A writer to ``$RADAR_PREDICTION_LOG`` for ``model`` (a ScoringModel); None if unset."""
    where = os.environ.get(ENV)
    if not where:
        return None
    meta = {"model": model.label, "model_uri": model.uri, "model_run_id": model.run_id}
    log.info("appending served predictions to %s", where)
    flush = float(os.environ.get(FLUSH_ENV) or FLUSH_S)
    return PredictionLogWriter(where, meta, flush_s=flush)
