"""What an MLflow run says about itself: a description, the job's own duration, the ML view.

- A run's description is MLflow's ``mlflow.note.content`` tag (the "Description" box of the
  run page): a few lines saying what the job did, on what, with which windows and what it
  left out, so a run read months later explains itself.
- A run's duration is the job's: the run is created with the job's start time (training or
  a backtest runs for minutes before anything is logged), then resumed to log.
- MLflow 3.17's UI chooses its classic-ML or GenAI view from a switch of its own (the
  ``workflowType`` query parameter, remembered by the browser; GenAI by default), not from
  the experiment's ``mlflow.experimentKind`` tag, which is still set for versions that read
  it. :func:`experiment_link` gives the experiment's address in the classic-ML view.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags

DESCRIPTION_TAG = "mlflow.note.content"
# The UI's own switch (MLflow 3.17: URL parameter, then the browser's remembered choice).
CLASSIC_ML_QUERY = "workflowType=machine_learning"


@contextmanager
def job_run(run_name: str, experiment_id: str, started: float | None) -> Iterator[mlflow.ActiveRun]:
    """An active run whose start is the job's (``started``, seconds since the epoch).

    Under ``mlflow run`` (``MLFLOW_RUN_ID`` set) the launched run is used as it is; without
    ``started`` the run starts now, as :func:`mlflow.start_run` would. The run gets the tags
    :func:`mlflow.start_run` resolves (source, user, git), and ends when the block does.
    """
    if started is None or os.environ.get("MLFLOW_RUN_ID"):
        with mlflow.start_run(run_name=run_name) as run:
            yield run
        return
    created = MlflowClient().create_run(
        experiment_id, start_time=int(started * 1000), tags=resolve_tags(), run_name=run_name
    )
    with mlflow.start_run(run_id=created.info.run_id) as run:
        yield run


def describe(run_id: str, text: str) -> None:
    """Set the run's description (the run page's "Description")."""
    MlflowClient().set_tag(run_id, DESCRIPTION_TAG, text)


def experiment_link(tracking_uri: str, experiment_id: str) -> str | None:
    """The experiment's page in the classic-ML view, for a tracking server; None otherwise."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}?{CLASSIC_ML_QUERY}"


def windows_line(splits: dict) -> str:
    """Each head's test window, e.g. "churn_30d 2026-07-01..2026-07-31; churn_90d ..."."""
    parts = []
    for head, split in splits.items():
        d = split if isinstance(split, dict) else split.as_dict()
        if "test_start" in d:
            parts.append(f"{head} {d['test_start']}..{d['test_end']}")
        else:  # a random split: no window
            parts.append(f"{head} random test part (seed {d.get('seed')})")
    return "; ".join(parts)


def training_description(result, data) -> str:
    """A training run in a few lines: heads, data, each head's test window, what was left out."""
    heads = list(result.heads)
    missing = [h for h in data.labels if h not in result.heads]
    lines = [
        f"Training of {len(heads)} head(s) ({', '.join(heads)}) on "
        f"{data.source.get('path') or data.source.get('kind', 'a table')}; calibration "
        f"{result.config.calibration}, seed {result.config.seed}.",
        f"Test windows (each head's own, gap = its horizon): {windows_line(result.splits)}.",
    ]
    if missing:
        why = {h: next((w for w in result.warnings if w.startswith(f"{h}:")), h) for h in missing}
        lines.append("Not trained: " + "; ".join(why.values()) + ".")
    others = [w for w in result.warnings if not any(w.startswith(f"{h}:") for h in missing)]
    if others:
        lines.append("Warnings: " + "; ".join(others[:10]) + ".")
    return "\n\n".join(lines)
