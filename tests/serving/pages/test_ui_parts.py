"""The CSM pages' pure parts: query parsing, filtering and sorting, trend lines, formats."""

from __future__ import annotations

import math

import pandas as pd

from features.words import code as words
from features.words import money, pct
from serving.pages.ui import Query, choices, select, sparkline

PORTFOLIO = pd.DataFrame(
    {
        "account_id": ["A", "B", "C", "D"],
        "name": ["Acme", "Bolt", "Core", "Dune"],
        "health_band": ["red", "green", None, "yellow"],
        "segment": ["smb", "enterprise", "smb", "smb"],
        "csm_owner": ["ann", None, "ann", "bo"],
        "renewal_stage": ["t_minus_90", "not_in_cycle", "t_minus_180", "t_minus_90"],
        "alerts": [["usage_decline"], [], ["usage_decline", "sponsor_lost"], []],
        "arr_at_risk_90d": [500.0, 9000.0, math.nan, 700.0],
        "health_score": [30.0, 90.0, math.nan, 55.0],
        "needs_action": [True, False, True, True],
    }
)
ALL = {"view": "all"}


def ids(df: pd.DataFrame) -> list[str]:
    return df["account_id"].tolist()


def test_default_is_the_worklist_by_arr_at_risk_descending_with_missing_last():
    q = Query.parse({})
    assert (q.sort, q.ascending, q.page, q.view) == ("arr_at_risk_90d", False, 1, "worklist")
    assert ids(select(PORTFOLIO, q)) == ["D", "A", "C"]  # B needs no action this week
    assert ids(select(PORTFOLIO, Query.parse(ALL))) == ["B", "D", "A", "C"]


def test_search_by_name_or_id_any_case():
    assert ids(select(PORTFOLIO, Query.parse(ALL | {"q": "BOL"}))) == ["B"]
    assert ids(select(PORTFOLIO, Query.parse(ALL | {"q": "cOr"}))) == ["C"]  # name Core
    assert ids(select(PORTFOLIO, Query.parse(ALL | {"q": "zzz"}))) == []


def test_bad_filter_values_are_answered_with_a_message():
    options = choices(PORTFOLIO)
    assert Query.parse({"segment": "smb"}).problems(options) == []
    (message,) = Query.parse({"segment": "galactic"}).problems(options)
    assert message == "No segment 'galactic' in this portfolio; choose one of: enterprise, smb"
    assert Query.parse({"alert": "nope"}).problems(options)[0].startswith("No alert 'nope'")


def test_filters_combine_and_alerts_match_any_listed():
    q = Query.parse(ALL | {"segment": "smb", "owner": "ann", "alert": "sponsor_lost"})
    assert ids(select(PORTFOLIO, q)) == ["C"]
    assert ids(select(PORTFOLIO, Query.parse(ALL | {"band": "yellow"}))) == ["D"]


def test_health_sorts_worst_first_and_bad_parameters_fall_back():
    q = Query.parse(ALL | {"sort": "health_score"})
    assert ids(select(PORTFOLIO, q)) == ["A", "D", "B", "C"]
    q = Query.parse({"sort": "drop table", "page": "x", "order": "sideways"})
    assert (q.sort, q.page, q.ascending) == ("arr_at_risk_90d", 1, False)
    assert Query.parse({"page": "-3"}).page == 1


def test_links_keep_the_query_and_change_one_thing():
    q = Query.parse({"segment": "smb", "sort": "health_score"})
    assert q.link(page=2) == "?segment=smb&sort=health_score&order=asc&page=2"


def test_choices_list_stages_in_catalogue_order():
    c = choices(PORTFOLIO)
    assert c["stage"] == ["not_in_cycle", "t_minus_180", "t_minus_90"]  # catalogue order
    assert c["owner"] == ["ann", "bo"] and c["alert"] == ["sponsor_lost", "usage_decline"]


def test_sparkline_skips_missing_values_and_marks_the_last():
    svg = sparkline([0.1, None, 0.3, 0.2], width=90, height=20)
    points = svg.split('points="')[1].split('"')[0].split()
    assert len(points) == 3 and points[0].startswith("0.0,") and points[-1].startswith("90.0,")
    assert 'cx="90.0"' in svg
    assert sparkline([None, math.nan]) == ""
    assert "polyline" in sparkline([5.0, 5.0])  # a flat line, no division by zero


def test_formats():
    assert money(1234567.4) == "$1,234,567" and money(None) == "–" and money(math.nan) == "–"
    assert pct(0.123) == "12%" and pct(0.004) == "0.4%" and pct(None) == "–"
    assert words("t_minus_90") == "T-90" and words("mid_market") == "mid market"
    assert words(None) == "–" and words("t_plus_30") == "T+30 (post-renewal)"
    assert words("emea") == "EMEA" and words("north_america") == "North America"


def test_sorting_by_a_head_the_model_lacks_leaves_the_order_never_fails():
    q = Query.parse({**ALL, "sort": "p_churn_90d"})  # a known sort, absent from these rows
    assert q.sort == "p_churn_90d"
    assert ids(select(PORTFOLIO, q)) == ["A", "B", "C", "D"]
