"""``radar score`` (in process or on Spark) and ``radar explain``: records from a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from radar.common import (
    CHAMPION_URI,
    Engine,
    FutureRows,
    ModelUri,
    Now,
    SparkMaster,
    TrackingUri,
    check_engine,
    console,
    dated_inputs,
    fail,
    load_model,
    progress,
    share,
)


def score(
    out: Annotated[
        Path,
        typer.Option(
            help="Output file: .parquet, .csv or .jsonl (with --engine spark: a directory)."
        ),
    ],
    data: Annotated[
        str | None,
        typer.Option(
            help="Directory with one file per raw table (with --engine spark also a "
            "postgresql://...?schema=NAME URL)."
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Score accounts active at this date (or 'latest': the data's last day)."
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(
            help="Instead of --data: a feature table (Parquet or CSV) like the one a "
            "`radar train --table` model was trained on; scores each row."
        ),
    ] = None,
    model_uri: Annotated[
        str,
        typer.Option(
            "--model-uri",
            "--model",
            help="Registered model: models:/NAME@ALIAS or models:/NAME/VERSION.",
        ),
    ] = CHAMPION_URI,
    config: Annotated[
        Path | None, typer.Option(help="YAML with segment, play and driver settings.")
    ] = None,
    log: Annotated[
        Path, typer.Option("--log", help="Prediction log to append to (for `radar monitor`).")
    ] = Path("predictions"),
    tracking_uri: TrackingUri = None,
    engine: Engine = "duckdb",
    spark_master: SparkMaster = "local[2]",
    now: Now = None,
    future_rows: FutureRows = "error",
) -> None:
    """Score every account active at a date (or every row of --table): probabilities, drivers."""
    if table is not None:
        if data is not None or as_of is not None:
            raise fail("give either --data DIR --as-of DATE or --table FILE, not both")
        from radar.score_table import score_table_cmd

        score_table_cmd(table, out, model_uri, tracking_uri)
        return
    if data is None or as_of is None:
        raise fail("give --data DIR and --as-of DATE (or --table FILE for a table's model)")
    from features.contract import ContractError
    from features.io import check_writable
    from scoring.batch import score_dataset
    from scoring.plays import ScoringConfig
    from scoring.records import write_scores

    check_engine(engine)
    if engine == "duckdb" and out.suffix.lower() not in (".parquet", ".csv", ".jsonl", ".json"):
        raise fail(f"{out}: unknown output format; use .parquet, .csv or .jsonl")
    try:
        if engine == "duckdb":  # before any work: an unwritable --out used to fail at the end
            check_writable(out)
        cfg = ScoringConfig.from_yaml(config)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    # future-dated rows, as validate
    when, options, model = dated_inputs(as_of, now, future_rows, model_uri, tracking_uri)
    if engine == "spark":
        _score_on_spark(data, when, out, model, cfg, spark_master, options)
        return
    try:
        with progress() as update:
            scores = score_dataset(data, when, model, cfg, progress=update, **options)
            write_scores(scores, out)
    except (ContractError, ValueError) as exc:
        raise fail(str(exc)) from exc
    _print_summary(scores)
    console.print(f"wrote {len(scores.records):,} accounts to {out} ({scores.metadata['model']})")
    _log_predictions(scores, log)


def _log_predictions(scores, log: Path) -> None:
    """Append the run's probabilities to the prediction log (``radar monitor`` reads it)."""
    from monitoring.predictions import append

    try:
        append(scores.records, scores.metadata, log)
    except OSError as exc:
        raise fail(f"scores written, but the prediction log {log} could not be: {exc}") from exc
    console.print(f"logged the predictions to {log}/")


def _score_on_spark(data, when, out, model, cfg, master, data_options) -> None:
    """``radar score --engine spark``: features and scoring on Spark, Parquet by segment."""
    from features.config import FeatureConfig
    from features.contract import ContractError
    from scoring.spark_job import score_dataset_on_spark

    feature_cfg = FeatureConfig(engine="spark", spark_master=master)
    try:
        with progress() as update:
            got = score_dataset_on_spark(
                data, when, model, out, cfg, feature_cfg, update, **data_options
            )
    except (ContractError, ValueError) as exc:
        raise fail(str(exc)) from exc
    _print_summary(got)
    console.print(
        f"wrote {got.rows:,} accounts to {got.path} (Parquet by segment; {model.label}; "
        f"{got.rescored:,} in the top decile of churn risk, from p90 {got.risk_cut:.3f})"
    )


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
    from features.store import SnapshotStore
    from scoring.records import score_store_rows

    if global_ == (account is not None):
        raise fail("give either --global or --account ID")
    model = load_model(model_uri, tracking_uri)
    try:
        store = SnapshotStore.open(features)
        frame = store.snapshots()
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from exc
    latest = frame[frame["as_of"] == frame["as_of"].max()]
    if account is not None:
        if not (latest["account_id"] == account).any():
            raise fail(f"account {account!r} has no snapshot at {latest['as_of'].max().date()}")
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
    from scoring.outlook import outlook_sentence

    console.print(
        f"[bold]{r['account_id']}[/] at {r['as_of'].date()}: health {r['health_score']:.0f} "
        f"({r['health_band']}), {r['value_growth_segment']}, {r['customer_type']}, "
        f"renewal {r['renewal_stage']} ({r['days_to_renewal']:.0f} days)"
    )
    # the heads (those with reasons); the forecasts are said in one sentence below
    for label in (c.removeprefix("p_") for c in r.index if f"reasons_{c[2:]}" in r.index):
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
    outlook = outlook_sentence(r.to_dict())
    if outlook:
        console.print(f"\n{outlook}", highlight=False)
    text = r.get("text_evidence")  # what this month's tickets say (none without text)
    if isinstance(text, str) and text:
        console.print(f"{text}.", highlight=False)
    if r["disagreement"]:
        console.print(f"\n[yellow]{r['disagreement']}[/]")
    console.print(f"\nplay: [bold]{r['play_title']}[/]. {r['play_reason']}")
    if r["missing_inputs"]:
        console.print(f"no data for: {', '.join(r['missing_inputs'])}")


def _print_summary(scores) -> None:
    # Imported here: radar's commands import their stages when run (radar.common's rule).
    from features.catalogue import HEADLINE_HORIZON
    from features.words import money

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
            money(b["arr"]),  # a dash without ARR, never $0
            money(b[f"expected_churned_arr_{HEADLINE_HORIZON}d"]),
            money(b[f"expected_expansion_arr_{HEADLINE_HORIZON}d"]),
            share(b["expected_grr_next_quarter"]),
            share(b["expected_nrr_next_quarter"]),
            bands,
        )
    console.print(table)
    console.print(
        "plays: "
        + ", ".join(f"{k} {v}" for k, v in s["plays"].items())
        + f"; health score and model disagree on {s['disagreements']} account(s)"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(score)
    app.command(name="explain")(explain_cmd)
