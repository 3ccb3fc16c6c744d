"""``radar compact-log``: merge a prediction log's many small files, one per as-of date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radar.common import console, fail


def compact_log_command(
    log: Annotated[
        Path, typer.Option(help="The prediction log folder (`--log`, `--prediction-log`).")
    ],
) -> None:
    """Merge each as-of date's files of the prediction log into one (rows kept, reads faster)."""
    from monitoring.predictions import compact_log

    if not log.is_dir():
        raise fail(f"--log {log}: no such folder")
    done = compact_log(log)
    console.print(f"compacted {done} as-of date(s) of {log}")


def register(app: typer.Typer) -> None:
    """Add ``compact-log`` to the ``radar`` command."""
    app.command("compact-log")(compact_log_command)
