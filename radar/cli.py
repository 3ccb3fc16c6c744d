"""The ``radar`` command: one subcommand per stage. It only parses arguments and calls them.

Each command group is a module with a ``register(app)`` function (:mod:`radar.data`,
:mod:`radar.train`, :mod:`radar.score`, :mod:`radar.monitor`, :mod:`radar.reports`,
:mod:`radar.serve`, :mod:`radar.imports`, :mod:`radar.daily`, :mod:`radar.effects`); what they
share (consoles, progress, option blocks) is :mod:`radar.common`.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer
from rich.logging import RichHandler

from radar import (
    check,
    daily,
    data,
    effects,
    errors,
    imports,
    monitor,
    predlog,
    reports,
    score,
    serve,
    train,
)
from radar.common import console, err, log_console  # noqa: F401 (re-exported: command modules use them)
from radar.common import fail as _fail  # noqa: F401 (the same, under its former name)
from radar.common import progress as _progress  # noqa: F401 (the same, under its former name)

app = typer.Typer(
    name="radar",
    help="Renewal Radar: calibrated, explained churn and expansion predictions.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Set up logging for every subcommand."""
    # MLflow's per-file download bars would interleave with ours.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=log_console(), show_path=False)],
    )
    errors.install(err, verbose)  # an uncaught error: one line, exit 1 (no traceback)


data.register(app)
train.register(app)
score.register(app)
monitor.register(app)
reports.register(app)
serve.register(app)
imports.register(app)
daily.register(app)
effects.register(app)
predlog.register(app)
check.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
