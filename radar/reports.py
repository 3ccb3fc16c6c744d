"""``radar brief`` and ``radar kpis``: the CSM documents from raw data and a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from radar.common import (
    CHAMPION_URI,
    DataSource,
    FutureRows,
    ModelUri,
    Now,
    TrackingUri,
    console,
    dated_inputs,
    fail,
)


def brief_cmd(
    data: DataSource,
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
    audience: Annotated[
        str,
        typer.Option(
            help="internal (everything) or customer (value, benchmarks and the plan ahead; no "
            "risk, model points, play, talk track or internal tasks)."
        ),
    ] = "internal",
    model_uri: ModelUri = CHAMPION_URI,
    tracking_uri: TrackingUri = None,
    now: Now = None,
    future_rows: FutureRows = "error",
) -> None:
    """Account briefs for a QBR: value, benchmarks, risks, renewal plan, talk track, who."""
    from features.contract import ContractError
    from reports.brief import build_brief
    from reports.brief_batch import brief_targets, check_output, from_raw
    from reports.brief_render import AUDIENCES, write_briefs

    if all_ == bool(account):
        raise fail("give --account ID (one or more) or --all")
    if audience not in AUDIENCES:
        raise fail(f"--audience {audience!r}: use one of {', '.join(AUDIENCES)}")
    try:
        check_output(out, fmt, all_ or len(set(account or [])) > 1)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    when, options, model = dated_inputs(as_of, now, future_rows, model_uri, tracking_uri)
    try:
        portfolio, records = from_raw(data, when, model, **options)
        targets = brief_targets(records, None if all_ else account, out, fmt)
        briefs = ((build_brief(r, portfolio), p) for r, p in targets)
        written = write_briefs(briefs, audience)
    except (ContractError, ValueError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    where = written[0] if len(written) == 1 else f"{out}/"
    console.print(f"wrote {len(written):,} brief(s) at {portfolio.as_of.date()} to {where}")


def kpis_cmd(
    data: DataSource,
    as_of: Annotated[
        str, typer.Option("--as-of", help="KPIs at this date (or 'latest': the data's last day).")
    ] = "latest",
    out: Annotated[
        Path | None, typer.Option(help="Also write them to a .json or .html file.")
    ] = None,
    model_uri: ModelUri = CHAMPION_URI,
    tracking_uri: TrackingUri = None,
    now: Now = None,
    future_rows: FutureRows = "error",
) -> None:
    """Portfolio KPIs: realised and expected GRR, NRR, logo retention; health vs targets."""
    import pandas as pd

    from features.contract import ContractError
    from features.io import atomic_file
    from reports.brief_batch import from_raw
    from reports.kpis import compute_kpis, render_kpis_html

    if out is not None and out.suffix.lower() not in (".json", ".html"):
        raise fail(f"{out}: unknown format; use .json or .html")
    when, options, model = dated_inputs(as_of, now, future_rows, model_uri, tracking_uri)
    try:
        portfolio, records = from_raw(data, when, model, **options)
    except (ContractError, ValueError) as exc:
        raise fail(str(exc)) from exc
    k = compute_kpis(pd.DataFrame(records), portfolio)
    _print_kpis(k)
    if out is not None:
        with atomic_file(out) as tmp:
            text = k.model_dump_json(indent=2) if out.suffix.lower() == ".json" else None
            tmp.write_text(text or render_kpis_html(k, model=model.label))
        console.print(f"wrote {out}")


def _print_kpis(k) -> None:
    def pct(v):
        return "–" if v is None else f"{v:.1%}"

    y, q, e = k.realised_year, k.realised_quarter, k.expected_quarter
    table = Table(title=f"Portfolio KPIs at {k.as_of}")
    for col in ("figure", "realised year", "realised quarter", "expected quarter", "target"):
        table.add_column(col, justify="left" if col in ("figure", "target") else "right")
    t = k.targets
    for name, yv, qv, ev, year, target in (
        ("GRR", y.grr, q.grr, e.grr, e.grr_annualised, t.grr_above),
        ("NRR", y.nrr, q.nrr, e.nrr, e.nrr_annualised, t.nrr_above),
    ):  # the targets are annual: the quarter's expectation is judged annualised
        table.add_row(
            name, pct(yv), pct(qv), f"{pct(ev)} ({pct(year)} a year)", f"> {pct(target)} a year"
        )
    logo = None if e.churn_rate is None else 1 - e.churn_rate
    table.add_row("logo retention", pct(y.logo_retention), pct(q.logo_retention), pct(logo))
    table.add_row("churn rate", pct(y.churn_rate), pct(q.churn_rate), pct(e.churn_rate))
    table.add_row(
        "expansion rate", pct(y.expansion_rate), pct(q.expansion_rate), pct(e.expansion_rate)
    )
    console.print(table)
    console.print(
        "Expected GRR counts churned ARR only: contractions are not modelled (an upper bound)."
    )
    bridge = Table(title="Where the ARR went")
    for col in ("", "realised year", "expected quarter"):
        bridge.add_column(col, justify="right" if col else "left")
    for key, name in (
        ("start_arr", "starting ARR"),
        ("churned", "- churned"),
        ("contracted", "- contracted"),
        ("expanded", "+ expanded"),
        ("end_arr", "= ending ARR (same accounts)"),
        ("new_arr", "new or returning logos"),
    ):
        cells = [_dollars(b, key) for b in (y.bridge, e.bridge)]
        bridge.add_row(name, *cells)
    console.print(bridge)
    bands = Table(title="Health bands (targets: green > 70%, red < 10%)")
    for col in ("group", "accounts", "green", "yellow", "red", "green target", "red target"):
        bands.add_column(col, justify="left" if "group" in col or "target" in col else "right")
    for h in [k.health, *k.by_segment, *k.by_owner]:
        s = h.shares
        bands.add_row(
            h.group, str(h.accounts), pct(s["green"]), pct(s["yellow"]), pct(s["red"]),
            h.green_target, h.red_target,
        )  # fmt: skip
    console.print(bands)
    console.print(
        "trend (trailing-year GRR / NRR, green / red): "
        + "; ".join(
            f"{q.as_of} {pct(q.grr)} / {pct(q.nrr)}, {pct(q.green)} / {pct(q.red)}" for q in k.trend
        )
    )


def _dollars(bridge, key: str) -> str:
    """A bridge figure: a dash without ARR, "not modelled" where the model has none."""
    if bridge is None:
        return "–"
    value = getattr(bridge, key)
    return "not modelled" if value is None else f"${value:,.0f}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(name="brief")(brief_cmd)
    app.command(name="kpis")(kpis_cmd)
