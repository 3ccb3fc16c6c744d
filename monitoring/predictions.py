"""The prediction log: every scoring run's probabilities, kept so outcomes can be joined later.

Parquet files partitioned by as-of date (``predictions/as_of=2026-10-31/<scored at>-<id>.parquet``):
each ``radar score`` run adds a file, never rewrites one. Reading keeps, for each account and
as-of date, the latest scoring (a re-run after a fix replaces what it corrects).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from features.catalogue import HORIZONS
from features.io import atomic_file

log = logging.getLogger(__name__)

DEFAULT_LOG = Path("predictions")  # in the working folder, beside the default mlflow.db
KEYS = ("account_id", "as_of")
# Columns of the scoring records that are logged, besides the probabilities (p_*).
LOGGED = (
    "account_id",
    "as_of",
    "segment",
    "arr",
    *(f"arr_at_risk_{h}d" for h in HORIZONS),
    *(f"expected_expansion_arr_{h}d" for h in HORIZONS),
)
PARTITION = "as_of="


def prediction_rows(records: pd.DataFrame, metadata: dict) -> pd.DataFrame:
    """The log's rows for scored ``records``: probabilities, expected ARR, model and time."""
    cols = [c for c in LOGGED if c in records] + [c for c in records if c.startswith("p_")]
    out = records[cols].copy()
    out["as_of"] = pd.to_datetime(out["as_of"]).astype("datetime64[s]")
    out["model_version"] = metadata.get("model", "")
    out["model_uri"] = metadata.get("model_uri", "")
    out["model_run_id"] = metadata.get("model_run_id") or ""
    scored = metadata.get("scored_at") or datetime.now(UTC).isoformat(timespec="seconds")
    out["scored_at"] = pd.Timestamp(scored).tz_convert("UTC").tz_localize(None)
    return out


def append(records: pd.DataFrame, metadata: dict, log_dir: str | Path = DEFAULT_LOG) -> list[Path]:
    """Add one scoring run to the log: a new file per as-of date, written whole or not at all."""
    rows = prediction_rows(records, metadata)
    stamp = rows["scored_at"].iloc[0].strftime("%Y%m%dT%H%M%S") if len(rows) else "empty"
    written = []
    for as_of, part in rows.groupby("as_of", sort=True):
        folder = Path(log_dir) / f"{PARTITION}{pd.Timestamp(as_of).date()}"
        target = folder / f"{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        with atomic_file(target) as tmp:
            part.to_parquet(tmp, index=False)
        written.append(target)
    log.info("logged %d predictions to %s", len(rows), log_dir)
    return written


def read(log_dir: str | Path = DEFAULT_LOG) -> pd.DataFrame:
    """Every logged prediction, the latest scoring per account and as-of date.

    Raises:
        FileNotFoundError: When the folder holds no logged predictions.

    """
    files = sorted(Path(log_dir).glob(f"{PARTITION}*/*.parquet"))
    files = [f for f in files if not f.name.startswith(".")]  # unfinished writes
    if not files:
        raise FileNotFoundError(
            f"{log_dir}: no logged predictions (run `radar score ... --log {log_dir}` first)"
        )
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[s]")
    frame = frame.sort_values("scored_at", kind="stable")
    return frame.drop_duplicates(list(KEYS), keep="last").reset_index(drop=True)
