"""The portfolio's views a CSM uses daily (pure parts): search, expansion, my accounts, formats."""

from __future__ import annotations

import math

import pandas as pd

from features import words as w
from scoring.plays import ScoringConfig
from serving.pages.ui import Query, choices, select, worklist_load
from serving.pages.views import expansion_opportunity

PORTFOLIO = pd.DataFrame(
    {
        "account_id": ["A", "B", "C", "D", "E"],
        "name": ["Acme", "Bolt", "Core", "Dune", "Echo"],
        "health_band": ["red", "green", None, "yellow", "green"],
        "segment": ["smb", "enterprise", "smb", "smb", "mid_market"],
        "csm_owner": ["csm_001", None, "csm_001", "csm_002", "csm_002"],
        "renewal_stage": ["t_minus_90", "not_in_cycle", "t_minus_180", "t_minus_90", "t_minus_60"],
        "alerts": [["usage_decline"], [], [], [], []],
        "triggers": [[], ["seats_over_80"], [], ["seats_over_80", "value_proven"], []],
        "play": ["usage_recovery", "expansion_conversation", "value_review", "value_review", "x"],
        "arr_at_risk_90d": [500.0, 90.0, math.nan, 700.0, 10.0],
        "expected_expansion_arr_90d": [0.0, 9000.0, math.nan, 300.0, 50.0],
        "health_score": [30.0, 90.0, math.nan, 55.0, 80.0],
        "needs_action": [True, False, True, True, False],
        "expansion_opportunity": [False, True, False, True, True],
    }
)


def ids(df: pd.DataFrame) -> list[str]:
    return df["account_id"].tolist()


def test_a_search_looks_over_the_whole_portfolio_not_just_the_worklist():
    # B and E need no action this week: the worklist hides them, a search finds them.
    assert "B" not in ids(select(PORTFOLIO, Query.parse({})))
    assert ids(select(PORTFOLIO, Query.parse({"q": "b"}))) == ["B"]
    assert ids(select(PORTFOLIO, Query.parse({"q": "echo"}))) == ["E"]
    # The filters chosen still apply to the search.
    assert ids(select(PORTFOLIO, Query.parse({"q": "b", "segment": "smb"}))) == []


def test_the_expansion_view_ranks_expected_expansion_arr_and_filters_by_play_and_trigger():
    q = Query.parse({"view": "expansion"})
    assert (q.view, q.sort, q.ascending) == ("expansion", "expected_expansion_arr_90d", False)
    assert ids(select(PORTFOLIO, q)) == ["B", "D", "E"]  # likely expansions and triggers
    q = Query.parse({"view": "expansion", "trigger": "seats_over_80"})
    assert ids(select(PORTFOLIO, q)) == ["B", "D"]
    q = Query.parse({"view": "expansion", "play": "value_review"})
    assert ids(select(PORTFOLIO, q)) == ["D"]
    c = choices(PORTFOLIO)
    assert c["trigger"] == ["seats_over_80", "value_proven"]
    assert c["play"] == ["expansion_conversation", "usage_recovery", "value_review", "x"]
    assert Query.parse({"trigger": "nope"}).problems(c)[0].startswith("No expansion trigger")
    assert q.link(page=2) == (
        "?play=value_review&sort=expected_expansion_arr_90d&view=expansion&order=desc&page=2"
    )
    # An unknown view falls back to the worklist, with its sort.
    q = Query.parse({"view": "galaxy"})
    assert (q.view, q.sort) == ("worklist", "arr_at_risk_90d")


def test_my_accounts_are_the_owners_accounts_worklist_or_not():
    q = Query.parse({"view": "all", "owner": "csm_002"})
    assert ids(select(PORTFOLIO, q)) == ["D", "E"]


def test_numbers_owners_and_changes_read_one_way():
    assert w.signed(-0.3, "%") == "0%" and w.signed(0.2) == "0"  # never "-0%"
    assert w.signed(-3.4, "%") == "-3%" and w.signed(12.6) == "+13"
    assert w.format_value("usage_trend_30d", -0.004) == "0%"
    assert w.format_value("usage_trend_30d", 0.26) == "+26%"
    assert w.format_value("nps_180d", -0.4) == "0"
    assert w.change_words("seat_utilisation", -0.01, "quarter") == "down 1 point over the quarter"
    assert w.change_words("seat_utilisation", 0.12, "year") == "up 12 points over the year"
    assert w.owner("csm_024") == "csm 024" and w.owner(None) == w.TECH_TOUCH
    assert w.owner("") == w.TECH_TOUCH
    assert w.code("north_america") == "North America" and w.code("emea") == "EMEA"
    assert w.play_name("usage_recovery") == "Usage recovery"
    assert w.customer_step("t_minus_90") == w.CUSTOMER_STEPS["t_minus_90"]
    assert w.dated_text("Workflow automated by 2026-03-27") == "Workflow automated by 27 Mar 2026"
    assert w.dated_text("no date 20260327") == "no date 20260327"


def test_an_expansion_opportunity_is_a_likely_expansion_or_a_trigger():
    cfg = ScoringConfig()
    df = pd.DataFrame(
        {
            "p_expansion_90d": [cfg.high_growth_expansion_p90, 0.05, math.nan, 0.01],
            "triggers": [[], ["seats_over_80"], [], []],
        }
    )
    assert expansion_opportunity(df, cfg).tolist() == [True, True, False, False]


def test_the_worklist_load_per_csm():
    # Needs action: A, C (csm_001), D (csm_002); none without a CSM.
    load = worklist_load(PORTFOLIO)
    assert load == {"fewest": 1, "median": 2, "most": 2, "csms": 2, "tech_touch": 0}
    calm = PORTFOLIO.assign(needs_action=False)
    assert worklist_load(calm) is None
    alone = PORTFOLIO.assign(csm_owner=None)
    assert worklist_load(alone)["tech_touch"] == 3 and worklist_load(alone)["csms"] == 0
