"""``radar effects``: which plays work, for whom, with intervals; a worklist within capacity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from radar.common import console, fail, progress, settings_error

EXPERIMENT = "radar-effects"


def effects_cmd(
    data: Annotated[
        str | None, typer.Option(help="Data folder with csm_actions (or use --table).")
    ] = None,
    table: Annotated[
        Path | None, typer.Option(help="A feature table of your own (parquet or CSV).")
    ] = None,
    treatment: Annotated[
        str | None, typer.Option(help="With --table: column with the play (empty: none).")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option(help="With --table: 0/1 outcome column (e.g. churned).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML effects configuration.")] = None,
    worklist_out: Annotated[
        Path | None, typer.Option("--worklist", help="Write the worklist here (CSV).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the saved result the service's pages show (radar serve --effects)."
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
        ),
    ] = None,
) -> None:
    """Which plays work, for whom, with intervals; a worklist within CSM capacity.

    Estimates each play's effect on churn (doubly robust) beside the naive figures, evaluates
    the worklist against the rule policy and risk ranking, and logs one MLflow run.
    """
    from effects.config import EffectsConfig
    from effects.data import EffectsError
    from effects.run import analyse, load_from_data, load_table, truth_of
    from features.contract import ContractError

    if (data is None) == (table is None):
        raise fail("give either --data DIR or --table FILE --treatment COL --outcome COL")
    if table is not None and (treatment is None or outcome is None):
        raise fail("--table needs --treatment COL and --outcome COL")
    try:
        cfg = EffectsConfig.from_yaml(config)
    except Exception as exc:  # pydantic / YAML errors name the field at fault
        raise fail(f"bad effects configuration: {settings_error(exc)}") from exc
    try:
        with progress() as update:
            if data is not None:
                tab, actions = load_from_data(data, cfg, update)
                truth = truth_of(data)
            else:
                tab, actions, truth = load_table(table, treatment, outcome, cfg), None, None
            report = analyse(tab, cfg, actions, truth)
    except (EffectsError, ContractError) as exc:
        raise fail(str(exc)) from exc
    _print(report, cfg)
    if worklist_out is not None and report.worklist is not None:
        from features.io import atomic_file

        with atomic_file(worklist_out) as tmp:
            report.worklist.to_csv(tmp, index=False)
    if out is not None:
        from effects.artefact import write_artefact

        write_artefact(report, cfg, out, data or str(table))
        console.print(f"effects saved in {out} (radar serve --effects {out})", highlight=False)
    run_id, uri = _log(report, cfg, data or str(table), tracking_uri)

    console.print(f"MLflow run {run_id} in {uri}", highlight=False)


def _interval(i) -> str:
    return f"{i.estimate:+.3f} [{i.low:+.3f}, {i.high:+.3f}]"


def _print(report, cfg) -> None:
    from effects.artefact import fragile_plays  # the effects stack: only this command
    from features import words as w

    r = report.result
    t = Table(title=f"Effect of each play on {r.outcome} ({r.confidence:.0%} intervals)")
    for col in (
        "play",
        "plays",
        "effect (doubly robust)",
        "naive treated - untreated",
        "success rate (observed)",
        "robust to unseen confounding up to",
        "by cause (where present)",
    ):
        t.add_column(col)
    for p in r.plays:
        causes = ", ".join(f"{c} {v.estimate:+.3f}" for c, v in p.by_cause.items())
        t.add_row(
            p.play,
            str(p.treated),
            _interval(p.effect),
            _interval(p.naive_difference),
            f"{p.success_rate:.1%}",
            w.robustness_words(p.robustness.interval if p.robustness else None),
            causes,
        )
    console.print(t)
    for play, n in r.not_estimated.items():
        console.print(f"[yellow]{play}: {n} records, too few: not estimated[/]", highlight=False)
    console.print(r.statement, highlight=False)
    values = {p.play: p.robustness.interval if p.robustness else None for p in r.plays}
    weak = fragile_plays(values, cfg.fragile_below)
    said = w.fragile_sentence([(w.play_name(p), values[p]) for p in weak], cfg.fragile_below)
    if said:
        console.print(f"[yellow]{said}[/]", highlight=False)
    if report.accounts_learned < report.accounts_total:
        console.print(
            f"learned from a random {report.accounts_learned:,} of {report.accounts_total:,} "
            f"accounts (max_accounts: time grows with the accounts, precision with their "
            f"square root); the worklist covers all {report.accounts_total:,}",
            highlight=False,
        )
    low = [p.play for p in r.plays if p.propensity["treated_median"] < 0.01]
    if low:
        console.print(
            f"[yellow]weak overlap (median propensity of treated rows below 1%): "
            f"{', '.join(low)}[/]",
            highlight=False,
        )
    if report.policies:
        pt = Table(
            title=f"ARR saved per CSM hour ({report.csms} CSMs, "
            f"{report.capacity:,.0f} hours per window; switch doubly robust)"
        )
        for col in ("policy", "per hour", "interval", "plays", "hours", "true (oracle)"):
            pt.add_column(col)
        for v in report.policies:
            true = "-" if v.true_per_hour is None else f"{v.true_per_hour:,.0f}"
            pt.add_row(
                v.policy,
                f"{v.per_hour:,.0f}",
                f"[{v.low:,.0f}, {v.high:,.0f}]",
                str(v.plays),
                f"{v.hours:,.0f}",
                true,
            )
        console.print(pt)
        console.print(_pilot_line(r), highlight=False)
        for other, (est, lo, hi) in report.policies[0].lead.items():
            console.print(
                f"worklist minus {other}: {est:,.0f} [{lo:,.0f}, {hi:,.0f}] per hour "
                "(paired bootstrap)",
                highlight=False,
            )
    if report.oracle is not None:
        o = report.oracle
        console.print(
            f"against the oracle: 90% intervals cover {o['covered'].mean():.0%} of the plays' "
            f"true effects; mean |error| {o['error'].abs().mean():.3f} (naive "
            f"{o['naive_error'].abs().mean():.3f}); row coverage {o['cate_coverage'].mean():.2f}; "
            f"Qini {o['qini'].mean():.2f}",
            highlight=False,
        )
    if report.worklist is not None:
        w = report.worklist
        ev = (w["basis"] == "evidence").sum()
        console.print(
            f"worklist: {len(w)} plays in {w['hours'].sum():,.0f} hours, {ev} with evidence, "
            f"expected saved ARR {w['expected_saved_arr'].sum():,.0f}",
            highlight=False,
        )


def _pilot_line(result) -> str:
    """What the policy values rest on where the team seldom played: a pilot, or nothing."""
    rows = result.rows
    pilots = int(rows["pilot_propensity"].notna().sum()) if "pilot_propensity" in rows else 0
    if pilots:
        return (
            f"randomised pilot: {pilots} plays with their recorded chance; where the team "
            "seldom played, the policy values rest on them"
        )
    return (
        "no randomised pilot recorded: where the team seldom played, the policy values are the "
        "outcome model's alone and undervalue plays there (docs/effects.md)"
    )


def _log(report, cfg, source: str, tracking_uri: str | None) -> tuple[str, str]:
    """One MLflow run: settings, per-play figures, policy values, plots, the worklist."""
    import mlflow

    from effects.plots import forest_figure, uplift_figure
    from training.registry import tracking_uri as use

    uri = use(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    r = report.result
    with mlflow.start_run(run_name="effects") as run:
        mlflow.log_params({k: v for k, v in cfg.model_dump().items() if k != "play_hours"})
        mlflow.log_param("source", source)
        mlflow.set_tag("assumption", r.statement)
        metrics = {}
        for p in r.plays:
            metrics.update(
                {
                    f"effect_{p.play}": p.effect.estimate,
                    f"effect_{p.play}_low": p.effect.low,
                    f"effect_{p.play}_high": p.effect.high,
                    f"naive_{p.play}": p.naive_difference.estimate,
                    f"success_rate_{p.play}": p.success_rate,
                    f"treated_{p.play}": p.treated,
                    f"propensity_treated_median_{p.play}": p.propensity["treated_median"],
                    f"propensity_clipped_share_{p.play}": p.propensity["clipped_share"],
                }
            )
            if p.robustness:
                metrics[f"robustness_{p.play}"] = p.robustness.interval
                metrics[f"robustness_estimate_{p.play}"] = p.robustness.estimate
        metrics["accounts"] = report.accounts_total
        metrics["accounts_learned_from"] = report.accounts_learned
        for v in report.policies:
            metrics[f"arr_per_hour_{v.policy}"] = v.per_hour
            metrics[f"arr_per_hour_{v.policy}_low"] = v.low
            metrics[f"arr_per_hour_{v.policy}_high"] = v.high
        if report.oracle is not None:
            o = report.oracle
            metrics.update(
                {
                    "oracle_coverage": float(o["covered"].mean()),
                    "oracle_mean_abs_error": float(o["error"].abs().mean()),
                    "oracle_qini": float(o["qini"].mean()),
                }
            )
            mlflow.log_table(o, "effects/oracle.json")
        for play, n in r.not_estimated.items():
            mlflow.set_tag(f"not_estimated.{play}", f"{n} records, too few")
        mlflow.log_metrics(metrics)
        mlflow.log_figure(forest_figure(r), "effects/forest.png")
        mlflow.log_figure(uplift_figure(r), "effects/uplift.png")
        if report.worklist is not None:
            mlflow.log_text(report.worklist.to_csv(index=False), "effects/worklist.csv")
    return run.info.run_id, uri


def register(app: typer.Typer) -> None:
    """Add ``radar effects`` to the CLI."""
    app.command(name="effects")(effects_cmd)
