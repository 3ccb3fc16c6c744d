"""``POST /v1/score/rows``: rows of a table scored by a model trained on one (rows only)."""

from __future__ import annotations

import difflib
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from scoring.table_rows import TableScores, score_table
from training.registry import ScoringModel
from training.table import trained_on_table


class RowsResponse(BaseModel):
    """The answer of ``/v1/score/rows``."""

    model: str = Field(description="The served model (name and version).")
    results: list[dict[str, Any]] = Field(
        description="Per row sent, in order: its key (the table's entity column when sent, "
        "else `row`, its 1-based position), and per head `p_<head>` (probability) and "
        "`drivers_<head>` (up to 5 features, each `{feature, value, effect}`; effect in "
        "probability, 0.01 = 1 point)."
    )


def table_rows_answer(frame: pd.DataFrame, model: ScoringModel) -> TableScores:
    """The scores of the sent rows; ValueError naming a column the model does not read.

    The table's entity column (the one training grouped by) may be sent and comes back as the
    row's key; any other column that is not one of the model's is refused (a misspelt
    feature would otherwise be scored as missing without a word).
    """
    spec = model.bundle.spec
    entity = (trained_on_table(model.bundle.metadata) or {}).get("entity") or ""
    known = set(spec.names) | ({entity} if entity else set())
    stray = [c for c in frame.columns if c not in known]
    if stray:
        first = str(stray[0])
        close = difflib.get_close_matches(first, spec.names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        more = f" and {len(stray) - 1} more" if len(stray) > 1 else ""
        raise ValueError(
            f"rows: {first!r}{more} not a column of the served model{hint}; its columns are "
            f"{', '.join(spec.names)}"
        )
    for col in frame.columns:  # JSON lists and objects are no cell of a table
        nested = frame[col].map(lambda v: isinstance(v, list | dict)).to_numpy()
        if nested.any():
            i = int(nested.argmax())
            raise ValueError(
                f"rows.{col}: row {i + 1}: {type(frame[col].iloc[i]).__name__} is not a value "
                "(give a number, text, true/false or null)"
            )
    scores = score_table(frame, model.bundle, "rows", require_all=False)
    records = scores.records
    # One key per row either way: the entity sent, else the row's 1-based position.
    return TableScores(records.where(records.notna(), None), scores.absent, scores.metadata)
