"""The portfolio KPIs: realised retention from the contract history, expected from the records."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reports.brief_batch import from_raw
from reports.kpis import NO_OWNER, Targets, compute_kpis, realised, render_kpis_html
from training.registry import ScoringModel

D = pd.Timestamp


def subs(*rows) -> pd.DataFrame:
    cols = ["account_id", "start_date", "arr", "change_type"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["start_date"] = pd.to_datetime(frame["start_date"])
    return frame


def test_realised_retention_of_a_hand_made_history():
    history = subs(
        ("A", "2025-01-01", 100.0, "new"),  # renews flat
        ("A", "2026-01-01", 100.0, "renewal"),
        ("B", "2025-01-01", 200.0, "new"),  # expands 200 -> 300
        ("B", "2025-09-01", 300.0, "expansion"),
        ("C", "2025-01-01", 100.0, "new"),  # contracts 100 -> 50
        ("C", "2025-10-01", 50.0, "contraction"),
        ("D", "2025-01-01", 100.0, "new"),  # churns
        ("D", "2025-11-01", 0.0, "churn"),
        ("E", "2025-08-01", 500.0, "new"),  # new logo within the year: not in the cohort
    )
    r = realised(history, D("2026-06-30"), 365)
    assert r.accounts == 4 and r.start_arr == 500.0
    assert r.grr == pytest.approx((100 + 200 + 50 + 0) / 500)
    assert r.nrr == pytest.approx((100 + 300 + 50 + 0) / 500)
    assert r.logo_retention == pytest.approx(0.75) and r.churn_rate == pytest.approx(0.25)
    assert r.expansion_rate == pytest.approx(0.25)


def arr_on(history: pd.DataFrame, account: str, t: pd.Timestamp) -> float:
    """ARR of one account at t: the row starting latest on or before t (last in file on ties)."""
    best = None
    for row in history[history["account_id"] == account].itertuples():
        if row.start_date <= t and (best is None or row.start_date >= best.start_date):
            best = row
    return 0.0 if best is None else float(best.arr)


def test_kpis_of_the_small_world_match_the_raw_tables_and_the_records(trained, long_data):
    model = ScoringModel(trained[1].bundle, uri="x", name="renewal-radar", version="1")
    portfolio, records = from_raw(long_data, None, model)
    frame = pd.DataFrame(records)
    k = compute_kpis(frame, portfolio)
    # Realised trailing year, recomputed account by account from the raw file.
    history = pd.read_parquet(long_data / "subscriptions.parquet")
    t = portfolio.as_of
    start = t - pd.Timedelta(days=365)
    cohort = [a for a in history["account_id"].unique() if arr_on(history, a, start) > 0]
    before = {a: arr_on(history, a, start) for a in cohort}
    after = {a: arr_on(history, a, t) for a in cohort}
    base = sum(before.values())
    assert k.realised_year.accounts == len(cohort)
    assert k.realised_year.grr == pytest.approx(
        sum(min(after[a], before[a]) for a in cohort) / base
    )
    assert k.realised_year.nrr == pytest.approx(sum(after.values()) / base)
    assert k.realised_year.churn_rate == pytest.approx(
        sum(after[a] == 0 for a in cohort) / len(cohort)
    )
    # Expected: the records' own sums.
    arr = frame["arr"].sum()
    assert k.expected_quarter.grr == pytest.approx(1 - frame["arr_at_risk_90d"].sum() / arr)
    assert k.expected_quarter.churn_rate == pytest.approx(frame["p_churn_90d"].mean())
    # Health: shares of the records' bands, by segment and by owner.
    assert k.health.shares["green"] == pytest.approx((frame["health_band"] == "green").mean())
    assert (
        sum(h.accounts for h in k.by_owner) == len(frame) == sum(h.accounts for h in k.by_segment)
    )
    owners = frame["csm_owner"].fillna(NO_OWNER).value_counts()
    assert {h.group: h.accounts for h in k.by_owner} == owners.to_dict()
    for h in k.by_segment:
        green = h.shares["green"]
        assert h.green_target == ("met" if green > Targets().green_share_above else "missed")
    # The trend: four quarter ends, the last one today's trailing year.
    assert len(k.trend) == 4 and k.trend[-1].as_of == t.date()
    assert k.trend[-1].grr == pytest.approx(k.realised_year.grr)
    assert [q.as_of for q in k.trend] == sorted(q.as_of for q in k.trend)
    html = render_kpis_html(k)
    assert "<svg" in html and "Gross revenue retention" in html
    json.loads(k.model_dump_json())
