"""The monitor adds up: forecast error never below -100%, no "stable" beside drifted features."""

from __future__ import annotations

import pandas as pd
import pytest

from monitoring.config import MonitorConfig
from monitoring.report import forecast_accuracy, left_out, verdict
from reports.monitor_report import render_html
from reports.monitor_view import Found, monitor_view
from reports.templating import environment

FORECAST, ACTUAL = 690_143.0, 182_371.0  # the demo's quarter: "accuracy -178%"


def joined() -> pd.DataFrame:
    """Two accounts at a quarter end: one churned (its ARR the actual), both forecast."""
    return pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2026-09-30", "2026-09-30"]),
            "arr": [ACTUAL, 1_000_000.0],
            "churn_90d": [1.0, 0.0],
            "arr_at_risk_90d": [FORECAST / 2, FORECAST / 2],
        }
    )


def feature(name: str, psi: float, rank: int) -> dict:
    return {"feature": name, "psi": psi, "importance_rank": rank, "reference_missing": 0.0,
            "current_missing": 0.0}  # fmt: skip


def drifted() -> dict:
    # The demo's three features above the large-shift line, none among the top 15.
    return {
        "reference_window": ["2025-01-31", "2025-12-31"],
        "current_as_of": "2026-10-31",
        "scores": {"churn_90d": 0.12},
        "features": [
            feature("days_since_last_qbr", 0.85, 22),
            feature("tenure_days", 0.29, 3),
            feature("milestone_on_time_rate", 0.26, 31),
            feature("seat_utilisation", 0.15, 1),
            feature("logins_30d", 0.02, 2),
        ],
    }


def test_forecast_error_is_an_absolute_percentage_error_and_a_ratio():
    row = forecast_accuracy(joined())["quarter"][0]
    assert row["churned_arr_forecast"] == pytest.approx(FORECAST)
    assert row["churned_arr_actual"] == pytest.approx(ACTUAL)
    assert row["churned_arr_error"] == pytest.approx((FORECAST - ACTUAL) / ACTUAL)  # 278%
    assert row["churned_arr_error"] >= 0 and "churned_arr_accuracy" not in row
    assert row["churned_arr_ratio"] == pytest.approx(FORECAST / ACTUAL)
    under = joined().assign(arr_at_risk_90d=[ACTUAL / 4, 0.0])  # an under-forecast
    assert forecast_accuracy(under)["quarter"][0]["churned_arr_error"] == pytest.approx(0.75)
    nothing = joined().assign(churn_90d=[0.0, 0.0])  # no churn: nothing to divide by
    assert forecast_accuracy(nothing)["quarter"][0]["churned_arr_error"] is None


def test_checks_above_their_line_are_named_with_why_never_called_stable():
    cfg = MonitorConfig()
    drift, forecasts = drifted(), forecast_accuracy(joined())
    realised = {
        "churn_30d": {"recent": {"ratio": 1.4, "z": 1.1, "observed_events": 25,
                                 "predicted_events": 35, "from": "x", "to": "y"}},
    }  # fmt: skip
    level, reasons = verdict(realised, drift, cfg)
    assert (level, reasons) == ("ok", [])  # none of these is a reason of the verdict
    notes = left_out(realised, drift, forecasts, cfg)
    text = " | ".join(n["text"] for n in notes)
    for name in ("days_since_last_qbr", "tenure_days", "milestone_on_time_rate"):
        assert f"{name}: PSI" in text  # every feature above the large-shift line, with why
    assert "importance rank 22, outside the model's 15 most important" in text
    assert "drift_ignore" in text and "seat_utilisation (0.15)" in text
    assert "churn_30d: predicted / observed 1.40, left out: not significant" in text
    assert "churn_90d: served scores moved moderately (PSI 0.12)" in text
    assert "off by 278%" in text and "beyond the 5% target" in text
    # The page's banner and list: not "the inputs are stable".
    report = {
        "verdict": level, "reasons": reasons, "left_out": notes, "model": "m v1",
        "data_end": "2026-10-31", "realised_vs_predicted": {},
        "logged": {"predictions": 10, "as_of_dates": ["2026-09-30"], "model_versions": ["1"]},
        "forecast_accuracy": forecasts, "forecast_target": cfg.forecast_target,
        "drift": drift, "config": cfg.model_dump(mode="json"),
    }  # fmt: skip
    view = monitor_view(Found(report, "here"))
    page = environment("serving.pages", trim=False).get_template("monitor.html")
    html = page.render(root="", **view)
    assert "stable" not in html and f"but {len(notes)} finding(s) above" in view["banner"]
    assert html.count('class="left-out"') == len(notes)
    assert '<td class="num error">278%</td>' in html and '<td class="num ratio">3.78</td>' in html
    assert "-178%" not in html
    file_page = render_html(report)
    assert "stable" not in file_page and file_page.count("outside the model&#39;s 15") == 2
    # A report without the list (written before it) does not claim stability either.
    old = monitor_view(Found({k: v for k, v in report.items() if k != "left_out"}, "old"))
    assert "stable" not in old["banner"] and "again" in old["banner"]
