"""``radar monitor``: realised vs predicted, drift and a verdict."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from radar.common import (
    CHAMPION_URI,
    FutureRows,
    ModelUri,
    Now,
    TrackingUri,
    console,
    data_options,
    fail,
    load_model,
    settings_error,
)


def monitor_cmd(
    data: Annotated[
        str,
        typer.Option(
            help="Raw data (what happened since): a directory with one file per raw table, or "
            "postgresql://USER@HOST:PORT/DB?schema=NAME."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Directory for monitor.json and monitor.html.")],
    log: Annotated[
        Path, typer.Option("--log", help="Prediction log written by `radar score`.")
    ] = Path("predictions"),
    model_uri: ModelUri = CHAMPION_URI,
    config: Annotated[Path | None, typer.Option(help="YAML with monitor thresholds.")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment for the report.")] = (
        "renewal-radar"
    ),
    tracking_uri: TrackingUri = None,
    now: Now = None,
    future_rows: FutureRows = "error",
) -> None:
    """Realised vs predicted, forecast error and drift; a verdict: ok, watch or retrain."""
    from features.contract import ContractError
    from monitoring.config import MonitorConfig
    from monitoring.predictions import read
    from monitoring.report import log_report, monitor, reference_for
    from reports.monitor_report import write_report

    try:
        cfg = MonitorConfig.from_yaml(config)
    except Exception as exc:  # pydantic / YAML errors name the setting at fault
        raise fail(f"bad monitor configuration: {settings_error(exc)}") from exc
    options = data_options(now, future_rows)
    model = load_model(model_uri, tracking_uri)
    started = time.time()  # the MLflow run's start: its duration is the job's
    try:
        predictions = read(log)
        reference = reference_for(model)
        report = monitor(data, predictions, reference, model, cfg, **options)
        paths = write_report(report, out)
        run_id = log_report(report, paths, experiment, started)
    except (ContractError, ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    colour = {"ok": "green", "watch": "yellow", "retrain": "red"}[report["verdict"]]
    console.print(f"verdict: [bold {colour}]{report['verdict']}[/]")
    # escaped: "[watch]" read as Rich markup printed nothing
    for r in report["reasons"]:
        console.print(escape(f"- [{r['level']}] {r['text']}"), highlight=False)
    for r in report["left_out"]:  # above their own line, not counted: said with why
        console.print(escape(f"- [left out] {r['text']}"), highlight=False, soft_wrap=True)
    table = Table(title="Realised vs predicted, latest matured as-of dates")
    for col in ("head", "window", "predictions", "predicted", "observed", "ratio", "z"):
        table.add_column(col, justify="left" if col in ("head", "window") else "right")
    for head, r in report["realised_vs_predicted"].items():
        c = r.get("recent")
        if not c:
            table.add_row(head, "not matured", "", "", "", "", "")
            continue
        table.add_row(
            head,
            f"{c['from']}..{c['to']}",
            f"{c['n']:,}",
            f"{c['predicted_events']:.0f}",
            f"{c['observed_events']:.0f}",
            "-" if c["ratio"] is None else f"{c['ratio']:.2f}",
            "-" if c["z"] is None else f"{c['z']:+.1f}",
        )
    console.print(table)
    console.print(f"wrote {', '.join(str(p) for p in paths)}; MLflow run {run_id}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(name="monitor")(monitor_cmd)
