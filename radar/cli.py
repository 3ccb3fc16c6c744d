"""The ``radar`` command: one subcommand per stage. It only parses arguments and calls them."""

from __future__ import annotations

import json
import logging
import os
import sys
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


def _console(stderr: bool = False, file=None) -> Console:
    """A rich console; when the output is not a terminal, wide enough for whole tables.

    Rich assumes 80 columns when writing to a file or pipe and then cuts table headers
    ("churn_90d/mo…"); a log or a redirect should get every column in full instead.
    """
    stream = file or (sys.stderr if stderr else sys.stdout)
    terminal = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, file=file, width=None if terminal else UNBOUNDED_WIDTH)


UNBOUNDED_WIDTH = 10_000  # columns: lines are never padded, so only long lines use them
console = _console()
err = _console(stderr=True)

ProgressFn = Callable[[str, int, int], None]


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
        handlers=[RichHandler(console=err, show_path=False)],
    )
    from radar import errors  # an uncaught error: one line, exit 1 (no traceback)

    errors.install(err, verbose)


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


def _data_options(now: str | None, future_rows: str) -> dict[str, object]:
    """``load_dataset``'s reference date and future-row mode, checked."""
    if future_rows not in ("error", "exclude"):
        raise _fail(f"--future-rows: use error or exclude, got {future_rows!r}")
    try:
        from features.contract import reference_date

        when = reference_date() if now is None else _date(now, "--now")  # default: today
        return {"now": when, "future": future_rows}
    except ValueError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def validate(
    data: DataSource,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    now: Now = None,
    future_rows: FutureRows = "error",
    engine: Annotated[
        str,
        typer.Option(
            help="Where the large logs are checked: duckdb (default) or spark (also reads "
            "file://, hdfs://, s3a:// URIs, and PostgreSQL over JDBC)."
        ),
    ] = "duckdb",
    spark_master: Annotated[
        str, typer.Option(help="With --engine spark: master URL (spark://..., yarn).")
    ] = "local[2]",
) -> None:
    """Check raw data (a directory, a URI or a PostgreSQL schema) against the data contract."""
    from features.sources import describe, validate_data

    if engine not in ("duckdb", "spark"):
        raise _fail(f"unknown --engine {engine!r}; use duckdb or spark")
    try:
        report = validate_data(
            data, engine=engine, spark_master=spark_master, **_data_options(now, future_rows)
        )
    except ValueError as exc:  # EngineError (Spark cannot start), a URI without Spark
        raise _fail(str(exc)) from exc
    where = describe(data)
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
        if "subscriptions" in report.missing_optional:
            err.print(
                "no contracts: `radar features` then needs --activity-churn-days N "
                "(churn = N days without any activity)"
            )
    if not report.ok:
        raise _fail(f"{where}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    console.print(f"{where}: valid ({len(report.warnings)} warning(s))")


@app.command()
def features(
    data: DataSource,
    out: Annotated[Path, typer.Option(help="Directory for snapshots.parquet and manifest.json.")],
    freq: Annotated[str | None, typer.Option(help="Snapshot frequency: monthly or weekly.")] = None,
    start: Annotated[str | None, typer.Option(help="First as-of date (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last as-of date (YYYY-MM-DD).")] = None,
    health: Annotated[
        str | None, typer.Option(help="Health scheme: seed001 (default), seed002 or a YAML file.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML feature configuration.")] = None,
    engine: Annotated[
        str | None, typer.Option(help="Where features are computed: duckdb (default) or spark.")
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option(help="With --engine spark: master URL (default local[2]; spark://..., yarn)."),
    ] = None,
    activity_churn_days: Annotated[
        int | None,
        typer.Option(
            help="Accounts without contract rows: churn = this many days without any activity."
        ),
    ] = None,
    product_feature_columns: Annotated[
        int | None,
        typer.Option(
            help="Usage columns per product feature for the N most used features "
            "(default 10; 0: none)."
        ),
    ] = None,
    now: Now = None,
    future_rows: FutureRows = "error",
) -> None:
    """Build point-in-time snapshots: features, labels and the rule-based health score."""
    from features.config import FeatureConfig
    from features.contract import ContractError
    from features.io import check_writable
    from features.pipeline import run_features

    try:
        cfg = FeatureConfig.from_yaml(
            config,
            freq=freq,
            start=start,
            end=end,
            health=health,
            engine=engine,
            spark_master=spark_master,
            activity_churn_days=activity_churn_days,
            product_feature_columns=product_feature_columns,
        )
        cfg.health_scheme()
    except Exception as exc:  # pydantic / YAML / missing scheme: name what is wrong
        raise _fail(f"bad feature configuration: {exc}") from exc
    try:
        check_writable(out, folder=True)  # before any work
        with _progress() as update:
            result = run_features(
                data, out, cfg, progress=update, **_data_options(now, future_rows)
            )
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
    if m.get("product_features"):
        console.print(
            f"usage columns for {len(m['product_features'])} product features: "
            f"{', '.join(m['product_features'])}",
            highlight=False,
        )
    rates = ", ".join(f"{k} {v:.3f}" for k, v in m["label_rates"].items() if v is not None)
    console.print(f"label rates: {rates}")
    if m.get("activity_labels"):
        console.print(_activity_line(m["activity_labels"]), highlight=False)
    for name, why in m.get("constant_labels", {}).items():
        console.print(
            f"[yellow]label {name} is constant: {why}; `radar train` skips its head[/]",
            highlight=False,
        )
    for table, names in m["not_computed"].items():
        console.print(f"[yellow]{table} absent: not computed: {', '.join(names)}[/]")


def _activity_line(a: dict) -> str:
    """What ``radar features`` says about labels from activity."""
    return (
        f"labels from activity for {a['accounts']:,} accounts without contract rows "
        f"({a['snapshots']:,} snapshots): churn = {a['churn_after_days']} days without any "
        f"activity, expansion = spend (else activity) up more than {a['expansion_rise']:.0%}"
    )


# The CLI imports nothing heavy at start, so it keeps its own copy of
# training.registry.DEFAULT_MODEL_URI (tests/serving/test_cli.py checks they agree).
CHAMPION_URI = "models:/renewal-radar@champion"
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


@app.command()
def train(
    features: Annotated[
        Path | None, typer.Option(help="Output directory of `radar features`.")
    ] = None,
    table: Annotated[
        Path | None, typer.Option(help="Your own feature table (Parquet or CSV), instead.")
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="With --table: the label column (0/1, true/false, yes/no).")
    ] = None,
    time: Annotated[
        str | None,
        typer.Option(help="With --table: the as-of date column (none: a random split)."),
    ] = None,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="With --table: label horizon in days (gap).")
    ] = None,
    entity: Annotated[str | None, typer.Option(help="With --table: the account id column.")] = None,
    segment: Annotated[
        str | None, typer.Option(help="With --table: column to break metrics down by.")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="With --table: a column that is not a feature.")
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML training configuration.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    max_trees: Annotated[int | None, typer.Option(min=1, help="Most trees per head.")] = None,
    calibration: Annotated[str | None, typer.Option(help="isotonic or platt.")] = None,
    promote_: Annotated[
        bool, typer.Option("--promote", help="Make it the champion if it is at least as good.")
    ] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Train, calibrate and evaluate the churn and expansion heads; log and register them."""
    from training.config import TrainConfig
    from training.train import from_snapshots, from_table

    if (features is None) == (table is None):
        raise _fail("give either --features DIR or --table FILE (with --label, and --time if any)")
    try:
        cfg = TrainConfig.from_yaml(
            config,
            experiment=experiment,
            seed=seed,
            calibration=calibration,
            **{"lightgbm.max_trees": max_trees},
        )
    except Exception as exc:  # pydantic / YAML errors name the setting at fault
        raise _fail(f"bad training configuration: {exc}") from exc
    try:
        if table is not None:
            if not label:
                raise _fail("--table needs --label COLUMN (and --time COLUMN when it has dates)")
            data = from_table(
                table,
                label,
                time,
                horizon=horizon,
                entity=entity,
                segment=segment,
                exclude=tuple(exclude or ()),
            )
            model_name = f"{cfg.registered_model}-{label}"
        else:
            data = from_snapshots(features, cfg)
            model_name = cfg.registered_model
        _train_and_log(data, cfg, model_name, tracking_uri, promote_)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc


def _print_model_choice(metadata: dict) -> None:
    """Each head's model and why; whether the served heads were refitted."""
    for head, c in metadata.get("model_choice", {}).items():
        console.print(f"{head}: {c['chosen']} ({c['reason']})", highlight=False, soft_wrap=True)
    for head, r in (metadata.get("refit") or {}).items():
        console.print(
            f"{head}: served refitted on {r['fit_rows']:,} rows to {r.get('fit_end', '')}, "
            f"recalibrated on {r['calibration_rows']:,} rows "
            f"{r.get('calibration_start', '')}..{r.get('calibration_end', '')} "
            "(figures above: the honest fit)",
            highlight=False,
            soft_wrap=True,
        )


