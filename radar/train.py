"""``radar train``, ``radar promote``, ``radar backtest``, ``radar compare``: models, evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from radar.common import (
    TrackingUri,
    console,
    err,
    fail,
    pd_isna,
    progress,
    settings_error,
    store_uri,
)


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
        raise fail("give either --features DIR or --table FILE (with --label, and --time if any)")
    try:
        cfg = TrainConfig.from_yaml(
            config,
            experiment=experiment,
            seed=seed,
            calibration=calibration,
            **{"lightgbm.max_trees": max_trees},
        )
    except Exception as exc:  # pydantic / YAML errors name the setting at fault
        raise fail(f"bad training configuration: {settings_error(exc)}") from exc
    try:
        if table is not None:
            if not label:
                raise fail("--table needs --label COLUMN (and --time COLUMN when it has dates)")
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
        raise fail(str(exc)) from exc


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
    from training.run_notes import experiment_link
    from training.workflow import train_and_register

    for note in data.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    with progress() as update:
        done = train_and_register(
            data, cfg, model_name=model_name, uri=tracking_uri, promote=promote_, progress=update
        )
    result, tracked = done.result, done.tracked
    _print_split(result)
    cv = result.split.as_dict().get("kind") == "cross_validation"
    title = "Test window, all segments"
    if cv:  # a small table: fold means with their intervals
        s = result.split.as_dict()
        title = (
            f"Cross-validated ({s['folds']} folds x {s['repeats']} repeats): mean (95% interval)"
        )
        if s.get("time"):
            title = (
                f"Cross-validated forward in time ({s['folds']} folds by {s['time']}, gap "
                f"{s['gap_days']} days): mean (95% interval)"
            )
    table = Table(title=title)
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
        keys = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")
        table.add_row(r["head"], r["predictor"], *(_figure(r, k) for k in keys))
    console.print(table)
    _print_model_choice(result.bundle.metadata)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    console.print(
        f"MLflow run {tracked.run_id} in {tracked.tracking_uri}; registered "
        f"{tracked.model_name} version {tracked.version} as @challenger "
        f"(heads: {', '.join(result.bundle.heads)})"
    )
    link = experiment_link(tracked.tracking_uri, tracked.experiment_id)
    if link:  # MLflow 3.17's UI picks its view from the address, not the experiment's tag
        console.print(f"in MLflow's classic-ML view: {link}", highlight=False, soft_wrap=True)
    if done.promotion is not None:
        _print_promotion(done.promotion, cfg.promotion)


def _figure(record: dict, key: str) -> str:
    """``0.812``, or with a cross-validated interval ``0.812 (0.771-0.853)``; ``-`` if none."""
    v = record.get(key)
    if v is None:
        return "-"
    low, high = record.get(f"{key}_low"), record.get(f"{key}_high")
    return f"{v:.3f}" if low is None else f"{v:.3f} ({low:.3f}-{high:.3f})"


def _print_split(result) -> None:
    """Each head's split, then rows, positives and label rate per part and head."""
    for head, s in result.splits.items():
        rows = result.part_rows[head]
        if s.as_dict().get("kind") == "cross_validation":
            console.print(
                f"{head}: {s.describe()}; per fold about {rows['train']:,} rows to fit, "
                f"{rows['validation']:,} to calibrate, {rows['test']:,} held out"
            )
            continue
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
                # not "worse": the point figure may be better with too wide an interval
                "[green]non-inferior[/]" if r.ok else "[red]not shown non-inferior[/]",
            )
        console.print(table)
    console.print(("[green]" if result.promoted else "[yellow]") + result.reason)


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
        raise fail(f"bad promotion settings: {exc}") from exc
    try:
        use(store_uri(tracking_uri))
        _promote(model, version, settings)
    except (MlflowException, ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc


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
        raise fail(f"bad training configuration: {settings_error(exc)}") from exc
    try:
        data = from_snapshots(features, cfg)
        with progress() as update:
            result = backtest(data, cfg, progress=update)
            run_id = log_backtest(result, data, tracking_uri)
        written = write_table(result, out) if out is not None else []
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
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
    for m in result.missing:  # a head left out at an origin is named, with the reason
        console.print(
            escape(f"not tested at {m['origin'].date()}: {m['reason']}"),
            highlight=False,
            soft_wrap=True,
        )


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

    use(store_uri(tracking_uri))
    comparison = compare_runs(experiment, last, model_name)
    if comparison.empty:
        raise fail(f"no training runs in experiment {experiment!r}")
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(train)
    app.command()(promote)
    app.command(name="backtest")(backtest_cmd)
    app.command()(compare)
