"""``radar brief`` and ``radar kpis``: raw tables in, the portfolio and the records at a date.

The snapshots of the last year's dates are built from the raw tables with the model's feature
configuration, as ``radar score`` builds its one date, and the date of the brief is scored.
(The service reads its snapshot store instead: :mod:`serving.brief_store`.)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.context import expansion_uplift
from features.contract import load_dataset
from features.pipeline import build_snapshots
from features.safe_output import file_stem
from features.snapshots import data_end, history_start
from features.store import DEFAULT_EXPANSION_UPLIFT, missing_inputs, with_context
from serving.brief import (
    RAW_TABLES,
    Portfolio,
    history_dates,
    portfolio_from_frames,
)
from serving.plays import ScoringConfig
from serving.schemas import api_records
from serving.scoring import Rows, score_rows
from training.registry import ScoringModel, feature_config


def from_raw(
    data_dir: str | Path,
    as_of: pd.Timestamp | None,
    model: ScoringModel,
    cfg: ScoringConfig | None = None,
) -> tuple[Portfolio, list[dict]]:
    """The portfolio at ``as_of`` (None: the data's last day) and every active account's record.

    Raises:
        ContractError: When the data breaks the contract.
        ValueError: When ``as_of`` is outside the period the data covers.

    """
    cfg = cfg or ScoringConfig()
    ds = load_dataset(data_dir)
    fcfg = feature_config(model.bundle)
    first, last = history_start(ds, fcfg), data_end(ds, fcfg)
    t = last if as_of is None else pd.Timestamp(as_of)
    if not first <= t <= last:
        raise ValueError(
            f"--as-of {t.date()} is outside the data, which covers {first.date()} .. {last.date()}"
        )
    run = build_snapshots(ds, fcfg, dates=history_dates(t, first), with_labels=False)
    snaps = run.snapshots
    today = snaps[snaps["as_of"] == snaps["as_of"].max()].reset_index(drop=True)
    if today.empty:
        raise ValueError(f"no account is active at {t.date()}")
    subs = ds["subscriptions"]
    uplift = expansion_uplift(subs, t)
    rows = Rows.from_frame(with_context(today, run.context), model.bundle)
    columns = score_rows(
        rows,
        model,
        cfg,
        missing=missing_inputs(run.context, ds.report.missing_optional, today["account_id"], t),
        uplift=DEFAULT_EXPANSION_UPLIFT if uplift is None else uplift,
    )
    records = api_records(columns, list(model.bundle.heads))
    raw = {n: ds[n] for n in RAW_TABLES if ds.has(n)}
    return portfolio_from_frames(snaps, raw, t), records


def check_output(out: Path, fmt: str | None, several: bool) -> None:
    """Refuse an output that cannot be, before any work: a format, a file for several briefs.

    Raises:
        ValueError: Naming the option and what to give instead.

    """
    from serving.brief_render import FORMATS

    if out.suffix and out.suffix.lower() not in FORMATS:
        raise ValueError(f"{out}: unknown brief format; use {', '.join(FORMATS)} (or a folder)")
    if (fmt or "html").lower().lstrip(".") not in [f[1:] for f in FORMATS]:
        raise ValueError(f"--format {fmt}: use one of {', '.join(f[1:] for f in FORMATS)}")
    if several and out.suffix:
        raise ValueError(f"--out {out}: several briefs go to a folder (give a folder, no suffix)")


def brief_targets(
    records: list[dict], account_ids: list[str] | None, out: Path, fmt: str | None
) -> list[tuple[dict, Path]]:
    """Which record goes to which file: one account to ``out``, or each to ``out/ID.fmt``.

    ``account_ids`` None means every account active at the date.

    Raises:
        ValueError: For an account without a record at the date, or an output that cannot be.

    """
    wanted_n = None if account_ids is None else len(dict.fromkeys(account_ids))
    check_output(out, fmt, wanted_n != 1)
    by_id = {r["account_id"]: r for r in records}
    wanted = list(by_id) if account_ids is None else list(dict.fromkeys(account_ids))
    unknown = [a for a in wanted if a not in by_id]
    if unknown:
        when = records[0]["as_of"] if records else "the date"
        raise ValueError(
            f"no active account {', '.join(map(repr, unknown[:5]))} at {when} "
            f"(accounts table, column account_id; {len(by_id):,} accounts are active then)"
        )
    if len(wanted) == 1 and out.suffix:
        return [(by_id[wanted[0]], out)]
    suffix = f".{(fmt or 'html').lower().lstrip('.')}"
    return [(by_id[a], out / f"{file_stem(a)}{suffix}") for a in wanted]  # never a path