def _train_and_log(data, cfg, model_name: str, tracking_uri: str | None, promote_: bool) -> None:
    from training.registry import train_and_register

    for note in data.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    with _progress() as update:
        done = train_and_register(
            data, cfg, model_name=model_name, uri=tracking_uri, promote=promote_, progress=update
        )
    result, tracked = done.result, done.tracked
    _print_split(result)
    table = Table(title="Test window, all segments")
    for col in (
        "head",
        "predictor",
        "ROC-AUC",
        "PR-AUC",
        "log loss",
        "Brier",
        "ECE",
        "top-10% lift",
    ):
        left = col in ("head", "predictor")
        table.add_column(col, justify="left" if left else "right", no_wrap=left)
    for r in result.evaluation:
        if r["segment"] != "all":
            continue
        cells = [r[k] for k in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")]
        table.add_row(r["head"], r["predictor"], *("-" if v is None else f"{v:.3f}" for v in cells))
    console.print(table)
    _print_model_choice(result.bundle.metadata)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    console.print(
        f"MLflow run {tracked.run_id} in {tracked.tracking_uri}; registered "
        f"{tracked.model_name} version {tracked.version} as @challenger "
        f"(heads: {', '.join(result.bundle.heads)})"
    )
    if done.promotion is not None:
        _print_promotion(done.promotion, cfg.promotion)


def _print_split(result) -> None:
    """Each head's split, then rows, positives and label rate per part and head."""
    for head, s in result.splits.items():
        rows = result.part_rows[head]
        if s.as_dict().get("kind") == "random":
            console.print(
                f"{head}: {s.describe()}; train {rows['train']:,}, validation "
                f"{rows['validation']:,}, test {rows['test']:,} rows"
            )
            continue
        console.print(
            f"{head}: train {s.train_start.date()}..{s.train_end.date()} ({rows['train']:,}), "
            f"validation {s.validation_start.date()}..{s.validation_end.date()} "
            f"({rows['validation']:,}), test {s.test_start.date()}..{s.test_end.date()} "
            f"({rows['test']:,}); gap {s.gap_days} days"
        )
    table = Table(title="Labels per part")
    for col in ("head", "part", "rows", "positives", "label rate"):
        table.add_column(col, justify="left" if col in ("head", "part") else "right")
    for r in result.label_stats:
        table.add_row(
            r["head"], r["part"], f"{r['rows']:,}", f"{r['positives']:,}", f"{r['rate']:.3f}"
        )
    console.print(table)


def _promote(model_name: str, version: str | None, settings) -> None:
    from training.promotion import promote as decide
    from training.tracking import rows_of_test_window

    _print_promotion(
        decide(model_name, rows_of_test_window, version=version, settings=settings), settings
    )


def _print_promotion(result, settings) -> None:
    if result.comparison is not None and not result.comparison.empty:
        table = Table(
            title=f"Same test rows: challenger - champion, {settings.confidence:.0%} paired "
            "bootstrap intervals"
        )
        for col in ("head", "metric", "challenger", "champion", "difference", "interval"):
            table.add_column(col, justify="left" if col in ("head", "metric") else "right")
        table.add_column("allowed", justify="right")
        table.add_column("")
        for r in result.comparison.itertuples(index=False):
            if r.missing:
                table.add_row(r.head, "-", "", "", "", "", "", "[red]no champion head[/]")
                continue
            worse = "-" if r.metric == "roc_auc" else "+"
            table.add_row(
                r.head,
                "ROC-AUC" if r.metric == "roc_auc" else "log loss",
                f"{r.challenger:.4f}",
                f"{r.champion:.4f}",
                f"{r.difference:+.4f}",
                f"{r.low:+.4f} .. {r.high:+.4f}",
                f"{worse}{r.margin:.4f}",
                "[green]ok[/]" if r.ok else "[red]worse[/]",
            )
        console.print(table)
    console.print(("[green]" if result.promoted else "[yellow]") + result.reason)


@app.command()
def promote(
    model: Annotated[str, typer.Option(help="Registered model name.")] = "renewal-radar",
    version: Annotated[
        str | None, typer.Option(help="Version to promote (default: @challenger).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML training configuration (its `promotion` settings).")
    ] = None,
    roc_auc_margin: Annotated[
        float | None, typer.Option(min=0.0, help="Allowed ROC-AUC shortfall (default 0.01).")
    ] = None,
    log_loss_margin: Annotated[
        float | None,
        typer.Option(min=0.0, help="Allowed log loss excess, share of the champion's (0.02)."),
    ] = None,
    resamples: Annotated[int | None, typer.Option(min=50, help="Bootstrap resamples.")] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Move @champion to the challenger if it is non-inferior on every head (paired bootstrap)."""
    from mlflow.exceptions import MlflowException

    from training.config import TrainConfig
    from training.registry import tracking_uri as use

    try:
        settings = TrainConfig.from_yaml(
            config,
            **{
                "promotion.roc_auc_margin": roc_auc_margin,
                "promotion.log_loss_margin": log_loss_margin,
                "promotion.resamples": resamples,
            },
        ).promotion
    except Exception as exc:  # pydantic / YAML errors name the setting at fault
        raise _fail(f"bad promotion settings: {exc}") from exc
    try:
        use(_store(tracking_uri))
        _promote(model, version, settings)
    except (MlflowException, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc


@app.command(name="backtest")
def backtest_cmd(
    features: Annotated[Path, typer.Option(help="Output directory of `radar features`.")],
    origins: Annotated[
        int | None, typer.Option(min=1, help="Monthly origins to test at (default 6).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML training configuration.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    max_trees: Annotated[int | None, typer.Option(min=1, help="Most trees per head.")] = None,
    calibration: Annotated[str | None, typer.Option(help="isotonic or platt.")] = None,
    resamples: Annotated[
        int | None, typer.Option(min=50, help="Bootstrap resamples per interval (200).")
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name.")] = None,
    refit: Annotated[
        bool | None,
        typer.Option(
            "--refit/--no-refit",
            help="Also test, at each origin, what was served then with and without refit.",
        ),
    ] = None,
    candidates: Annotated[
        bool | None,
        typer.Option(
            "--candidates/--no-candidates",
            help="Also test LightGBM, logistic and their average; choose each head's model.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the table to this CSV.")] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Rolling-origin evaluation: train as of each month, test there, with 95% intervals."""
    from training.backtest import backtest, log_backtest, write_table
    from training.config import TrainConfig
    from training.train import from_snapshots

    try:
        cfg = TrainConfig.from_yaml(
            config,
            experiment=experiment,
            seed=seed,
            calibration=calibration,
            **{
                "lightgbm.max_trees": max_trees,
                "backtest.origins": origins,
                "backtest.resamples": resamples,
                "backtest.refit": refit,
                "backtest.candidates": candidates,
            },
        )
    except Exception as exc:  # pydantic / YAML errors name the setting at fault
        raise _fail(f"bad training configuration: {exc}") from exc
    try:
        data = from_snapshots(features, cfg)
        with _progress() as update:
            result = backtest(data, cfg, progress=update)
            run_id = log_backtest(result, data, tracking_uri)
        written = write_table(result, out) if out is not None else []
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    _print_backtest(result)
    if result.refit is not None:
        _print_refit(result)
    if result.config.backtest.candidates:
        _print_model_choices(result)
    console.print(f"MLflow run {run_id} ({len(result.origins)} origins)")
    for path in written:
        console.print(f"wrote {path}")


def _print_backtest(result) -> None:
    level = f"{result.config.backtest.confidence:.0%}"
    t = result.table
    table = Table(title=f"Backtest: each origin's test snapshots, model with {level} intervals")
    names = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "log_loss": "log loss", "ece": "ECE"}
    names["lift_top_decile"] = "top-10% lift"
    for col in ("head", "origin", "rows", "positives", *names.values()):
        table.add_column(col, justify="left" if col in ("head", "origin") else "right")
    others = [p for p in dict.fromkeys(t["predictor"]) if p != "model"]
    for p in others:
        table.add_column(f"{p} ROC-AUC", justify="right")
    for (head, origin), g in t.groupby(["head", "origin"], sort=False):
        cell = {(r.predictor, r.metric): r for r in g.itertuples(index=False)}
        first = cell[("model", "roc_auc")]
        row = [head, str(origin.date()), f"{first.n:,.0f}", f"{first.positives:,.0f}"]
        for m in names:
            r = cell[("model", m)]
            row.append(f"{r.value:.3f} ({r.low:.3f}-{r.high:.3f})")
        row += [f"{cell[(p, 'roc_auc')].value:.3f}" for p in others]
        table.add_row(*row)
    console.print(table)


def _print_model_choices(result) -> None:
    """Each head's model by the backtest, and the YAML that makes `radar train` serve it."""
    from training.backtest import choose_models

    choices = choose_models(result)
    for head, c in choices.items():
        console.print(f"{head}: {c['chosen']} ({c['reason']})", highlight=False, soft_wrap=True)
    if choices:
        console.print("To train with these, add to the training configuration:")
        console.print(
            "model_per_head:\n"
            + "".join(f"  {head}: {c['chosen']}\n" for head, c in choices.items()),
            highlight=False,
            soft_wrap=True,
            end="",
        )


def _print_refit(result) -> None:
    """Honest vs refit, as served at each origin, and each head's verdict."""
    from training.backtest import refit_verdicts

    level = f"{result.config.backtest.confidence:.0%}"
    table = Table(
        title=f"Served at each origin: refit minus honest on its test snapshots ({level} paired)"
    )
    for col in ("head", "origin", "rows", "observed", "mean honest", "mean refit"):
        table.add_column(col, justify="left" if col in ("head", "origin") else "right")
    table.add_column("log loss honest / refit (diff)", justify="right")
    table.add_column("ROC-AUC honest / refit (diff)", justify="right")
    for (head, origin), g in result.refit.groupby(["head", "origin"], sort=False):
        cell = {r.metric: r for r in g.itertuples(index=False)}
        first = next(iter(cell.values()))
        row = [head, str(origin.date()), f"{first.n:,.0f}", f"{first.observed_rate:.3f}"]
        row += [f"{first.honest_mean:.3f}", f"{first.refit_mean:.3f}"]
        for m in ("log_loss", "roc_auc"):
            r = cell[m]
            row.append(
                f"{r.honest:.4f} / {r.refit:.4f} ({r.difference:+.4f}, {r.low:+.4f}..{r.high:+.4f})"
            )
        table.add_row(*row)
    console.print(table)
    for note in result.refit_notes:
        console.print(f"not compared: {note}", highlight=False, soft_wrap=True)
    for head, v in refit_verdicts(result.refit).items():
        said = {
            "refit": "serve refitted heads (refit: true)",
            "honest": "serve the honest fit (refit: false)",
            "either": "no evidence either way",
        }[v["verdict"]]
        ratio = v["mean_predicted_over_observed"]
        console.print(
            f"{head}: {said}: refit's log loss better at {v['log_loss_better']} and worse at "
            f"{v['log_loss_worse']} of {v['origins']} origins (mean difference "
            f"{v['log_loss_difference_mean']:+.4f}, ROC-AUC {v['roc_auc_difference_mean']:+.4f});"
            f" mean predicted / observed {ratio['honest']:.2f} honest, {ratio['refit']:.2f} refit",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def compare(
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "renewal-radar",
    last: Annotated[int, typer.Option(min=1, help="How many recent runs.")] = 5,
    model_name: Annotated[
        str | None,
        typer.Option(help="Registered model whose champion is the reference (default: as named)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Print recent training runs side by side, each figure's delta against the champion."""
    from training.registry import tracking_uri as use
    from training.tracking import compare_runs

    use(_store(tracking_uri))
    comparison = compare_runs(experiment, last, model_name)
    if comparison.empty:
        raise _fail(f"no training runs in experiment {experiment!r}")
    if json_out:
        typer.echo(json.dumps(comparison.as_dict(), indent=2))
        return
    table = comparison.table()
    out = Table(
        title=f"{experiment}: {table.shape[1]} training run(s); in brackets, minus the champion"
    )
    out.add_column("")
    for run in table.columns:
        out.add_column(run, justify="right")
    for name, row in table.iterrows():
        out.add_row(str(name), *("" if pd_isna(v) else str(v) for v in row))
    console.print(out)


@app.command()
def score(
    data: Annotated[
        str,
        typer.Option(
            help="Directory with one file per raw table (with --engine spark also a "
            "postgresql://...?schema=NAME URL)."
        ),
    ],
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of", help="Score accounts active at this date (or 'latest': the data's last day)."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Output file: .parquet, .csv or .jsonl (with --engine spark: a directory)."
        ),
    ],
    model_uri: ModelUri = CHAMPION_URI,
    config: Annotated[
        Path | None, typer.Option(help="YAML with segment, play and driver settings.")
    ] = None,
    log: Annotated[
        Path, typer.Option("--log", help="Prediction log to append to (for `radar monitor`).")
    ] = Path("predictions"),
    tracking_uri: TrackingUri = None,
    engine: Annotated[
        str,
        typer.Option(
            help="duckdb (in this process) or spark: features and scoring on Spark, "
            "Parquet partitioned by segment."
        ),
    ] = "duckdb",
    spark_master: Annotated[
        str, typer.Option(help="With --engine spark: master URL.")
    ] = "local[2]",
    now: Now = None,
    future_rows: FutureRows = "error",
) -> None:
    """Score every account active at a date: probabilities, drivers, segment, play."""
    from mlflow.exceptions import MlflowException

    from features.contract import ContractError
    from features.io import check_writable
    from serving.batch import score_dataset
    from serving.plays import ScoringConfig
    from serving.scoring import write_scores
    from training.registry import load_model

    if engine not in ("duckdb", "spark"):
        raise _fail(f"unknown --engine {engine!r}; use duckdb or spark")
    if engine == "duckdb" and out.suffix.lower() not in (".parquet", ".csv", ".jsonl", ".json"):
        raise _fail(f"{out}: unknown output format; use .parquet, .csv or .jsonl")
    try:
        if engine == "duckdb":  # before any work: an unwritable --out used to fail at the end
            check_writable(out)
        cfg = ScoringConfig.from_yaml(config)
        when = None if as_of == "latest" else _date(as_of, "--as-of")
        data_options = _data_options(now, future_rows)  # future-dated rows, as validate
        model = load_model(model_uri, tracking_uri)
    except MlflowException as exc:
        raise _fail(f"cannot load {model_uri}: {exc.message}") from exc
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if engine == "spark":
        _score_on_spark(data, when, out, model, cfg, spark_master, data_options)
        return
    try:
        with _progress() as update:
            scores = score_dataset(data, when, model, cfg, progress=update, **data_options)
            write_scores(scores, out)
    except (ContractError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _print_summary(scores)
    console.print(f"wrote {len(scores.records):,} accounts to {out} ({scores.metadata['model']})")
    _log_predictions(scores, log)


def _log_predictions(scores, log: Path) -> None:
    """Append the run's probabilities to the prediction log (``radar monitor`` reads it)."""
    from monitoring.predictions import append

    try:
        append(scores.records, scores.metadata, log)
    except OSError as exc:
        raise _fail(f"scores written, but the prediction log {log} could not be: {exc}") from exc
    console.print(f"logged the predictions to {log}/")


@app.command(name="monitor")
def monitor_cmd(
    data: Annotated[Path, typer.Option(help="Raw data directory (what happened since).")],
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
) -> None:
    """Realised vs predicted, forecast accuracy and drift; a verdict: ok, watch or retrain."""
    from mlflow.exceptions import MlflowException

    from features.contract import ContractError
    from monitoring.config import MonitorConfig
    from monitoring.predictions import read
    from monitoring.report import log_report, monitor, reference_for, write_report
    from training.registry import load_model

    try:
        cfg = MonitorConfig.from_yaml(config)
    except Exception as exc:  # pydantic / YAML errors name the setting at fault
        raise _fail(f"bad monitor configuration: {exc}") from exc
    try:
        model = load_model(model_uri, tracking_uri)
    except MlflowException as exc:
        raise _fail(f"cannot load {model_uri}: {exc.message}") from exc
    try:
        predictions = read(log)
        reference = reference_for(model)
        report = monitor(data, predictions, reference, model.bundle.spec.names, cfg)
        paths = write_report(report, out)
        run_id = log_report(report, paths, experiment)
    except (ContractError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    colour = {"ok": "green", "watch": "yellow", "retrain": "red"}[report["verdict"]]
    console.print(f"verdict: [bold {colour}]{report['verdict']}[/]")
    for r in report["reasons"]:
        console.print(f"- [{r['level']}] {r['text']}", highlight=False)
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


def _score_on_spark(data, when, out, model, cfg, master, data_options) -> None:
    """``radar score --engine spark``: features and scoring on Spark, Parquet by segment."""
    from features.config import FeatureConfig
    from features.contract import ContractError
    from serving.spark_job import score_dataset_on_spark

    feature_cfg = FeatureConfig(engine="spark", spark_master=master)
    try:
        with _progress() as update:
            got = score_dataset_on_spark(
                data, when, model, out, cfg, feature_cfg, update, **data_options
            )
    except (ContractError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _print_summary(got)
    console.print(
        f"wrote {got.rows:,} accounts to {got.path} (Parquet by segment; {model.label}; "
        f"{got.rescored:,} in the top decile of churn risk, from p90 {got.risk_cut:.3f})"
    )


@app.command(name="explain")
def explain_cmd(
    features: Annotated[Path, typer.Option(help="Output directory of `radar features`.")],
    global_: Annotated[
        bool, typer.Option("--global", help="Average drivers per head, with SHAP summaries.")
    ] = False,
    account: Annotated[str | None, typer.Option(help="One account's drivers instead.")] = None,
    out: Annotated[
        Path, typer.Option(help="With --global: directory for the PNGs and the table.")
    ] = Path("build/explain"),
    sample: Annotated[int, typer.Option(min=10, help="With --global: accounts to average.")] = 5000,
    model_uri: ModelUri = CHAMPION_URI,
    tracking_uri: TrackingUri = None,
) -> None:
    """Explain the model: global drivers per head (--global), or one account (--account)."""
    from mlflow.exceptions import MlflowException

    from features.store import SnapshotStore
    from serving.scoring import score_store_rows
    from training.registry import load_model

    if global_ == (account is not None):
        raise _fail("give either --global or --account ID")
    try:
        model = load_model(model_uri, tracking_uri)
        store = SnapshotStore.open(features)
        frame = store.snapshots()
    except MlflowException as exc:
        raise _fail(f"cannot load {model_uri}: {exc.message}") from exc
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    latest = frame[frame["as_of"] == frame["as_of"].max()]
    if account is not None:
        if not (latest["account_id"] == account).any():
            raise _fail(f"account {account!r} has no snapshot at {latest['as_of'].max().date()}")
        records = score_store_rows(store, latest, model).records
        _print_account(records[records["account_id"] == account].iloc[0])
        return
    from training.explain import write_global

    written = write_global(model.bundle, latest, out, sample=sample)
    table = Table(
        title=f"Top drivers per head ({model.label}, {min(sample, len(latest)):,} accounts)"
    )
    for col in ("head", "feature", "avg |effect| (points)", "avg effect", "raises for"):
        table.add_column(col, justify="left" if col in ("head", "feature") else "right")
    for head, g in written.table.groupby("head", sort=False):
        for r in g.head(5).itertuples():
            table.add_row(
                head,
                r.feature,
                f"{r.mean_abs_points:.2f}",
                f"{r.mean_points:+.2f}",
                f"{r.raises_share:.0%}",
            )
    console.print(table)
    console.print(f"wrote {', '.join(str(p) for p in written.files)}")


def _print_account(r) -> None:
    from features.words import signed_points

    console.print(
        f"[bold]{r['account_id']}[/] at {r['as_of'].date()}: health {r['health_score']:.0f} "
        f"({r['health_band']}), {r['value_growth_segment']}, {r['customer_type']}, "
        f"renewal {r['renewal_stage']} ({r['days_to_renewal']:.0f} days)"
    )
    for label in (c.removeprefix("p_") for c in r.index if c.startswith("p_")):
        console.print(
            f"\n[bold]{label}[/]: {r[f'p_{label}']:.1%} (typical account "
            f"{r[f'baseline_{label}']:.1%})"
        )
        for reason in r[f"reasons_{label}"]:
            if abs(reason["effect"]) < 0.005:
                continue
            console.print(f"  {signed_points(reason['effect']):>12}  {reason['title']}")
            for e in reason["evidence"]:
                console.print(f"                {e['sentence']}", highlight=False)
        console.print(f"  when, not why: {r[f'timing_{label}']['sentence']}", highlight=False)
        console.print(f"  {r[f'context_{label}']['sentence']}", highlight=False)
    if r["disagreement"]:
        console.print(f"\n[yellow]{r['disagreement']}[/]")
    console.print(f"\nplay: [bold]{r['play_title']}[/]. {r['play_reason']}")
    if r["missing_inputs"]:
        console.print(f"no data for: {', '.join(r['missing_inputs'])}")


@app.command(name="brief")
def brief_cmd(
    data: Annotated[Path, typer.Option(help="Directory with one file per raw table.")],
    out: Annotated[
        Path,
        typer.Option(
            help="One account: a .html, .md or .pdf file. Several or --all: a folder "
            "(one ID.FORMAT file each)."
        ),
    ],
    account: Annotated[
        list[str] | None, typer.Option(help="Account id (repeat for several).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every account active at the date.")] = False,
    as_of: Annotated[
        str, typer.Option("--as-of", help="Brief at this date (or 'latest': the data's last day).")
    ] = "latest",
    fmt: Annotated[str, typer.Option("--format", help="With a folder: html, md or pdf.")] = "html",
    model_uri: ModelUri = CHAMPION_URI,
    tracking_uri: TrackingUri = None,
) -> None:
    """Account briefs for a QBR: value, benchmarks, risks, renewal plan, talk track, who."""
    from mlflow.exceptions import MlflowException

    from features.contract import ContractError
    from serving.brief import build_brief
    from serving.brief_batch import brief_targets, check_output, from_raw
    from serving.brief_render import write_briefs
    from training.registry import load_model

    if all_ == bool(account):
        raise _fail("give --account ID (one or more) or --all")
    try:
        check_output(out, fmt, all_ or len(set(account or [])) > 1)
        when = None if as_of == "latest" else _date(as_of, "--as-of")
        model = load_model(model_uri, tracking_uri)
    except MlflowException as exc:
        raise _fail(f"cannot load {model_uri}: {exc.message}") from exc
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    try:
        portfolio, records = from_raw(data, when, model)
        targets = brief_targets(records, None if all_ else account, out, fmt)
        written = write_briefs((build_brief(r, portfolio), p) for r, p in targets)
    except (ContractError, ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from exc
    where = written[0] if len(written) == 1 else f"{out}/"
    console.print(f"wrote {len(written):,} brief(s) at {portfolio.as_of.date()} to {where}")


@app.command(name="kpis")
def kpis_cmd(
    data: Annotated[Path, typer.Option(help="Directory with one file per raw table.")],
    as_of: Annotated[
        str, typer.Option("--as-of", help="KPIs at this date (or 'latest': the data's last day).")
    ] = "latest",
    out: Annotated[
        Path | None, typer.Option(help="Also write them to a .json or .html file.")
    ] = None,
    model_uri: ModelUri = CHAMPION_URI,
    tracking_uri: TrackingUri = None,
) -> None:
    """Portfolio KPIs: realised and expected GRR, NRR, logo retention; health vs targets."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from features.contract import ContractError
    from features.io import atomic_file
    from serving.brief_batch import from_raw
    from serving.kpis import compute_kpis, render_kpis_html
    from training.registry import load_model

    if out is not None and out.suffix.lower() not in (".json", ".html"):
        raise _fail(f"{out}: unknown format; use .json or .html")
    try:
        when = None if as_of == "latest" else _date(as_of, "--as-of")
        model = load_model(model_uri, tracking_uri)
        portfolio, records = from_raw(data, when, model)
    except MlflowException as exc:
        raise _fail(f"cannot load {model_uri}: {exc.message}") from exc
    except (ContractError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    k = compute_kpis(pd.DataFrame(records), portfolio)
    _print_kpis(k)
    if out is not None:
        with atomic_file(out) as tmp:
            text = k.model_dump_json(indent=2) if out.suffix.lower() == ".json" else None
            tmp.write_text(text or render_kpis_html(k, model=model.label))
        console.print(f"wrote {out}")


def _print_kpis(k) -> None:
    def share(v):
        return "–" if v is None else f"{v:.1%}"

    y, q, e = k.realised_year, k.realised_quarter, k.expected_quarter
    table = Table(title=f"Portfolio KPIs at {k.as_of}")
    for col in ("figure", "realised year", "realised quarter", "expected quarter", "target"):
        table.add_column(col, justify="left" if col in ("figure", "target") else "right")
    t = k.targets
    table.add_row("GRR", share(y.grr), share(q.grr), share(e.grr), f"> {share(t.grr_above)}")
    table.add_row("NRR", share(y.nrr), share(q.nrr), share(e.nrr), f"> {share(t.nrr_above)}")
    logo = None if e.churn_rate is None else 1 - e.churn_rate
    table.add_row("logo retention", share(y.logo_retention), share(q.logo_retention), share(logo))
    table.add_row("churn rate", share(y.churn_rate), share(q.churn_rate), share(e.churn_rate))
    table.add_row(
        "expansion rate", share(y.expansion_rate), share(q.expansion_rate), share(e.expansion_rate)
    )
    console.print(table)
    bands = Table(title="Health bands (targets: green > 70%, red < 10%)")
    for col in ("group", "accounts", "green", "yellow", "red", "green target", "red target"):
        bands.add_column(col, justify="left" if "group" in col or "target" in col else "right")
    for h in [k.health, *k.by_segment, *k.by_owner]:
        s = h.shares
        bands.add_row(
            h.group, str(h.accounts), share(s["green"]), share(s["yellow"]), share(s["red"]),
            h.green_target, h.red_target,
        )  # fmt: skip
    console.print(bands)
    console.print(
        "trend (trailing-year GRR / NRR, green / red): "
        + "; ".join(
            f"{q.as_of} {share(q.grr)} / {share(q.nrr)}, {share(q.green)} / {share(q.red)}"
            for q in k.trend
        )
    )


@app.command()
def serve(
    features: Annotated[Path, typer.Option(help="Output directory of `radar features`.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    model_uri: ModelUri = CHAMPION_URI,
    api_key: Annotated[
        str | None,
        typer.Option(help="Require this key (default $RADAR_API_KEY); visible in `ps`."),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(help="Require the key on this file's first line ($RADAR_API_KEY_FILE)."),
    ] = None,
    max_request_bytes: Annotated[
        int, typer.Option(min=1024, help="Larger request bodies get 413.")
    ] = 1 << 20,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (scoring is CPU-bound: one per core).")
    ] = 2,
    keepalive_requests: Annotated[
        int,
        typer.Option(
            min=1, help="Answers per keep-alive connection before it is closed (spreads clients)."
        ),
    ] = 32,
    prediction_log: Annotated[
        Path | None,
        typer.Option(help="Append what the service scores by id to this prediction log."),
    ] = None,
    monitor: Annotated[
        Path | None,
        typer.Option(help="Folder `radar monitor --out` writes: shown at /ui/monitor."),
    ] = None,
    tracking_uri: TrackingUri = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Folder the workers share (wrong-key counts); default: a new temp one."),
    ] = None,
    trusted_proxies: Annotated[
        str,
        typer.Option(help="Proxy addresses whose X-Forwarded-For is believed (comma-separated)."),
    ] = "",
) -> None:
    """Start the scoring service (BentoML) for the latest snapshots of FEATURES."""
    import shutil
    import sys

    from serving.serve_env import hardening_env

    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    env = {
        **os.environ,
        "RADAR_FEATURES": str(features.resolve()),
        "RADAR_MODEL_URI": _served_version(model_uri, tracking_uri),
        "RADAR_MAX_REQUEST_BYTES": str(max_request_bytes),
        "RADAR_WORKERS": str(workers),
        "RADAR_KEEPALIVE_REQUESTS": str(keepalive_requests),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    if api_key:
        env["RADAR_API_KEY"] = api_key
    if prediction_log:
        env["RADAR_PREDICTION_LOG"] = str(prediction_log.resolve())
    if monitor:
        env["RADAR_MONITOR"] = str(monitor.resolve())
    if api_key_file is not None:
        if not api_key_file.is_file():
            raise _fail(f"--api-key-file {api_key_file}: no such file")
        env["RADAR_API_KEY_FILE"] = str(api_key_file.resolve())
    env |= hardening_env(state_dir, trusted_proxies)
    cmd = [bentoml, "serve", "serving.service:RenewalRadar", "--host", host, "--port", str(port)]
    # Become the server (no child left behind): signals such as SIGTERM reach BentoML itself.
    os.execvpe(bentoml, cmd, env)


def _store(tracking_uri: str | None) -> str:
    """The tracking URI of a read-only command; exits 1 if it names no store."""
    from training.registry import require_store

    try:
        return require_store(tracking_uri)
    except ValueError as exc:
        raise _fail(str(exc)) from exc


def _served_version(model_uri: str, tracking_uri: str | None) -> str:
    """The version an alias points to now, so every worker serves that one (see docs/serving.md).

    A registry that cannot answer leaves the alias as given: the service then says why it is
    not ready.
    """
    from training.registry import bound_registry_calls, resolve_version

    _store(tracking_uri)
    bound_registry_calls()
    try:
        return resolve_version(model_uri, tracking_uri)
    except Exception as exc:  # MLflow's errors vary by store; the service reports it
        logging.getLogger("renewal_radar.cli").warning("cannot resolve %s: %s", model_uri, exc)
        return model_uri


def _date(text: str, option: str):
    import pandas as pd

    try:
        return pd.Timestamp(text).normalize()
    except ValueError as exc:
        raise ValueError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from exc


def _print_summary(scores) -> None:
    s = scores.summary
    table = Table(title=f"Portfolio at {', '.join(scores.metadata['as_of'])}")
    for col in (
        "segment",
        "accounts",
        "ARR",
        "churned ARR 90d",
        "expansion ARR 90d",
        "exp. GRR qtr",
        "exp. NRR qtr",
        "health bands",
    ):
        table.add_column(col, justify="left" if col in ("segment", "health bands") else "right")
    for seg, b in s.items():
        if not isinstance(b, dict) or "arr" not in b:
            continue
        bands = ", ".join(f"{k} {v}" for k, v in sorted(b["health_distribution"].items()))
        table.add_row(
            seg,
            f"{b['accounts']:,}",
            f"${b['arr']:,.0f}",
            f"${b['expected_churned_arr_90d']:,.0f}",
            f"${b['expected_expansion_arr_90d']:,.0f}",
            _share(b["expected_grr_next_quarter"]),
            _share(b["expected_nrr_next_quarter"]),
            bands,
        )
    console.print(table)
    console.print(
        "plays: "
        + ", ".join(f"{k} {v}" for k, v in s["plays"].items())
        + f"; health score and model disagree on {s['disagreements']} account(s)"
    )


def _share(value: float | None) -> str:
    """A rate as a percent, or "-" where there is none (no ARR: accounts without contracts)."""
    return "-" if value is None else f"{value:.1%}"


def pd_isna(value: object) -> bool:
    """Whether a table cell is empty (None or NaN)."""
    return value is None or (isinstance(value, float) and value != value)


from radar import predlog  # noqa: E402 (registers after the commands above)

predlog.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
