"""The CSM pages in a real headless Chromium, against a real server (API key configured)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.browser import browser_page, screenshot
from tests.serving.conftest import KEY

pytestmark = pytest.mark.slow


def sign_in(page, server: str, path: str = "/ui/") -> None:
    page.goto(f"{server}{path}")
    assert "/ui/login" in page.url  # the pages need the key first
    page.fill("#key", "wrong")
    page.click("button[type=submit]")
    assert page.locator("#wrong-key").is_visible()
    page.fill("#key", KEY)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(server + path.split("?")[0])))


def rows(page) -> list[dict]:
    return page.eval_on_selector_all(
        "tr.account-row",
        "rs => rs.map(r => ({id: r.dataset.account, risk: parseFloat(r.dataset.arrAtRisk),"
        " segment: r.querySelector('td.segment').innerText}))",
    )


def test_portfolio_ranks_by_arr_at_risk_and_filters(server, reference):
    with browser_page() as page:
        sign_in(page, server)
        shown = rows(page)
        assert len(shown) == 50  # the first page
        risk = [r["risk"] for r in shown]
        assert risk == sorted(risk, reverse=True)
        want = reference["arr_at_risk_90d"].sort_values(ascending=False)
        assert [r["id"] for r in shown[:5]] == list(want.index[:5])
        assert f"{len(reference)} of {len(reference)} accounts" in page.inner_text("#summary")
        screenshot(page, "portfolio")

        page.select_option("#filter-segment", "mid_market")
        page.click("#apply")
        page.wait_for_url(re.compile(r"segment=mid_market"))
        shown = rows(page)
        n = int((reference["segment"] == "mid_market").sum())
        assert n > 0 and f"{n} of {len(reference)} accounts" in page.inner_text("#summary")
        assert shown and {r["segment"] for r in shown} == {"mid market"}
        mid = reference[reference["segment"] == "mid_market"]
        assert shown[0]["id"] == mid["arr_at_risk_90d"].idxmax()

        page.select_option("#sort", "health_score")
        page.click("#apply")
        page.wait_for_url(re.compile(r"sort=health_score"))
        lowest = reference.loc[rows(page)[0]["id"], "health_score"]
        assert lowest == mid["health_score"].min()  # lowest health first


def test_account_page_shows_drivers_play_and_trends(server, reference):
    with browser_page() as page:
        sign_in(page, server)
        first = page.locator("a.account-link").first
        account = page.locator("tr.account-row").first.get_attribute("data-account")
        first.click()
        page.wait_for_url(re.compile(rf"/ui/accounts/{account}$"))
        ref = reference.loc[account]
        for head in ("churn_90d", "expansion_90d"):
            sentences = page.locator(f"#drivers-{head} tr.driver td:first-child").all_inner_texts()
            assert sentences == [d["sentence"] for d in ref[f"drivers_{head}"]]
            assert page.locator(f"#drivers-{head} .bar").count() == len(sentences)
        assert page.inner_text("#play-title") == ref["play_title"]
        assert page.inner_text("#play-reason") == ref["play_reason"]
        # Four probabilities and the health score, each with a trend line; renewal likelihood
        # too when it has a value now (it may have had one at an earlier date only).
        lines = page.locator("tr.probability svg.spark").count()
        assert 4 + (0 if pd.isna(ref["p_renewal_likelihood"]) else 1) <= lines <= 5
        assert page.locator("#health svg.spark").count() == 1
        if isinstance(ref["disagreement"], str):  # said plainly where model and score disagree
            assert ref["disagreement"] in page.inner_text("#disagreement")
        else:
            assert page.locator("#disagreement").count() == 0
        screenshot(page, "account")

        page.goto(f"{server}/ui/accounts/NOPE")
        assert "No account 'NOPE'" in page.inner_text("#error")
