"""The monitor report's page, rendered by the one templating module."""

from __future__ import annotations

import json

import numpy as np

from reports.monitor_report import render_html, write_report

REPORT = {
    "verdict": "watch",
    "reasons": [{"level": "watch", "text": "usage <drifted> (PSI 0.31)"}],
    "model": "renewal-radar v3",
    "data_end": "2026-10-31",
    "logged": {"predictions": 12345, "as_of_dates": ["2026-09-30", "2026-10-31"]},
    "realised_vs_predicted": {
        "churn_30d": {
            "matured": 1,
            "by_month": [{"as_of": "2026-09-30", "n": 100, "predicted_rate": 0.05,
                          "observed_rate": 0.04, "predicted_events": 5.0, "observed_events": 4,
                          "ratio": 1.25, "z": None}],
            "recent": {"from": "2026-09-30", "to": "2026-09-30"},
            "by_segment": [{"segment": "smb", "n": 100, "ratio": float("nan")}],
            "by_decile": [{"bin": 1, "predicted": 0.01, "observed": 0.0}],
        },
        "churn_90d": {"matured": 0},
    },
    "forecast_target": 0.9,
    "health_forecasts": {"forecast_health_90d": {"matured": 40, "mae": 12.5,
                                                 "mae_same_as_today": 15.0, "coverage": 0.9}},
    "forecast_accuracy": {"month": [{"as_of": "2026-09-30", "accounts": 100,
                                     "churned_arr_forecast": 1234.5}], "quarter": []},
    "drift": {
        "reference_window": ["2025-01-31", "2025-12-31"],
        "current_as_of": "2026-10-31",
        "scores": {"churn_30d": np.float64(0.02)},
        "features": [{"feature": "seat_utilisation", "psi": 0.31, "importance_rank": 2,
                      "reference_mean": 0.6, "current_mean": 0.4, "reference_missing": 0.0,
                      "current_missing": 0.1}],
    },
}  # fmt: skip


def test_the_page_reads_verdict_reasons_and_every_table(tmp_path):
    page = render_html(REPORT)
    assert "<span class='watch'>watch</span>" in page
    assert "usage &lt;drifted&gt; (PSI 0.31)" in page  # escaped
    assert "12,345 logged predictions at 2 as-of dates; data to 2026-10-31" in page
    assert "<td>2026-09-30</td><td>100</td><td>5.0%</td><td>4.0%</td>" in page
    assert "<td>1.250</td><td>-</td>" in page  # ratio, and z none: a dash
    assert "No prediction has reached its horizon yet." in page  # churn_90d
    assert "Forecast error, |forecast - actual| / actual (target: within 10%)" in page
    assert "<td>$1,234</td>" in page
    assert "30-day, per month" in page and "90-day, per quarter" in page
    assert "<td>seat_utilisation</td><td>0.310</td><td>2</td>" in page
    row = "<td>forecast_health_90d</td><td>40</td><td>12.500</td><td>15.000</td><td>90%</td>"
    assert row in page
    json_path, html_path = write_report(REPORT, tmp_path)
    assert json.loads(json_path.read_text())["drift"]["scores"]["churn_30d"] == 0.02
    assert html_path.read_text() == page
