"""``radar check``: the consistency checker's counts over a scores file (issue 29)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from radar.common import console, fail


def check(
    scores: Annotated[
        Path, typer.Option(help="The .parquet of `radar score` (its records, as written).")
    ],
    config: Annotated[
        Path | None,
        typer.Option(help="Scoring configuration YAML (the thresholds the scoring used)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write every contradiction found to this CSV (account, rule, detail)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when any record contradicts itself.")
    ] = False,
) -> None:
    """Count, per rule, the records whose labels, plays or sentences contradict their figures."""
    import pandas as pd

    from features.io import atomic_file
    from scoring.consistency import FIGURES, RULES, contradictions
    from scoring.plays import ScoringConfig

    if scores.suffix.lower() != ".parquet":
        raise fail(f"{scores}: --scores reads the .parquet of `radar score`")
    try:
        records = pd.read_parquet(scores)
        cfg = ScoringConfig.from_yaml(config)
    except (OSError, ValueError) as exc:
        raise fail(f"{scores}: cannot read it ({exc})") from exc
    lacking = [c for c in FIGURES if c not in records]
    if lacking:
        raise fail(
            f"{scores}: no column {', '.join(lacking)} (written before the checker's figures): "
            "score again with this version"
        )
    found = contradictions(records, cfg)
    table = Table(title=f"Consistency of {len(records):,} records ({scores.name})")
    table.add_column("rule")
    table.add_column("contradictions", justify="right")
    table.add_column("first example")
    for name in RULES:
        rows = found[found["rule"] == name]
        first = f"{rows['account_id'].iloc[0]}: {rows['detail'].iloc[0]}" if len(rows) else ""
        table.add_row(name, f"{len(rows):,}", first)
    table.add_row("total", f"{len(found):,}", "")
    console.print(table)
    if out is not None:
        with atomic_file(out) as tmp:
            found.to_csv(tmp, index=False)
    if strict and len(found):
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``radar check`` to the CLI."""
    app.command(name="check")(check)
