"""``radar score --table``: the rows of a feature table scored by the model trained on one."""

from __future__ import annotations

from pathlib import Path

from radar.common import console, fail, load_model

FORMATS = (".parquet", ".csv", ".jsonl", ".json")


def score_table_cmd(table: Path, out: Path, model_uri: str, tracking_uri: str | None) -> None:
    """Score every row of ``table`` with a ``radar train --table`` model; write ``out``.

    The table is read as training read its own (blank cells missing, number text a number,
    true/false 1/0); a cell that cannot be read, or a model column the table lacks, stops the
    command naming it, before anything is written.
    """
    from features.io import check_writable
    from scoring.table_rows import score_table, write_table_scores
    from training.table import read_table

    if out.suffix.lower() not in FORMATS:
        raise fail(f"{out}: unknown output format; use .parquet, .csv or .jsonl")
    try:
        check_writable(out)
        frame = read_table(table)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from exc
    model = load_model(model_uri, tracking_uri)
    try:
        scores = score_table(frame, model.bundle, table.name)
    except ValueError as exc:
        hint = ""
        if "not on a table" in str(exc):
            hint = " (a table's model is registered as models:/renewal-radar-<LABEL>)"
        raise fail(f"{model.label}: {exc}{hint}") from exc
    write_table_scores(scores, out)
    for head in model.bundle.heads:
        p = scores.records[f"p_{head}"]
        console.print(
            f"{head}: mean probability {p.mean():.3f}, {int((p >= 0.5).sum()):,} of "
            f"{len(p):,} rows at 50% or more",
            highlight=False,
        )
    console.print(f"wrote {len(scores.records):,} rows to {out} ({model.label})", highlight=False)
