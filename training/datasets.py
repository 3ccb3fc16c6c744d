"""The data a training run read, as MLflow datasets (``mlflow.data``): the table and its split.

Each training run logs, as run inputs (MLflow's "Datasets used" and the compare view):

- ``context=source``: the whole table it read (snapshot table or a table of your own), named
  after its kind, with the input fingerprint as digest and its path as source;
- ``context=train`` / ``validation`` / ``test``: the rows of each part of the split shared by
  the 30/90-day heads (the rows whose as-of date falls in the part's window, or the seeded
  random part), with the window, rows and labelled rows as tags.

Only the columns training reads are described (entity, time, features, labels): the schema
MLflow shows is the model's input, not every helper column of the snapshot table. The digests
are ours (fingerprint + part + window), so they are stable across machines and cheap: MLflow's
own digest hashes rows, and the table holds list-valued columns it cannot hash.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import mlflow
import mlflow.data
import pandas as pd

PARTS = ("train", "validation", "test")
SOURCE = "source"


def _source(path: str):
    """A dataset source for a local path (MLflow registers its local source twice and warns)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    uri = Path(path).resolve().as_uri() if path else "file:///unknown"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        return resolve_dataset_source(uri)


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def training_datasets(result, data) -> list[tuple[mlflow.data.Dataset, str, dict[str, str]]]:
    """(dataset, context, tags) for the table ``data`` and each part of ``result.split``."""
    source = data.source
    frame = data.frame
    keep = [c for c in (data.entity, data.time) if c and c in frame]
    keep += [c for c in (*data.spec.names, *data.labels) if c in frame and c not in keep]
    table = frame[keep]
    fingerprint = source.get("fingerprint") or _digest(len(frame), *keep)
    kind = source.get("kind", "table")
    where = _source(source.get("path", ""))
    target = data.labels[0] if len(data.labels) == 1 else None
    out = [
        (
            mlflow.data.from_pandas(
                table, source=where, name=kind, targets=target, digest=fingerprint[:16]
            ),
            SOURCE,
            {
                "fingerprint": fingerprint,
                "rows": str(len(frame)),
                "labels": ",".join(data.labels),
                "path": source.get("path", ""),
            },
        )
    ]
    split = result.split
    times = frame[data.time] if data.time else pd.Series(index=frame.index, dtype=float)
    part = split.assign(times).reindex(frame.index)
    labelled = frame[list(data.labels)].notna().any(axis=1)
    window = split.as_dict()
    for p in PARTS:
        mask = (part == p).fillna(False).to_numpy(dtype=bool)
        tags = {
            "fingerprint": fingerprint,
            "rows": str(int(mask.sum())),
            "labelled_rows": str(int((mask & labelled.to_numpy()).sum())),
        }
        if "train_start" in window:  # a time split: the part's as-of window
            tags |= {"start": str(window[f"{p}_start"]), "end": str(window[f"{p}_end"])}
            tags["gap_days"] = str(window.get("gap_days", ""))
        else:
            tags |= {k: str(v) for k, v in window.items()}
        dataset = mlflow.data.from_pandas(
            table[mask],
            source=where,
            name=f"{kind}-{p}",
            targets=target,
            digest=_digest(fingerprint, p, *sorted(tags.items())),
        )
        out.append((dataset, p, tags))
    return out


def log_training_datasets(result, data) -> None:
    """Log :func:`training_datasets` as inputs of the active run."""
    for dataset, context, tags in training_datasets(result, data):
        mlflow.log_input(dataset, context=context, tags=tags)
