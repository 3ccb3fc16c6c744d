"""The saved result of ``radar effects --out DIR``, which the service's pages read.

Two files: ``effects.json`` (per play: the observed success rate, the naive difference, the
causal effect with its interval overall, by segment and by cause, its robustness to unseen
confounding, the ARR the plays run saved with its interval and the ROI against the configured
play costs; the program's total; the policy values) and ``accounts-<run>.parquet`` (per account
at the latest date: each estimated play's expected saved ARR with its interval and whether it
has evidence, and the play the evidence chooses). The pair is replaced whole: the accounts file
is written under a new name first, then ``effects.json``, which names it, replaces the old one
atomically (the commit point). A run stopped half-way leaves the previous pair readable; the
next run removes what the stopped one left. Reading needs pandas only: no econml in the
service.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effects.config import EffectsConfig

SUMMARY = "effects.json"
ACCOUNTS = "accounts.parquet"  # before per-run names: a summary without accounts_file
ACCOUNTS_GLOB = "accounts-*.parquet"
VERSION = 1


def fragile_plays(values: dict[str, float | None], limit: float) -> list[str]:
    """The plays whose interval excludes zero but an unseen factor under ``limit`` would erase.

    ``values``: play -> the robustness value of its interval (None: not computed). Here, not
    in :mod:`effects.sensitivity`, as the service's pages use it on the saved result.
    """
    return [play for play, v in values.items() if v is not None and 0 < v < limit]


def robustness_values(summary: dict) -> dict[str, float | None]:
    """Play -> the robustness value of its interval in a saved summary (None: not computed)."""
    return {p["play"]: (p.get("robustness") or {}).get("interval") for p in summary["plays"]}


def _interval(i) -> dict[str, float]:
    return {"estimate": i.estimate, "low": i.low, "high": i.high, "n": i.n}


def _roi(saved: dict[str, float], cost: float) -> dict[str, float] | None:
    """(saved ARR - cost) / cost, with the saved ARR's interval carried through."""
    if cost <= 0:
        return None
    return {k: (saved[k] - cost) / cost for k in ("estimate", "low", "high")}


def summary(report, cfg: EffectsConfig, source: str) -> dict[str, Any]:
    """Everything the leader page shows, as plain JSON types."""
    from effects.program import program_savings

    r = report.result
    played = report.played  # every account's plays, past max_accounts (else None)
    saved = program_savings(r, cfg, played)
    counts = played["treatment"].value_counts() if played is not None else None
    plays = []
    for p in r.plays:
        s = saved["plays"].get(p.play)
        treated = p.treated if counts is None else int(counts.get(p.play, 0))
        hours = treated * cfg.play_hours.get(p.play, 5.0)
        cost = hours * cfg.csm_hour_cost
        plays.append(
            {
                "play": p.play,
                "treated": treated,
                "success_rate": p.success_rate,
                "naive_difference": _interval(p.naive_difference),
                "effect": _interval(p.effect),
                "by_segment": {k: _interval(v) for k, v in p.by_segment.items()},
                "by_cause": {k: _interval(v) for k, v in p.by_cause.items()},
                "saved_arr": s,
                "hours": hours,
                "cost": cost,
                "roi": _roi(s, cost) if s else None,
                # How strong unseen confounding would have to be to erase it (shares).
                "robustness": vars(p.robustness) if p.robustness else None,
            }
        )
    total = saved["total"]
    cost = sum(p["cost"] for p in plays)
    rows = r.rows[r.rows["outcome"].notna()] if "outcome" in r.rows else r.rows
    return {
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "outcome": r.outcome,
        "confidence": r.confidence,
        "statement": r.statement,
        "fragile_below": cfg.fragile_below,
        # Accounts in the data and those the estimate learned from (fewer past max_accounts).
        "accounts": report.accounts_total,
        "accounts_learned": report.accounts_learned,
        "period": [str(rows["as_of"].min().date()), str(rows["as_of"].max().date())],
        "rows": len(rows),
        "plays": plays,
        "not_estimated": r.not_estimated,
        "program": {
            "saved_arr": total,
            "plays": int(sum(p["treated"] for p in plays)),
            "hours": float(sum(p["hours"] for p in plays)),
            "cost": cost,
            "roi": _roi(total, cost),
        },
        "csm_hour_cost": cfg.csm_hour_cost,
        "csms": report.csms,
        "capacity_hours": report.capacity,
        "policies": [vars(v) for v in report.policies],
    }


