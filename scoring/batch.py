"""``radar score``: raw tables in, the snapshot at a date built and scored, records out.

The snapshot is built by the feature pipeline with the feature configuration the model was
trained on, exactly as ``radar features`` builds the store the service reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features.contract import load_dataset
from features.pipeline import snapshot_at
from features.store import DEFAULT_EXPANSION_UPLIFT, missing_inputs, with_context
from scoring.plays import ScoringConfig
from scoring.records import Scores, score_snapshots
from training.registry import ScoringModel, feature_config

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
    :func:`features.contract.load_dataset`: ``now`` (rows dated after it are an error) and
    ``future`` (``"exclude"``: such rows are a warning and left out), as ``radar validate``.

    Raises:
        ContractError: When the data breaks the contract.
        ValueError: When ``as_of`` is outside the period the data covers.

    """
    ds = load_dataset(data_dir, **data_options)
    run = snapshot_at(
        ds, None if as_of is None else pd.Timestamp(as_of), feature_config(model.bundle)
    )
    t = pd.Timestamp(run.manifest["as_of_dates"][0])
    snaps = with_context(run.snapshots, run.context)
    uplift = run.manifest["expansion_uplift"][str(t.date())]
    scores = score_snapshots(
        snaps,
        model,
        cfg,
        missing=missing_inputs(run.context, ds.report.missing_optional, snaps["account_id"], t),
        uplift=DEFAULT_EXPANSION_UPLIFT if uplift is None else uplift,
        progress=progress,
    )
    scores.metadata |= {
        "data": str(Path(data_dir).resolve()),
        "missing_optional_tables": ds.report.missing_optional,
        "expansion_uplift_source": "history" if uplift is not None else "default",
    }
    return scores
