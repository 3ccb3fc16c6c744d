"""Scoring rows of a feature table of one's own with the model trained on it.

A model from ``radar train --table`` knows its table's columns, not the data contract: it
scores rows of the same shape (``radar score --table``, the service's ``/v1/score/rows``),
read with the same coercions as training (:func:`training.table.coerce_rows`), each with its
probability per head and the features that moved it most, in probability points.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.explain import SHOWN, explain, top_drivers
from training.model import ModelBundle
from training.table import coerce_rows, trained_on_table

TOP_DRIVERS = 5  # drivers kept per row and head (the largest effects)
ROW = "row"  # the key column when the table has no entity column: the row's 1-based number
CHUNK = 20_000  # rows explained at a time: TreeSHAP's (rows, features) arrays stay small


@dataclass(frozen=True)
class TableScores:
    """Probabilities and drivers of a table's rows, and what the columns lacked."""

    records: pd.DataFrame  # key column, then p_<head> and drivers_<head> per head
    absent: list[str]  # the model's columns the rows did not have (missing on every row)
    metadata: dict


def rows_only_reason(model_label: str, source: dict) -> str:
    """Why a table model has no portfolio, pages or snapshots, and what it does instead."""
    table = source.get("path", "").rsplit("/", 1)[-1] or "a table"
    return (
        f"the served model {model_label} was trained on a feature table of its own ({table}, "
        f"label {source.get('label', '?')}), not on `radar features` snapshots: it scores rows "
        "only (POST /v1/score/rows with its feature columns; `radar score --table` for a file)"
    )


def score_table(
    frame: pd.DataFrame,
    bundle: ModelBundle,
    name: str,
    *,
    top: int = TOP_DRIVERS,
    require_all: bool = True,
) -> TableScores:
    """Score every row of ``frame`` (a table like the training one) with ``bundle``.

    Keeps the table's entity column (the one training grouped by) when it has one, else the
    row number; per head, ``p_<head>`` and ``drivers_<head>``: up to ``top`` features with
    an effect of at least half a point, largest first, each ``{feature, value, effect}``
    (effect in probability, 0.01 = 1 point; the effects and the baseline add up to the
    probability, see :mod:`training.explain`).

    Raises:
        ValueError: The model was not trained on a table, or a cell cannot be read (naming
            the column, row and value), or (``require_all``) a model column is absent.

    """
    source = trained_on_table(bundle.metadata)
    if source is None:
        raise ValueError(
            "this model was trained on `radar features` snapshots, not on a table: score a "
            "data folder with `radar score --data DIR --as-of DATE`"
        )
    spec = bundle.spec
    coerced, absent = coerce_rows(
        frame, spec.numeric, spec.categorical, name, require_all=require_all
    )
    entity = source.get("entity") or ""
    if entity and entity in frame.columns:
        records = pd.DataFrame({entity: frame[entity].to_numpy()})
    else:
        records = pd.DataFrame({ROW: np.arange(1, len(frame) + 1)})
    x = spec.matrix(coerced)
    values = _shown_values(coerced, spec.names)
    probs: dict[str, list[np.ndarray]] = {f"p_{h}": [] for h in bundle.heads}
    drivers: dict[str, list] = {h: [] for h in bundle.heads}
    baseline: dict[str, float] = {}
    for start in range(0, max(len(x), 1), CHUNK):
        part = x[start : start + CHUNK]
        if not len(part):
            break
        served = bundle.predict_matrix(part)
        for head, ex in explain(bundle, part, served).items():
            probs[f"p_{head}"].append(served[f"p_{head}"])
            baseline[head] = ex.baseline
            drivers[head] += _drivers(ex.effects, values[start : start + CHUNK], spec.names, top)
    for head in bundle.heads:
        col = f"p_{head}"
        records[col] = np.concatenate(probs[col]) if probs[col] else np.array([], dtype=float)
        records[f"drivers_{head}"] = drivers[head]
    metadata = {
        "heads": list(bundle.heads),
        "horizons": {h: bundle.horizon(h) for h in bundle.heads},
        "baseline": baseline,
        "absent_columns": absent,
        "trained_on": source.get("path", ""),
    }
    return TableScores(records, absent, metadata)


def _shown_values(coerced: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The value of every feature per row as the model read it (None where missing)."""
    cols = []
    for c in names:
        s = coerced[c] if c in coerced else pd.Series([None] * len(coerced), index=coerced.index)
        cols.append(s.astype("object").where(s.notna(), None).to_numpy())
    return np.column_stack(cols) if cols else np.empty((len(coerced), 0), dtype=object)


def _drivers(effects: np.ndarray, values: np.ndarray, names: list[str], k: int) -> list:
    """Per row, the ``k`` largest effects (at least ``SHOWN``) as feature, value and effect."""
    if not len(effects):
        return []
    idx = top_drivers(effects, k)
    out = []
    for i, row in enumerate(idx):
        out.append(
            [
                {"feature": names[j], "value": values[i, j], "effect": float(effects[i, j])}
                for j in row
                if abs(effects[i, j]) >= SHOWN
            ]
        )
    return out


def write_table_scores(scores: TableScores, path: str | Path) -> Path:
    """Write the records by extension (.parquet, .csv, .jsonl), atomically.

    Drivers hold numbers and text alike (a category's level), so CSV and Parquet keep each
    row's drivers as JSON text; JSON lines nest them.
    """
    from features.io import atomic_file
    from features.safe_output import csv_safe

    path = Path(path)
    ext = path.suffix.lower()
    df = scores.records
    if ext in (".jsonl", ".json"):
        with atomic_file(path) as tmp:
            df.to_json(tmp, orient="records", lines=True, double_precision=15)
        return path
    flat = df.copy()
    for c in flat.columns:
        if c.startswith("drivers_"):
            flat[c] = [json.dumps(v) for v in flat[c]]
    if ext == ".parquet":
        with atomic_file(path) as tmp:
            flat.to_parquet(tmp, index=False)
    elif ext == ".csv":
        with atomic_file(path) as tmp:
            csv_safe(flat).to_csv(tmp, index=False, float_format="%.17g")  # no formulas
    else:
        raise ValueError(f"{path}: unknown output format; use .parquet, .csv or .jsonl")
    return path
