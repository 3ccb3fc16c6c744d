"""The ``radar`` command: one subcommand per stage. It only parses arguments and calls them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    name="radar",
    help="Renewal Radar: calibrated, explained churn and expansion predictions.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

ProgressFn = Callable[[str, int, int], None]


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Set up logging for every subcommand."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )


@contextmanager
def _progress() -> Iterator[ProgressFn]:
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


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Directory to write the dataset to.")],
    accounts: Annotated[int, typer.Option(min=1, help="Number of accounts.")] = 2000,
    months: Annotated[int, typer.Option(min=1, max=120, help="Months of history.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    start: Annotated[str | None, typer.Option(help="First day of the window (YYYY-MM-01).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with process parameters.")] = None,
) -> None:
    """Write a synthetic dataset in the contract's format, with its ground truth."""
    from features.synthetic.dataset import TARGET_RANGES, generate_dataset
    from features.synthetic.process import SyntheticConfig

    try:
        cfg = SyntheticConfig.from_yaml(config, start=start)
    except Exception as exc:  # pydantic / YAML errors name the field at fault
        raise _fail(f"bad synthetic config: {exc}") from exc
    with _progress() as update:
        result = generate_dataset(out, accounts, months, seed, cfg, progress=update)
    s = result.summary
    table = Table(title=f"Synthetic portfolio: {accounts} accounts x {months} months, seed {seed}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for key in (
        "logo_churn_enterprise",
        "logo_churn_mid_market",
        "logo_churn_smb",
        "expanding_share",
        "grr",
        "nrr",
        "oracle_auc_churn_30d",
        "oracle_auc_churn_90d",
        "oracle_auc_expansion_30d",
        "oracle_auc_expansion_90d",
    ):
        value = s.get(key)
        lo_hi = TARGET_RANGES.get(key)
        table.add_row(
            key,
            "n/a" if value is None else f"{value:.3f}",
            f"{lo_hi[0]:.2f}-{lo_hi[1]:.2f}" if lo_hi else "",
        )
    console.print(table)
    console.print(f"wrote {result.path} (ground truth in {result.path / 'ground_truth'})")


@app.command()
def validate(
    data: Annotated[Path, typer.Option(help="Directory with one file per raw table.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a raw data directory against the data contract."""
    from features.contract import validate_dataset

    report = validate_dataset(data)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "ok": report.ok,
                    "findings": [
                        {**f.__dict__, "values": [str(v) for v in f.values]}
                        for f in report.findings
                    ],
                    "missing_optional": report.missing_optional,
                }
            )
        )
    else:
        for f in report.errors:
            err.print(f"[red]{f}[/]", highlight=False, soft_wrap=True)
        for f in report.warnings:
            err.print(f"[yellow]{f}[/]", highlight=False, soft_wrap=True)
        if report.missing_optional:
            err.print("optional tables absent: " + ", ".join(report.missing_optional))
    if not report.ok:
        raise _fail(f"{data}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    console.print(f"{data}: valid ({len(report.warnings)} warning(s))")


@app.command()
def features(
    data: Annotated[Path, typer.Option(help="Directory with one file per raw table.")],
    out: Annotated[Path, typer.Option(help="Directory for snapshots.parquet and manifest.json.")],
    freq: Annotated[str | None, typer.Option(help="Snapshot frequency: monthly or weekly.")] = None,
    start: Annotated[str | None, typer.Option(help="First as-of date (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last as-of date (YYYY-MM-DD).")] = None,
    health: Annotated[
        str | None, typer.Option(help="Health scheme: seed001 (default), seed002 or a YAML file.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML feature configuration.")] = None,
) -> None:
    """Build point-in-time snapshots: features, labels and the rule-based health score."""
    from features.config import FeatureConfig
    from features.contract import ContractError
    from features.pipeline import run_features

    try:
        cfg = FeatureConfig.from_yaml(config, freq=freq, start=start, end=end, health=health)
        cfg.health_scheme()
    except Exception as exc:  # pydantic / YAML / missing scheme: name what is wrong
        raise _fail(f"bad feature configuration: {exc}") from exc
    try:
        with _progress() as update:
            result = run_features(data, out, cfg, progress=update)
    except ContractError as exc:
        raise _fail(str(exc)) from exc
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    m = result.manifest
    console.print(
        f"{m['rows']:,} snapshots of {len(m['features'])} features at "
        f"{len(m['as_of_dates'])} as-of dates ({m['as_of_dates'][0]} .. "
        f"{m['as_of_dates'][-1]}) -> {out}"
    )
    rates = ", ".join(f"{k} {v:.3f}" for k, v in m["label_rates"].items() if v is not None)
    console.print(f"label rates: {rates}")
    for table, names in m["not_computed"].items():
        console.print(f"[yellow]{table} absent: not computed: {', '.join(names)}[/]")


if __name__ == "__main__":  # pragma: no cover
    app()
