"""`radar import`: vendor exports (Stripe, Salesforce, Segment, ...) into a contract folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radar.common import console, err, fail


def import_cmd(
    out: Annotated[Path, typer.Option("--out", help="The contract folder to write (or add to).")],
    preset: Annotated[
        list[str] | None,
        typer.Option(
            "--preset",
            help="A shipped preset (event_log, segment, mixpanel, amplitude, stripe, chargebee, "
            "salesforce, hubspot, zendesk, freshdesk); repeat to merge several sources.",
        ),
    ] = None,
    mapping: Annotated[
        list[Path] | None,
        typer.Option("--mapping", help="Your own mapping YAML (the presets' format); repeatable."),
    ] = None,
    source: Annotated[
        list[Path] | None,
        typer.Option(
            "--from", help="Folder of export files: one for all, or one per preset/mapping."
        ),
    ] = None,
    rates: Annotated[
        Path | None,
        typer.Option(
            help="Currency rate table YAML (base: EUR, rates: {USD: 0.92}); amounts in other "
            "currencies are refused without it."
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="The account key the sources join by (crm_id, domain, stripe_customer, ...); "
            "default: the first preset's."
        ),
    ] = None,
) -> None:
    """Import vendor exports into a contract folder: prints what each table got and from where."""
    from features.imports.engine import ImportFailedError, run_import
    from features.imports.mapping import MappingError, load_mapping, load_preset

    try:
        mappings = [load_preset(p) for p in preset or []] + [load_mapping(m) for m in mapping or []]
    except MappingError as exc:
        raise fail(str(exc)) from exc
    if not mappings:
        raise fail("give at least one --preset NAME or --mapping FILE")
    if not source:
        raise fail("give --from FOLDER (the export files)")
    try:
        report = run_import(mappings, list(source), out, rates=rates, key=key)
    except ImportFailedError as exc:
        raise fail(f"{exc}; nothing written") from exc
    console.print(f"[bold]{report.out}[/]: accounts joined by key {report.key}", highlight=False)
    for s in report.sources:
        target = "usage + weekly_active_users" if s.table == "events" else s.table
        line = (
            f"  {target} <- {s.preset} {s.source} ({', '.join(s.files)}): "
            f"{s.rows_in:,} rows in, {s.rows_out:,} out"
        )
        if s.dropped:
            line += f", {s.dropped:,} dropped by the preset"
        console.print(line, highlight=False)
        if s.unmatched:
            err.print(
                f"  [yellow]unmatched:[/] {s.unmatched:,} {s.source} row(s) name no known account "
                f"by {report.key} (e.g. {', '.join(s.unmatched_examples)}); written nowhere",
                highlight=False,
            )
    console.print(
        "tables: "
        + ", ".join(
            f"{t} {n:,}" + (f" ({report.kept[t]:,} before)" if report.kept.get(t) else "")
            for t, n in sorted(report.rows.items())
        ),
        highlight=False,
    )
    for note in report.notes:
        console.print(f"  note: {note}", highlight=False)
    for line in report.absent:
        console.print(f"  absent: {line}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `radar import` to the CLI."""
    app.command(name="import")(import_cmd)
