"""Absent is absent, without a server: each head dropped in turn, and a portfolio without a table.

Records, the portfolio summary, the brief and the KPIs of the suite's model stripped of one
head at a time (issue 33): the money fields are there and missing, never $0 or NaN in words,
and nothing raises. The served walk over a store lacking tables is tests/serving/
test_absent_walk.py.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from features.catalogue import CHURN_HEAD, HORIZONS, LABELS
from features.store import SnapshotStore, missing_inputs, with_context
from reports.brief import build_brief
from reports.brief_render import render_markdown
from reports.brief_store import from_store
from reports.kpis import compute_kpis, render_kpis_html
from scoring.plays import ScoringConfig, recommend
from scoring.records import Rows, portfolio_summary, score_rows
from scoring.schema import AccountScore, api_records
from training.registry import ScoringModel

SAMPLE = 4  # briefs rendered per dropped head (each is its own account's arithmetic)
ROWS = 200  # accounts scored: the records' arithmetic is per row, the sums need a few


@pytest.fixture(scope="module")
def served(trained, long_features):
    """(store's latest rows, the brief's portfolio) of the suite's store."""
    store = SnapshotStore.open(long_features)
    as_of = pd.Timestamp(
        json.loads((long_features / "manifest.json").read_text())["as_of_dates"][-1]
    )
    snaps = store.snapshots()
    latest = snaps[snaps["as_of"] == as_of].head(ROWS).reset_index(drop=True)
    return store, latest, from_store(store, as_of)


def _without(trained, heads: set[str]) -> ScoringModel:
    bundle = trained[1].bundle
    kept = {h: v for h, v in bundle.heads.items() if h not in heads}
    return ScoringModel(dataclasses.replace(bundle, heads=kept), uri="x", name="m", version="1")


def _columns(store: SnapshotStore, latest: pd.DataFrame, model: ScoringModel) -> dict:
    """The service's scoring columns of the store's latest rows (as score_store_rows)."""
    as_of = pd.Timestamp(latest["as_of"].max())
    context = store.context()
    rows = Rows.from_frame(with_context(latest, context), model.bundle)
    missing = missing_inputs(context, store.absent_tables, latest["account_id"], as_of)
    return score_rows(
        rows, model, ScoringConfig(), missing=missing, uplift=store.expansion_uplift(as_of)
    )


def _words_clean(text: str) -> None:
    plain = " ".join(re.sub(r"<[^>]+>", " ", text).split())  # what a reader sees
    assert not re.search(r"\$0(?![\d,.])", plain), plain[:3000]
    assert not re.search(r"\bnan\b|\bNone\b", plain), plain[:3000]


@pytest.mark.parametrize("dropped", LABELS)
def test_each_head_dropped_leaves_records_summary_brief_and_kpis_whole(trained, served, dropped):
    store, latest, portfolio = served
    model = _without(trained, {dropped})
    assert dropped not in model.bundle.heads
    columns = _columns(store, latest, model)
    records = pd.DataFrame(columns)
    summary = portfolio_summary(records)
    assert records[f"p_{dropped}"].isna().all() if f"p_{dropped}" in records else True
    for h in HORIZONS:  # the money fields are always there: missing without the head
        assert f"arr_at_risk_{h}d" in records and f"expected_expansion_arr_{h}d" in records
    if dropped.startswith("churn_"):
        h = int(dropped.split("_")[1].removesuffix("d"))
        assert records[f"arr_at_risk_{h}d"].isna().all()
        assert summary["all"][f"expected_churned_arr_{h}d"] is None  # never $0
        if dropped == CHURN_HEAD:
            assert summary["all"]["expected_grr_next_quarter"] is None
            assert not records["play_reason"].str.contains("nan").any()
    else:
        assert summary["all"]["expected_churned_arr_90d"] > 0
    for r in api_records(columns, list(model.bundle.heads))[:SAMPLE]:
        AccountScore.model_validate(r)  # the API's schema holds: a null, not a 500
        assert r[f"p_{dropped}"] is None
        _words_clean(render_markdown(build_brief(r, portfolio)))
    kpis = compute_kpis(records, portfolio)
    if dropped == CHURN_HEAD:
        assert kpis.expected_quarter.churn_rate is None and kpis.expected_quarter.grr is None
    _words_clean(render_kpis_html(kpis))


def test_kpis_without_subscriptions_realise_nothing_and_still_expect(trained, served):
    store, latest, portfolio = served
    records = pd.DataFrame(_columns(store, latest, _without(trained, set())))
    bare = dataclasses.replace(
        portfolio, raw={k: v for k, v in portfolio.raw.items() if k != "subscriptions"}
    )
    kpis = compute_kpis(records, bare)  # was: TypeError 'NoneType' object is not subscriptable
    year = kpis.realised_year
    assert year.accounts == 0 and year.grr is None and year.nrr is None and year.start_arr is None
    assert all(q.grr is None for q in kpis.trend)
    assert kpis.expected_quarter.grr is not None  # the records still have ARR
    _words_clean(render_kpis_html(kpis))


def test_summary_of_accounts_without_arr_or_heads_is_none_never_zero():
    frame = pd.DataFrame(
        {
            "segment": ["smb", "smb", "enterprise"],
            "arr": [np.nan, np.nan, 1000.0],
            "arr_at_risk_90d": [np.nan, np.nan, 100.0],
            "health_band": ["red", None, "green"],
            "play": ["value_review"] * 3,
            "disagreement": [None] * 3,
        }
    )
    s = portfolio_summary(frame)
    assert s["smb"]["arr"] is None and s["smb"]["expected_churned_arr_90d"] is None
    assert s["all"]["arr"] == 1000.0 and s["all"]["expected_churned_arr_90d"] == 100.0
    assert s["all"]["expected_grr_next_quarter"] == pytest.approx(0.9)
    # The model lacks the 30-day and the expansion heads: none, not 0; NRR needs expansion.
    assert s["all"]["expected_churned_arr_30d"] is None
    assert s["all"]["expected_expansion_arr_90d"] is None
    assert s["all"]["expected_nrr_next_quarter"] is None


def test_a_play_without_churn_or_expansion_probability_says_so():
    common = dict(
        band="green",
        at_risk=False,
        renewal_stage=None,
        alerts=[],
        nps_latest=None,
        leading=None,
        cfg=ScoringConfig(),
    )
    play, why = recommend(
        health=50.0, churn_p90=float("nan"), expansion_p90=0.5, triggers=[], **common
    )
    assert "nan" not in why and "no 90-day churn estimate" in why
    play, why = recommend(
        health=95.0,
        churn_p90=0.01,
        expansion_p90=float("nan"),
        triggers=["seats_over_80"],
        **common,
    )
    assert play == "expansion_conversation" and "nan" not in why
    assert why == "Healthy and ready to grow: more than 80% of seats in use."
