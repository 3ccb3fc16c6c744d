"""``radar generate``, ``radar validate``, ``radar features``: raw data to the snapshot store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from radar.common import (
    DataSource,
    Engine,
    FutureRows,
    Now,
    SparkMaster,
    check_engine,
    console,
    data_options,
    err,
    fail,
    progress,
    settings_error,
)


def generate(
    out: Annotated[Path, typer.Option(help="Directory to write the dataset to.")],
    accounts: Annotated[int, typer.Option(min=1, help="Number of accounts.")] = 2000,
    months: Annotated[int, typer.Option(min=1, max=120, help="Months of history.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    start: Annotated[str | None, typer.Option(help="First day of the window (YYYY-MM-01).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with process parameters.")] = None,
    plays: Annotated[
        bool, typer.Option(help="Simulate CSM plays (csm_actions, true effects); off by default.")
    ] = False,
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="With --plays: randomised control share.")
    ] = 0.0,
    pilot: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.99,
            help="With --plays: share of the plays given at random, with the chance recorded "
            "(a pilot the off-policy evaluation can use).",
        ),
    ] = 0.0,
    text: Annotated[
        bool,
        typer.Option(
            help="Write ticket subject/body and NPS comments whose tone and topic follow the "
            "latent state (the truth in ground_truth/text_truth.parquet); off by default."
        ),
    ] = False,
    intent: Annotated[
        bool,
        typer.Option(
            help="With --text: some renewals carry a hidden intent to leave that raises churn "
            "and shows only in what the account writes (ground_truth/intent.parquet)."
        ),
    ] = False,
) -> None:
    """Write a synthetic dataset in the contract's format, with its ground truth."""
    from features.synthetic.dataset import TARGET_RANGES, generate_dataset
    from features.synthetic.process import SyntheticConfig

    if holdout and not plays:
        raise fail("--holdout is the control share of simulated plays: give --plays with it")
    if pilot and not plays:
        raise fail("--pilot is a share of simulated plays: give --plays with it")
    if intent and not text:
        raise fail("--intent shows only in ticket and survey text: give --text with it")
    try:
        cfg = SyntheticConfig.from_yaml(config, start=start)
        if plays:
            cfg = cfg.model_copy(
                update={
                    "plays": cfg.plays.model_copy(
                        update={"enabled": True, "holdout": holdout, "pilot": pilot}
                    )
                }
            )
        if text:
            cfg = cfg.model_copy(update={"text": cfg.text.model_copy(update={"enabled": True})})
        if intent:
            cfg = cfg.model_copy(update={"intent": cfg.intent.model_copy(update={"enabled": True})})
    except Exception as exc:  # pydantic / YAML errors name the field at fault
        raise fail(f"bad synthetic config: {exc}") from exc
    with progress() as update:
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


def validate(
    data: DataSource,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    now: Now = None,
    future_rows: FutureRows = "error",
    engine: Engine = "duckdb",
    spark_master: SparkMaster = "local[2]",
) -> None:
    """Check raw data (a directory, a URI or a PostgreSQL schema) against the data contract."""
    from features.sources import describe, validate_data

    check_engine(engine)
    try:
        report = validate_data(
            data, engine=engine, spark_master=spark_master, **data_options(now, future_rows)
        )
    except ValueError as exc:  # EngineError (Spark cannot start), a URI without Spark
        raise fail(str(exc)) from exc
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
        raise fail(f"{where}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    console.print(f"{where}: valid ({len(report.warnings)} warning(s))")


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
    from features.words import topic_reading_sentence

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
        raise fail(f"bad feature configuration: {settings_error(exc)}") from exc
    try:
        check_writable(out, folder=True)  # before any work
        with progress() as update:
            result = run_features(data, out, cfg, progress=update, **data_options(now, future_rows))
    except ContractError as exc:
        raise fail(str(exc)) from exc
    except ValueError as exc:
        raise fail(str(exc)) from exc
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
    if m.get("text_features") is False:  # said once, not per feature
        console.print("no ticket or survey text: the text features are absent", highlight=False)
    elif m.get("text_topics"):
        console.print(topic_reading_sentence(m["text_topics"]), highlight=False)
    if m.get("no_values"):
        console.print(
            "[yellow]no value in any snapshot (the columns they read are empty): not computed: "
            f"{', '.join(m['no_values'])}[/]",
            highlight=False,
        )


def _activity_line(a: dict) -> str:
    """What ``radar features`` says about labels from activity."""
    return (
        f"labels from activity for {a['accounts']:,} accounts without contract rows "
        f"({a['snapshots']:,} snapshots): churn = {a['churn_after_days']} days without any "
        f"activity, expansion = spend (else activity) up more than {a['expansion_rise']:.0%}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(generate)
    app.command()(validate)
    app.command()(features)
