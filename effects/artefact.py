"""The saved result of ``radar effects --out DIR``, which the service's pages read.

Two files, each written atomically: ``effects.json`` (per play: the observed success rate,
the naive difference, the causal effect with its interval overall, by segment and by cause,
the ARR the plays run saved with its interval and the ROI against the configured play costs;
the program's total; the policy values) and ``accounts.parquet`` (per account at the latest
date: each estimated play's expected saved ARR with its interval and whether it has evidence,
and the play the evidence chooses). Reading needs pandas only: no econml in the service.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effects.config import EffectsConfig

SUMMARY = "effects.json"
ACCOUNTS = "accounts.parquet"
VERSION = 1


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
    saved = program_savings(r, cfg)
    plays = []
    for p in r.plays:
        s = saved["plays"].get(p.play)
        hours = p.treated * cfg.play_hours.get(p.play, 5.0)
        cost = hours * cfg.csm_hour_cost
        plays.append(
            {
                "play": p.play,
                "treated": p.treated,
                "success_rate": p.success_rate,
                "naive_difference": _interval(p.naive_difference),
                "effect": _interval(p.effect),
                "by_segment": {k: _interval(v) for k, v in p.by_segment.items()},
                "by_cause": {k: _interval(v) for k, v in p.by_cause.items()},
                "saved_arr": s,
                "hours": hours,
                "cost": cost,
                "roi": _roi(s, cost) if s else None,
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
    """Write ``effects.json`` and ``accounts.parquet`` into ``folder`` (atomically each)."""
    from features.io import atomic_file

    folder = Path(folder)
    accounts = accounts_frame(report)
    text = json.dumps(_clean(summary(report, cfg, source)), indent=1)
    with atomic_file(folder / ACCOUNTS) as tmp:
        accounts.to_parquet(tmp, index=False)
    with atomic_file(folder / SUMMARY) as tmp:  # last: its presence says the pair is whole
        tmp.write_text(text)
    return folder


def read_summary(folder: str | Path) -> dict[str, Any] | None:
    """The saved summary, or None where ``folder`` has none."""
    path = Path(folder) / SUMMARY
    return json.loads(path.read_text()) if path.exists() else None


def read_accounts(folder: str | Path) -> pd.DataFrame | None:
    """The saved per-account effects, or None where ``folder`` has none."""
    path = Path(folder) / ACCOUNTS
    return pd.read_parquet(path) if path.exists() else None
