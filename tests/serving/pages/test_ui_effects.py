"""The effects pages in a real Chromium: "not yet" before `radar effects --out`, then the figures.

One server start (the session's, ``radar serve --effects DIR``): the pages read the folder on
each visit, so the test writes the saved result between two visits. The result is a real
estimate (econml) on a small confounded table whose accounts are the served ones.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from effects.artefact import read_accounts, read_summary, write_artefact
from effects.config import EffectsConfig
from effects.run import analyse
from features.words import robustness_words
from tests.browser import browser_page, screenshot
from tests.effects.test_estimate import _confounded
from tests.serving.conftest import KEY

pytestmark = pytest.mark.slow


def _sign_in(page, server: str, path: str) -> None:
    page.goto(f"{server}{path}")
    page.fill("#key", KEY)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(server + path)))


def _saved_result(reference, folder, max_accounts: int = 60_000) -> tuple[dict, object, str]:
    """`radar effects --out`'s files for a table whose first accounts are the served ones.

    The play that works is renamed to the recommended play of the first served account, so
    the account page's recommended play has an estimate.
    """
    recommended = str(reference["play"].iloc[0])
    df, _ = _confounded(2400, seed=3)
    served = list(reference.index)
    df.loc[df.index[: len(served)], "account_id"] = served
    # The first served account: idle seats (the cause the play addresses), renewal in 30 days.
    df.loc[0, ["seat_utilisation", "cause_adoption", "days_to_renewal"]] = [0.3, True, 30]
    df["treatment"] = df["treatment"].replace({"adoption_plan": recommended})
    df["rule_play"] = "value_review"
    cfg = EffectsConfig(n_estimators=40, min_treated=50, csms=4, max_accounts=max_accounts)
    report = analyse(df, cfg)
    write_artefact(report, cfg, folder, "test table")
    return read_summary(folder), read_accounts(folder).set_index("account_id"), recommended


def test_effects_pages_before_and_after_a_saved_result(server, served_dirs, reference):
    folder = served_dirs["effects"]
    first = reference.index[0]
    with browser_page() as page:
        _sign_in(page, server, "/ui/effects")
        assert "No effects estimated yet" in page.inner_text("#no-effects")
        assert str(folder) in page.inner_text("#no-effects")
        page.goto(f"{server}/ui/accounts/{first}")
        assert "No effects estimated yet" in page.inner_text("#no-effects")

        summary, accounts, recommended = _saved_result(reference, folder)

        page.goto(f"{server}/ui/effects")
        rows = page.eval_on_selector_all(
            "tr.play-row",
            "rs => rs.map(r => [r.dataset.play, +r.dataset.effect, +r.dataset.low, "
            "+r.dataset.high, +r.dataset.success])",
        )
        expect = [
            [p["play"], p["effect"]["estimate"], p["effect"]["low"], p["effect"]["high"]]
            for p in summary["plays"]
        ]
        assert [r[0] for r in rows] == [e[0] for e in expect]
        np.testing.assert_allclose([r[1:4] for r in rows], [e[1:] for e in expect])
        works = next(p for p in summary["plays"] if p["play"] == recommended)
        assert works["effect"]["high"] < 0  # the play that works, with evidence
        text = page.inner_text("#plays")
        assert "success rate (observed)" in text and "causal effect on churn" in text
        program = summary["program"]["saved_arr"]
        assert program["low"] < program["estimate"] < program["high"]
        assert f"${abs(program['estimate']):,.0f}" in page.inner_text("#program-saved")
        assert "ROI" in page.inner_text("#program-roi")
        segments = page.eval_on_selector_all(
            f"tr.segment-row[data-play={recommended}] td[data-segment]",
            "cs => cs.map(c => c.dataset.segment)",
        )
        assert set(segments) == set(works["by_segment"]) and len(segments) == 3
        assert "no unmeasured confounding" in page.inner_text("#statement")
        # Each play's robustness to unseen confounding, in words, and the fragile ones named.
        cells = page.eval_on_selector_all(
            "tr.play-row td.robustness", "cs => cs.map(c => [c.dataset.robustness, c.innerText])"
        )
        assert len(cells) == len(summary["plays"])
        for p, (value, shown) in zip(summary["plays"], cells, strict=True):
            rv = (p["robustness"] or {}).get("interval")
            assert (float(value) if value else None) == pytest.approx(rv)
            assert shown.strip() == robustness_words(rv)
        assert works["robustness"]["interval"] > 0  # its interval excludes zero
        # The random play on 2,400 rows has propensities too extreme for a bound: a dash.
        k = next(i for i, p in enumerate(summary["plays"]) if p["play"] == "engagement_revival")
        assert summary["plays"][k]["robustness"] is None and cells[k][1].strip() == "–"
        assert "No robustness value for Engagement revival: " in page.inner_text("#no-bound")
        fragile = [
            p for p in summary["plays"] if 0 < (p["robustness"] or {}).get("interval", 0) < 0.01
        ]
        assert page.locator("#fragile").count() == (1 if fragile else 0)
        screenshot(page, "effects-leader")

        # The account page: the recommended play's expected saved ARR with its interval.
        page.goto(f"{server}/ui/accounts/{first}")
        li = page.locator(f"li.play-effect[data-play={recommended}]")
        row = accounts.loc[first]
        assert row[f"evidence_{recommended}"] and row[f"saved_low_{recommended}"] > 0
        assert li.get_attribute("data-evidence") == "yes"
        saved = row[f"saved_arr_{recommended}"]
        assert f"saves ${saved:,.0f} of ARR expected, 90% interval" in li.inner_text()
        assert float(li.get_attribute("data-saved")) == pytest.approx(saved, abs=0.01)
        assert float(li.get_attribute("data-low")) == pytest.approx(
            row[f"saved_low_{recommended}"], abs=0.01
        )
        assert "(recommended)" in li.inner_text()
        assert "fragile" not in li.inner_text()  # robust beyond the 1% bar
        screenshot(page, "account-play-effects")
        # A stricter bar in the saved result: the same play is called fragile on both pages.
        rv = works["robustness"]["interval"]
        assert 0.01 < rv < 0.5
        path = folder / "effects.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "fragile_below": 0.5}))
        page.reload()
        said = "(fragile: the play's effect is robust to unseen confounding only up to "
        assert f"{said}{robustness_words(rv)}; see which plays work)" in li.inner_text()
        page.goto(f"{server}/ui/effects")
        title = page.inner_text(f"tr.play-row[data-play={recommended}] td").split("\n")[0]
        assert f"under 50%): {title} ({robustness_words(rv)})" in page.inner_text("#fragile")
        path.write_text(json.dumps({**json.loads(path.read_text()), "fragile_below": 0.01}))
        page.goto(f"{server}/ui/accounts/{first}")
        # An account whose recommended play has too few records to estimate says so.
        estimated = {p["play"] for p in summary["plays"]}
        other = next(a for a in reference.index if reference.loc[a, "play"] not in estimated)
        page.goto(f"{server}/ui/accounts/{other}")
        li = page.locator(f"li.play-effect[data-play={reference.loc[other, 'play']}]")
        assert li.get_attribute("data-evidence") == "no"
        assert "no evidence yet" in li.inner_text() and "too few records" in li.inner_text()
        page.click("#nav-effects")
        page.wait_for_url(re.compile(r"/ui/effects$"))
        assert page.locator("#sample").count() == 0  # learned from every account

        # Learned from a sample (max_accounts): the page says so; plays count every account.
        sampled, _, _ = _saved_result(reference, folder, max_accounts=1200)
        page.reload()
        assert sampled["accounts"] > 2000 and sampled["accounts_learned"] == 1200
        said = f"a random 1,200 of the {sampled['accounts']:,} accounts"
        assert said in page.inner_text("#sample")
        run = next(p for p in sampled["plays"] if p["play"] == recommended)["treated"]
        cell = page.locator(f"tr.play-row[data-play={recommended}] td").nth(1)
        assert cell.inner_text().strip() == str(run) and run > 100
        screenshot(page, "effects-leader-sample")


def test_without_an_effects_folder_the_pages_say_how_to_fill_one(monkeypatch, tmp_path):
    from serving.pages.effects_views import ENV, account_effects, leader_view

    monkeypatch.delenv(ENV, raising=False)
    view = leader_view()
    assert view["summary"] is None
    assert "No effects estimated yet" in view["message"] and "--effects" in view["message"]
    monkeypatch.setenv(ENV, str(tmp_path))
    (tmp_path / "effects.json").write_text("{}")  # half a result (no accounts file): absent
    shown = account_effects("A1", "value_review")
    assert not shown["available"] and f"Nothing in {tmp_path} yet" in shown["message"]
