"""What ``/ui/monitor`` shows: the latest ``radar monitor`` report, read again on every visit.

The report comes from ``$RADAR_MONITOR/monitor.json`` (``radar serve --monitor DIR``, the
folder ``radar monitor --out`` writes) when that is set, else from the latest MLflow run of
kind ``monitor`` (its ``monitor.json`` artifact). The page reads; it never runs the monitor
(that needs the raw tables, which the service does not hold).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features import words as w

log = logging.getLogger(__name__)

ENV = "RADAR_MONITOR"
REPORT = "monitor.json"
DRIFT_ROWS = 15  # features shown, by PSI


@dataclass(frozen=True)
class Found:
    """A report and where it was read from (None: no report yet, ``source`` says where not)."""

    report: dict | None
    source: str


def latest_report(folder: str | Path | None = None) -> Found:
    """The latest monitor report: ``folder``/monitor.json, or the latest MLflow monitor run."""
    folder = folder if folder is not None else os.environ.get(ENV)
    if folder:
        path = Path(folder) / REPORT
        if not path.exists():
            return Found(None, str(path))
        return Found(json.loads(path.read_text()), str(path))
    return _from_mlflow()


def _from_mlflow() -> Found:
    import mlflow
    from mlflow.artifacts import load_dict

    from training.registry import KIND_TAG

    where = f"MLflow ({mlflow.get_tracking_uri()})"
    try:
        runs = mlflow.search_runs(
            search_all_experiments=True,
            filter_string=f"tags.`{KIND_TAG}` = 'monitor'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    except mlflow.exceptions.MlflowException as exc:
        log.warning("cannot search %s for monitor runs: %s", where, exc)
        return Found(None, where)
    if runs.empty:
        return Found(None, where)
    run_id = runs["run_id"].iloc[0]
    return Found(load_dict(f"runs:/{run_id}/{REPORT}"), f"MLflow run {run_id}")


def _count(items: list | None) -> int | None:
    """How many, or None for a report written before the list existed."""
    return None if items is None else len(items)


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def monitor_view(found: Found) -> dict[str, Any]:
    """The page's context: verdict and reasons, realised vs predicted, forecasts, drift."""
    r = found.report
    if r is None:
        return {"report": None, "source": found.source}
    heads = []
    for head, h in r["realised_vs_predicted"].items():
        c = h.get("recent")
        heads.append({"head": head, "matured": h.get("matured", 0), "recent": c})
    features = sorted(
        (f for f in r["drift"]["features"] if _num(f.get("psi")) is not None),
        key=lambda f: -f["psi"],
    )[:DRIFT_ROWS]
    logged = r["logged"]
    dates = logged["as_of_dates"]
    return {
        "report": r,
        "source": found.source,
        "verdict": r["verdict"],
        "banner": w.verdict_banner(r["verdict"], _count(r.get("left_out"))),
        "reasons": r["reasons"],
        "left_out": r.get("left_out") or [],
        "model": r["model"],
        "data_end": r["data_end"],
        "predictions": logged["predictions"],
        "logged_from": dates[0] if dates else None,
        "logged_to": dates[-1] if dates else None,
        "logged_dates": len(dates),
        "heads": heads,
        "forecasts": r["forecast_accuracy"],
        "forecast_target": r["forecast_target"],
        # the health forecasts against the score logged later (absent in older reports)
        "health_forecasts": r.get("health_forecasts", {}),
        "drift": features,
        "score_psi": {h: _num(v) for h, v in r["drift"]["scores"].items()},
        "reference_window": r["drift"]["reference_window"],
        "current_as_of": r["drift"]["current_as_of"],
        "psi_drift": r["config"]["psi_drift"],
    }