def accounts_frame(report) -> pd.DataFrame:
    """Per account at the latest date: each play's expected saved ARR, interval, evidence.

    The expected effects are those the worklist ranks by (:func:`effects.policy.expected_effects`).
    """
    now = report.accounts
    if now is None or now.empty:
        return pd.DataFrame(columns=["account_id", "as_of", "arr", "play", "basis"])
    out = now[["account_id", "as_of", "arr"]].copy()
    for p in report.result.plays:
        arr = now["arr"].to_numpy(float)
        out[f"saved_arr_{p.play}"] = -now[f"expected_{p.play}"].to_numpy(float) * arr
        out[f"saved_low_{p.play}"] = -now[f"expected_high_{p.play}"].to_numpy(float) * arr
        out[f"saved_high_{p.play}"] = -now[f"expected_low_{p.play}"].to_numpy(float) * arr
        out[f"evidence_{p.play}"] = now[f"evidence_{p.play}"].to_numpy(bool)
    out["play"] = now["chosen_play"].to_numpy()
    out["basis"] = now["chosen_basis"].to_numpy()
    return out.reset_index(drop=True)


def _clean(value: Any) -> Any:
    """NaN and infinities as null (JSON has none), NumPy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_artefact(report, cfg: EffectsConfig, folder: str | Path, source: str) -> Path:
    """Replace the saved pair in ``folder`` whole: the accounts file, then ``effects.json``.

    Stopped anywhere, the folder still reads as the previous pair (or as nothing where there
    was none); the accounts file of the previous pair is kept one run longer, for a reader
    that read the old ``effects.json`` just before it was replaced.
    """
    from features.io import atomic_file, clean_stale

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale(folder, [SUMMARY, ACCOUNTS])
    _clean_stopped(folder)
    previous = read_summary(folder)
    run = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    name = f"accounts-{run}.parquet"
    accounts = accounts_frame(report)
    text = json.dumps(
        _clean({**summary(report, cfg, source), "run": run, "accounts_file": name}), indent=1
    )
    with atomic_file(folder / name) as tmp:
        accounts.to_parquet(tmp, index=False)
    with atomic_file(folder / SUMMARY) as tmp:  # the commit point: it names the new file
        tmp.write_text(text)
    keep = {name, _accounts_name(previous)}
    for old in [*folder.glob(ACCOUNTS_GLOB), folder / ACCOUNTS]:
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return folder


def _clean_stopped(folder: Path) -> None:
    """Remove what stopped runs left: temporary files, accounts files no summary names.

    The previous run's accounts file goes too: whoever read the summary naming it finished
    long ago.
    """
    current = _accounts_name(read_summary(folder))
    for stale in [*folder.glob(f".{ACCOUNTS_GLOB}.tmp-*"), *folder.glob(ACCOUNTS_GLOB)]:
        if stale.name != current:
            stale.unlink(missing_ok=True)


def _accounts_name(summary: dict[str, Any] | None) -> str:
    """The accounts file a summary names (before per-run names: ``accounts.parquet``)."""
    return (summary or {}).get("accounts_file") or ACCOUNTS


def read_summary(folder: str | Path) -> dict[str, Any] | None:
    """The saved summary, or None where ``folder`` has none."""
    path = Path(folder) / SUMMARY
    return json.loads(path.read_text()) if path.exists() else None


def read_accounts(folder: str | Path, summary: dict[str, Any] | None = None) -> pd.DataFrame | None:
    """The per-account effects the saved summary names, or None where there are none.

    Pass the ``summary`` already read, so that the two come from the same run even while a
    new one is being written.
    """
    summary = summary if summary is not None else read_summary(folder)
    if summary is None:
        return None
    path = Path(folder) / _accounts_name(summary)
    return pd.read_parquet(path) if path.exists() else None
