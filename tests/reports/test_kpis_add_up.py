"""The KPI page adds up: targets judged on the same period, a dollar bridge, GRR's scope."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from reports.kpis import (
    Health,
    Kpis,
    Targets,
    annualised,
    expected,
    judged,
    realised,
    render_kpis_html,
)

D = pd.Timestamp


def history() -> pd.DataFrame:
    rows = [
        ("A", "2025-01-01", 100.0, "new"),  # flat
        ("B", "2025-01-01", 200.0, "new"),  # expands by 100
        ("B", "2025-09-01", 300.0, "expansion"),
        ("C", "2025-01-01", 100.0, "new"),  # contracts by 50
        ("C", "2025-10-01", 50.0, "contraction"),
        ("D", "2025-01-01", 100.0, "new"),  # churns
        ("D", "2025-11-01", 0.0, "churn"),
        ("E", "2025-08-01", 500.0, "new"),  # a new logo: outside the cohort
    ]
    frame = pd.DataFrame(rows, columns=["account_id", "start_date", "arr", "change_type"])
    frame["start_date"] = pd.to_datetime(frame["start_date"])
    return frame


def records(arr: float, churned: float, grown: float) -> pd.DataFrame:
    """One account's scoring record carrying the quarter's expected ARR movements."""
    return pd.DataFrame(
        {
            "segment": ["smb"],
            "arr": [arr],
            **{f"arr_at_risk_{h}d": [churned * h / 90] for h in (30, 90)},
            **{f"expected_expansion_arr_{h}d": [grown * h / 90] for h in (30, 90)},
            "health_band": ["green"],
            "play": ["none"],
            "disagreement": [None],
            "p_churn_90d": [0.05],
            "p_expansion_90d": [0.3],
        }
    )


def test_the_realised_bridge_adds_up_to_grr_and_nrr():
    r = realised(history(), D("2026-06-30"), 365)
    b = r.bridge
    assert (b.start_arr, b.churned, b.contracted, b.expanded) == (500.0, 100.0, 50.0, 100.0)
    assert b.end_arr == 450.0 == b.start_arr - b.churned - b.contracted + b.expanded
    assert b.new_arr == 500.0  # E, outside GRR and NRR
    assert r.grr == pytest.approx((b.start_arr - b.churned - b.contracted) / b.start_arr)
    assert r.nrr == pytest.approx(b.end_arr / b.start_arr)


def test_a_quarters_expectation_is_judged_annualised_against_annual_targets():
    # The portfolio: 97.6% GRR and 102.6% NRR for a quarter, against 90% / 110% a year.
    e = expected(records(1_000_000.0, 24_000.0, 50_000.0))
    assert e.grr == pytest.approx(0.976) and e.nrr == pytest.approx(1.026)
    assert e.nrr_annualised == pytest.approx(1.026**4) and e.nrr_annualised > 1.10
    assert e.grr_annualised == pytest.approx(0.976**4)
    year = realised(history(), D("2026-06-30"), 365)
    words = judged(year, e, Targets())
    assert words["expected_nrr"] == "met"  # was "missed": 102.6% compared with 110%
    assert words["expected_grr"] == "met"  # 90.7% a year
    assert annualised(None) is None
    # The expected bridge: contractions are not modelled; it ends where GRR and NRR say.
    b = e.bridge
    assert b.contracted is None and b.end_arr == pytest.approx(1_000_000 * e.nrr)
    assert 1 - b.churned / b.start_arr == pytest.approx(e.grr)


def test_the_page_says_the_period_the_scope_and_shows_the_bridge():
    year = realised(history(), D("2026-06-30"), 365)
    quarter = realised(history(), D("2026-06-30"), 91)
    e = expected(records(1_000_000.0, 24_000.0, 50_000.0))
    h = Health(group="all", accounts=1, shares={}, green_target="met", red_target="met")
    h.shares = {"green": 1.0, "yellow": 0.0, "red": 0.0, "no score": 0.0}
    k = Kpis(
        as_of=date(2026, 6, 30),
        targets=Targets(),
        realised_year=year,
        realised_quarter=quarter,
        expected_quarter=e,
        target_words=judged(year, e, Targets()),
        health=h,
        by_segment=[],
        by_owner=[],
        trend=[],
    )
    page = render_kpis_html(k)
    assert "110.8% a year" in page and "expected met (110.8% annualised)" in page
    assert "contractions are not modelled" in page
    for row, text in (
        ("bridge-start", "$500<"),
        ("bridge-churned", "$100<"),
        ("bridge-contracted", "not modelled"),
        ("bridge-end", "$450<"),
        ("bridge-new", "$500<"),
    ):
        cell = page.split(f'id="{row}"')[1].split("</tr>")[0]
        assert text in cell, (row, cell)
