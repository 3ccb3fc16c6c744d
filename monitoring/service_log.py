"""The service's side of the prediction log: what it served by account id, written off the request.

``radar serve --prediction-log DIR`` (``RADAR_PREDICTION_LOG``) makes every answer of the by-id
and bulk endpoints append its probabilities to the same log ``radar score`` writes
(:mod:`monitoring.predictions`), so ``radar monitor`` joins what the service said with what
happened. What-if answers (``/v1/score/snapshots``) are not logged: their feature values were
sent by the caller and are not the account's.

A request only hands its records to a queue; one background thread per worker process takes
whatever has queued up and writes it as one file per as-of date (so a busy service writes a
few larger files, not one per request). Writing a file costs milliseconds, which a request
should not wait for. Pending records are written at exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitoring.predictions import LOGGED, append

log = logging.getLogger(__name__)

ENV = "RADAR_PREDICTION_LOG"
_STOP = object()


def logged_columns(columns: dict[str, Any]) -> pd.DataFrame:
    """The columns of scoring records (``score_rows``'s dict) that the log keeps."""
    names = [c for c in LOGGED if c in columns] + [c for c in columns if c.startswith("p_")]
    return pd.DataFrame({c: np.asarray(columns[c]) for c in names})


class PredictionLogWriter:
    """Queue scored records; a background thread appends them to the prediction log."""

    def __init__(self, log_dir: str | Path, metadata: dict[str, str | None]) -> None:
        self.log_dir = Path(log_dir)
        self.metadata = dict(metadata)
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

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while True:  # everything that queued up meanwhile goes into the same file
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is _STOP for b in batch)
            frames = [b for b in batch if b is not _STOP]
            if not frames:
                continue
            try:
                append(pd.concat(frames, ignore_index=True), self.metadata, self.log_dir)
            except Exception:  # a full disk must not take scoring down: say so and go on
                log.exception("could not append %d answers to %s", len(frames), self.log_dir)


def writer_from_env(model) -> PredictionLogWriter | None:
    """A writer to ``$RADAR_PREDICTION_LOG`` for ``model`` (a ScoringModel); None if unset."""
    where = os.environ.get(ENV)
    if not where:
        return None
    meta = {"model": model.label, "model_uri": model.uri, "model_run_id": model.run_id}
    log.info("appending served predictions to %s", where)
    return PredictionLogWriter(where, meta)
