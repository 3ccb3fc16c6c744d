"""The monitor report as files: ``monitor.json`` and a self-contained ``monitor.html``.

:mod:`monitoring.report` computes the report (a JSON-ready dict); this module writes it, the
page rendered by the one templating module (:mod:`reports.templating`). The service's monitor
page reads the JSON back (:mod:`reports.monitor_view`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from features import words as w
from features.catalogue import HORIZONS
from features.io import atomic_file
from reports.templating import environment

JSON_FILE, HTML_FILE = "monitor.json", "monitor.html"
TEMPLATE = "monitor_report.html"
CALIBRATION = [
    ("n", "predictions", "int"),
    ("predicted_rate", "predicted rate", "pct"),
    ("observed_rate", "observed rate", "pct"),
    ("predicted_events", "predicted events", "num"),
    ("observed_events", "observed events", "int"),
    ("ratio", "predicted / observed", "num"),
    ("z", "z", "num"),
]
MONEY = [
    ("as_of", "issued at", "text"),
    ("accounts", "accounts", "int"),
    ("churned_arr_forecast", "churned ARR forecast", "money"),
    ("churned_arr_actual", "churned ARR actual", "money"),
    ("churned_arr_ratio", "forecast / actual", "num"),
    ("churned_arr_error", "error", "pct"),
    ("expanded_arr_forecast", "expanded ARR forecast", "money"),
    ("expanded_arr_actual", "expanded ARR actual", "money"),
    ("expanded_arr_ratio", "forecast / actual", "num"),
    ("expanded_arr_error", "error", "pct"),
]
# The health forecasts against the score logged later (monitoring.outlook), one row each.
HEALTH_FORECAST_COLUMNS = [
    ("forecast", "forecast", "text"),
    ("matured", "matured", "int"),
    ("mae", "MAE", "num"),
    ("mae_same_as_today", "MAE same as today", "num"),
    ("coverage", "inside the interval", "pct0"),
]
FEATURES = [
    ("feature", "feature", "text"),
    ("psi", "PSI", "num"),
    ("importance_rank", "importance rank", "int"),
    ("reference_mean", "training mean", "num"),
    ("current_mean", "latest mean", "num"),
    ("reference_missing", "training missing", "pct"),
    ("current_missing", "latest missing", "pct"),
]
# The forecast periods of monitoring.report.forecast_accuracy: the short horizon per month,
# the long one per quarter.
PERIODS = [
    ("month", f"{min(HORIZONS)}-day, per month"),
    ("quarter", f"{max(HORIZONS)}-day, per quarter"),
]


def render_html(report: dict) -> str:
    """A self-contained page: verdict and reasons first, then the tables behind them."""
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            r=report,
            banner=w.verdict_banner(
                report["verdict"], None if "left_out" not in report else len(report["left_out"])
            ),
            calibration=CALIBRATION,
            money=MONEY,
            features=FEATURES,
            periods=PERIODS,
            score_psi=[{"head": h, "psi": v} for h, v in report["drift"]["scores"].items()],
            health_forecasts=[
                {"forecast": k, **v} for k, v in report.get("health_forecasts", {}).items()
            ],
            health_forecast_columns=HEALTH_FORECAST_COLUMNS,
        )
    )


def write_report(report: dict, out_dir: str | Path) -> list[Path]:
    """``monitor.json`` and ``monitor.html`` in ``out_dir``, each written whole or not at all."""
    out = Path(out_dir)
    paths = [out / JSON_FILE, out / HTML_FILE]
    with atomic_file(paths[0]) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=_plain))
    with atomic_file(paths[1]) as tmp:
        tmp.write_text(render_html(report))
    return paths


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
