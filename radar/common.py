"""What every ``radar`` command shares, defined once.

The consoles, the progress bar, the one-line failure, and the option blocks: data source and
data options, engine, model and tracking URIs.

It imports nothing heavy: ``radar --help`` starts in a blink, and each command imports its stage
when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from training.names import DEFAULT_MODEL_URI

UNBOUNDED_WIDTH = 10_000  # columns: lines are never padded, so only long lines use them
ProgressFn = Callable[[str, int, int], None]


def make_console(stderr: bool = False, file=None) -> Console:
    """A rich console; when the output is not a terminal, wide enough for whole tables.

    Rich assumes 80 columns when writing to a file or pipe and then cuts table headers
    ("churn_90d/mo…"); a log or a redirect should get every column in full instead.
    """
    stream = file or (sys.stderr if stderr else sys.stdout)
    terminal = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, file=file, width=None if terminal else UNBOUNDED_WIDTH)


console = make_console()
err = make_console(stderr=True)
LOG_WIDTH = 100  # columns of log lines written to a file or pipe


def log_console() -> Console:
    """The console of log records (warnings): wrapped at ``LOG_WIDTH`` when not a terminal.

    On :data:`err`'s unbounded width, rich's log layout padded each warning to one
    10,000-column line in a piped or redirected stderr.
    """
    terminal = sys.stderr.isatty()
    return Console(stderr=True, width=None if terminal else LOG_WIDTH)


@contextmanager
def progress() -> Iterator[ProgressFn]:
    """A rich progress bar driven by ``update(description, done, total)`` calls."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done, total=total)

        yield update


def settings_error(exc: Exception) -> str:
    """A configuration error in one line: each setting at fault, its complaint and its value.

    pydantic's own text spans several lines per error (and a link), which broke the one-line
    rule of :func:`fail`.
    """
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']} (got {e['input']!r})"
            for e in exc.errors()
        )
    return " ".join(str(exc).split())


def fail(message: str) -> typer.Exit:
    """Say ``message`` in one line on stderr; the exit (code 1) to raise."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


DataSource = Annotated[
    str,
    typer.Option(
        help="Directory with one file per raw table, or postgresql://USER@HOST:PORT/DB"
        "?schema=NAME (a schema holding the contract's tables).",
    ),
]
Now = Annotated[
    str | None,
    typer.Option(
        "--now", help="The data's reference date (default today): no row may be dated after it."
    ),
]
FutureRows = Annotated[
    str,
    typer.Option(
        "--future-rows", help="Rows dated after --now: error (default) or exclude (a warning)."
    ),
]
Engine = Annotated[
    str,
    typer.Option(
        help="duckdb (in this process) or spark (also reads file://, hdfs://, s3a:// URIs, and "
        "PostgreSQL over JDBC)."
    ),
]
SparkMaster = Annotated[str, typer.Option(help="With --engine spark: master URL (spark://, yarn).")]
ENGINES = ("duckdb", "spark")
CHAMPION_URI = DEFAULT_MODEL_URI
ModelUri = Annotated[
    str,
    typer.Option(
        "--model-uri", help="Registered model: models:/NAME@ALIAS or models:/NAME/VERSION."
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
    ),
]


def check_engine(engine: str) -> None:
    """Refuse an unknown ``--engine`` before any work."""
    if engine not in ENGINES:
        raise fail(f"unknown --engine {engine!r}; use duckdb or spark")


def data_options(now: str | None, future_rows: str) -> dict[str, object]:
    """The data options every command that reads raw data takes (``now``, ``future``), checked."""
    if future_rows not in ("error", "exclude"):
        raise fail(f"--future-rows: use error or exclude, got {future_rows!r}")
    try:
        from features.contract import reference_date

        when = reference_date() if now is None else parse_date(now, "--now")  # default: today
        return {"now": when, "future": future_rows}
    except ValueError as exc:
        raise fail(str(exc)) from exc


def parse_date(text: str, option: str):
    """``text`` as a date (a midnight :class:`pandas.Timestamp`), or a ValueError naming it."""
    import pandas as pd

    try:
        return pd.Timestamp(text).normalize()
    except ValueError as exc:
        raise ValueError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from exc


def as_of_option(text: str):
    """``--as-of``: 'latest' (None: the data's last day) or a date."""
    return None if text == "latest" else parse_date(text, "--as-of")


def dated_inputs(
    as_of: str, now: str | None, future_rows: str, model_uri: str, tracking_uri: str | None
):
    """What a command scoring raw data at a date reads first, each refused in one line.

    Returns (the date or None for the data's last day, the data options, the model).
    """
    try:
        when = as_of_option(as_of)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    return when, data_options(now, future_rows), load_model(model_uri, tracking_uri)


def store_uri(tracking_uri: str | None) -> str:
    """The tracking URI of a read-only command; exits 1 if it names no store."""
    from training.registry import require_store

    try:
        return require_store(tracking_uri)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def share(value: float | None) -> str:
    """A rate as a percent, or "-" where there is none (no ARR: accounts without contracts)."""
    return "-" if value is None else f"{value:.1%}"


def pd_isna(value: object) -> bool:
    """Whether a table cell is empty (None or NaN)."""
    return value is None or (isinstance(value, float) and value != value)


def load_model(model_uri: str, tracking_uri: str | None):
    """The registered model ``model_uri`` (a ``ScoringModel``), or exit 1 saying why not."""
    from mlflow.exceptions import MlflowException  # MLflow: imported when a command needs it

    from training.registry import load_model as load

    try:
        return load(model_uri, tracking_uri)
    except MlflowException as exc:
        raise fail(f"cannot load {model_uri}: {exc.message}") from exc
    except ValueError as exc:  # no such alias (with the way out), a store that is not there
        raise fail(f"cannot load {model_uri}: {exc}") from exc
