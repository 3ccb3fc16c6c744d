"""Issue 29's talk-track findings, reproduced on small inputs and now passing (pure functions)."""

from __future__ import annotations

import pandas as pd

from features import words as w
from reports.brief import Portfolio, answers, default_config, fill


def test_no_value_proven_claim_and_nps_and_csat_with_their_counts():
    # Found: "now that NPS is +67 and the value is proven" with 0 milestones, from 3 answers.
    ask = default_config().talk_tracks.plays["advocacy_ask"]
    assert "proven" not in ask and "{milestones_achieved}" in ask
    assert w.with_base("+67", 3, "answer") == "+67 from 3 answers"
    assert w.with_base("4.0", 1, "rating") == "4.0 from 1 rating"
    assert w.with_base("no data", 0, "answer") == "no data"
    assert w.with_base("+67", None, "answer") == "+67"  # no NPS table: absent, not "0 answers"
    t = pd.Timestamp("2026-11-30")
    raw = {
        "nps_responses": pd.DataFrame(
            {
                "account_id": ["A1"] * 4,
                "date": pd.to_datetime(["2026-11-01", "2026-07-01", "2026-03-01", "2026-11-29"]),
                "score": [10, 9, 3, 10],
            }
        ),
        "support_tickets": pd.DataFrame(
            {
                "account_id": ["A1"] * 3,
                "resolved_date": pd.to_datetime(["2026-11-20", None, "2026-05-01"]),
                "csat": [5, None, 4],
            }
        ),
    }
    assert answers(Portfolio(t, pd.DataFrame(), raw), "A1") == (3, 1)
    assert answers(Portfolio(t, pd.DataFrame(), {}), "A1") == (None, None)


def test_no_sponsor_introduction_asked_where_a_sponsor_is_on_record():
    # Found: "an introduction to an executive sponsor" beside a Who section showing a sponsor.
    track = default_config().talk_tracks.plays["executive_outreach"]
    figures = {"outreach_ask": w.outreach_ask(True, False), "sponsor": "yes", "champion": "no"}
    text = fill(track, figures)
    assert "introduction to an executive sponsor" not in text
    assert "introduction to a champion, through the executive sponsor" in text
    assert "introduction to an executive sponsor" in w.outreach_ask(False, True)
    assert "introduction" not in w.outreach_ask(True, True)
