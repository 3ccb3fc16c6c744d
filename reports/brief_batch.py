"""``radar brief`` and ``radar kpis``: raw tables in, the portfolio and the records at a date.

The snapshots of the last year's dates come through the one door
(:func:`scoring.snapshot.dated_snapshot`, with the brief's history dates), as ``radar score``'s
one date does, and the date of the brief is scored.
(The service reads its snapshot store instead: :mod:`reports.brief_store`.)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.safe_output import file_stem
from reports.brief import (
    RAW_TABLES,
    Portfolio,
    history_dates,
    portfolio_from_frames,
)
from scoring import snapshot
from scoring.plays import ScoringConfig
from scoring.records import Rows, score_rows
from scoring.schema import api_records
from training.registry import ScoringModel


def from_raw(
    data: str | Path,
    as_of: pd.Timestamp | None,
    model: ScoringModel,
    cfg: ScoringConfig | None = None,
    **data_options: object,
) -> tuple[Portfolio, list[dict]]:
    """The portfolio at ``as_of`` (None: the data's last day) and every active account's record.

    ``data_options`` are :func:`scoring.snapshot.dated_snapshot`'s (``now``, ``future``).

    Raises:
        ContractError: When the data breaks the contract.
        ValueError: When ``as_of`` is outside the period the data covers.

    """
    snap = snapshot.dated_snapshot(
        data, as_of, model, history=history_dates, tables=RAW_TABLES, **data_options
    )
    rows = Rows.from_frame(snap.rows, model.bundle)
    columns = score_rows(
        rows, model, cfg or ScoringConfig(), missing=snap.missing, uplift=snap.uplift_or_default
    )
    records = api_records(columns, list(model.bundle.heads))
    return portfolio_from_frames(snap.history, snap.raw, snap.as_of), records


def check_output(out: Path, fmt: str | None, several: bool) -> None:
    """Refuse an output that cannot be, before any work: a format, a file for several briefs.

    Raises:
        ValueError: Naming the option and what to give instead.

    """
    from reports.brief_render import FORMATS

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
