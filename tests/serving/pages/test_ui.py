"""The CSM pages in a real headless Chromium, against a real server (API key configured)."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from scoring.plays import ScoringConfig, within_capacity
from serving.pages.views import expansion_opportunity, needs_action, worklist_capacity
from tests.browser import browser_page, check_page, screenshot
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


def test_portfolio_opens_on_the_worklist_then_filters_searches_and_exports(server, reference):
    with browser_page() as page:
        sign_in(page, server)
        need = needs_action(reference, ScoringConfig())
        # The worklist: what needs action, within the CSMs' week (the CTAs' capacity).
        week = within_capacity(reference, need, worklist_capacity(), "arr_at_risk_90d")
        work = reference[week]
        assert week.sum() <= need.sum() and not (week & ~need).any()
        shown = rows(page)
        assert 0 < len(work) < len(reference) and len(shown) == min(50, len(work))
        risk = [r["risk"] for r in shown]
        assert risk == sorted(risk, reverse=True)
        want = work["arr_at_risk_90d"].sort_values(ascending=False)
        assert [r["id"] for r in shown[:5]] == list(want.index[:5])
        assert f"{len(work)} of {len(reference)} accounts" in page.inner_text("#summary")
        reason = page.locator("tr.account-row").first.locator(".play-reason").inner_text()
        assert reason == reference.loc[shown[0]["id"], "play_reason"]
        screenshot(page, "portfolio")
        check_page(page)  # no serious axe-core violation; no wider than a phone
        owners = work["csm_owner"].dropna()  # the worklist's load per named CSM
        per = owners[owners != ""].value_counts()
        assert f"{per.min()} to {per.max()} accounts" in page.inner_text("#load")
        assert per.max() <= worklist_capacity()
        beyond = int(need.sum() - week.sum())
        if beyond:
            assert page.inner_text("#beyond").startswith(f"{beyond:,} more need action")
        else:
            assert page.locator("#beyond").count() == 0

        page.click("#view-all")
        page.wait_for_url(re.compile(r"view=all"))
        assert len(rows(page)) == 50
        assert f"{len(reference)} of {len(reference)} accounts" in page.inner_text("#summary")
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

        # CSV of the current filter (every page, not just the one shown).
        csv = page.request.get(server + page.get_attribute("#export", "href"))
        assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
        table = pd.read_csv(io.StringIO(csv.text()))
        assert len(table) == n and set(table["segment"]) == {"mid_market"}
        assert {"play_reason", "leading_reason", "arr_at_risk_90d"} <= set(table.columns)

        # Search by name.
        name = reference["name"].iloc[3]
        page.goto(f"{server}/ui/?view=all&q={name}")
        assert reference.index[3] in [r["id"] for r in rows(page)]
        # A search from the worklist looks over the whole portfolio.
        calm = work.index.symmetric_difference(reference.index)[0]
        page.goto(f"{server}/ui/?q={calm}")
        assert [r["id"] for r in rows(page)] == [calm]
        assert f"1 of {len(reference)} accounts" in page.inner_text("#summary")

        # The expansion view: expected expansion ARR, largest first; filters by play, trigger.
        page.goto(f"{server}/ui/")
        page.click("#view-expansion")
        page.wait_for_url(re.compile(r"view=expansion"))
        opportunity = expansion_opportunity(reference, ScoringConfig())
        grow = reference["expected_expansion_arr_90d"][opportunity]
        got = page.eval_on_selector_all(
            "tr.account-row", "rs => rs.map(r => parseFloat(r.dataset.expansionArr))"
        )
        assert got == sorted(got, reverse=True) and got[0] == pytest.approx(grow.max())
        n = int(opportunity.sum())
        assert 0 < n < len(reference)
        assert f"{n} of {len(reference)} accounts" in page.inner_text("#summary")
        trigger = reference["triggers"].explode().dropna().value_counts().index[0]
        page.select_option("#filter-trigger", trigger)
        page.click("#apply")
        page.wait_for_url(re.compile(rf"trigger={trigger}"))
        want = reference[reference["triggers"].map(lambda t: trigger in t) & opportunity]
        assert f"{len(want)} of {len(reference)} accounts" in page.inner_text("#summary")
        play = want["play"].iloc[0]
        page.goto(f"{server}/ui/?view=expansion&play={play}")
        assert {reference.loc[r["id"], "play"] for r in rows(page)} == {play}

        # My accounts: the owner chosen once is remembered for the link.
        owner = reference["csm_owner"].dropna().iloc[0]
        page.goto(f"{server}/ui/?view=all&owner={owner}")
        page.goto(f"{server}/ui/")
        mine = int((reference["csm_owner"] == owner).sum())
        assert page.inner_text("#view-mine").endswith(f"({mine})")
        page.click("#view-mine")
        page.wait_for_url(re.compile(r"owner="))
        owners = page.eval_on_selector_all("tr.account-row", "rs => rs.map(r => r.dataset.owner)")
        assert set(owners) == {owner} and len(owners) == min(mine, 50)
        assert page.locator("td.owner").first.inner_text() == owner.replace("_", " ")

        # A filter value that is not there is said plainly, not an empty table.
        answer = page.goto(f"{server}/ui/?segment=galactic")
        assert answer.status == 400
        assert "No segment 'galactic'" in page.inner_text("#error")


def test_account_page_shows_drivers_play_and_trends(server, reference):
    with browser_page() as page:
        sign_in(page, server)
        first = page.locator("a.account-link").first
        account = page.locator("tr.account-row").first.get_attribute("data-account")
        first.click()
        page.wait_for_url(re.compile(rf"/ui/accounts/{account}$"))
        ref = reference.loc[account]
        widths = []
        for head in ("churn_90d", "expansion_90d"):
            why = page.locator(f"#why-{head}")
            shown = [r for r in ref[f"reasons_{head}"] if abs(r["effect"]) >= 0.005]
            families = why.locator("li.reason").evaluate_all("ls => ls.map(l => l.dataset.family)")
            assert families == [r["family"] for r in shown]
            evidence = why.locator("li.evidence").all_inner_texts()
            assert evidence == [e["sentence"] for r in shown for e in r["evidence"]]
            assert ref[f"timing_{head}"]["sentence"] in page.inner_text(f"#timing-{head}")
            for r, bar in zip(shown, why.locator("li.reason .bar").all(), strict=True):
                widths.append((abs(r["effect"]), bar.bounding_box()["width"]))
        # One scale across the page: width proportional to the effect, whichever panel.
        if len(widths) > 1:
            (e1, w1), (e2, w2) = max(widths), min(widths)
            assert w2 == pytest.approx(w1 * e2 / e1, abs=1.5)
        assert page.inner_text("#play-title") == ref["play_title"]
        assert page.inner_text("#play-reason") == ref["play_reason"]
        # Four probabilities and the health score, each with a trend line; renewal likelihood
        # too when it has a value now (it may have had one at an earlier date only).
        lines = page.locator("tr.probability svg.spark").count()
        assert 4 + (0 if pd.isna(ref["p_renewal_likelihood"]) else 1) <= lines <= 5
        assert page.locator("#health svg.spark").count() == 1
        if not pd.isna(ref["forecast_health_90d"]):  # "58 expected in 90 days, 45-69"
            row = page.inner_text("#forecast_health_90d")
            low, high = ref["forecast_health_90d_low"], ref["forecast_health_90d_high"]
            assert f"{ref['forecast_health_90d']:.0f}" in row and f"{low:.0f}-{high:.0f}" in row
        if isinstance(ref["disagreement"], str):  # said plainly where model and score disagree
            assert ref["disagreement"] in page.inner_text("#disagreement")
        else:
            assert page.locator("#disagreement").count() == 0
        screenshot(page, "account")
        check_page(page)
        # One way to write dates and codes: "27 Nov 2026", "North America", "csm 024".
        main = page.inner_text("main")
        assert not re.search(r"\d{4}-\d\d-\d\d", main), "an ISO date on the account page"
        assert "_" not in page.inner_text("#identity")

        page.goto(f"{server}/ui/accounts/NOPE")
        assert "No account 'NOPE'" in page.inner_text("#error")
