"""``radar score``: raw tables in, the snapshot at a date built and scored, records out.

The snapshot comes through the one door (:func:`scoring.snapshot.dated_snapshot`): the feature
pipeline with the feature configuration the model was trained on, exactly as ``radar features``
builds the store the service reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from scoring import snapshot
from scoring.plays import ScoringConfig
from scoring.records import Scores, score_snapshots
from training.registry import ScoringModel

ProgressFn = Callable[[str, int, int], None]


def score_dataset(
    data_dir: str | Path,
    as_of: str | pd.Timestamp | None,
    model: ScoringModel,
    cfg: ScoringConfig | None = None,
    progress: ProgressFn | None = None,
    **data_options: object,
) -> Scores:
    """Validate raw data, build the snapshot of every account active at ``as_of``, score it.

    ``as_of`` None means the last day the data covers. ``data_options`` go to
    :func:`scoring.snapshot.dated_snapshot`: ``now`` (rows dated after it are an error),
    ``future`` (``"exclude"``: such rows are a warning and left out), as ``radar validate``,
    and ``engine`` (where the features are computed).

    Raises:
        ContractError: When the data breaks the contract.
        ValueError: When ``as_of`` is outside the period the data covers.

    """
    snap = snapshot.dated_snapshot(data_dir, as_of, model, progress=progress, **data_options)
    scores = score_snapshots(
        snap.rows,
        model,
        cfg,
        missing=snap.missing,
        uplift=snap.uplift_or_default,
        progress=progress,
    )
    scores.metadata |= {
        "data": snap.source,
        "missing_optional_tables": snap.missing_optional_tables,
        "expansion_uplift_source": "history" if snap.uplift is not None else "default",
    }
    return scores
