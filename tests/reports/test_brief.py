"""The account brief: its figures against the scoring record and the raw tables.

Peer percentiles are recomputed here independently (scipy on the store's snapshot table), ticket
and contact figures from the raw files, and stage statuses from the renewal date.
"""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest
import yaml
from markupsafe import escape
from scipy.stats import percentileofscore

from features import words as w
from features.catalogue import RENEWAL_STAGES
from features.store import SnapshotStore
from reports.brief import (
    BENCHMARKED,
    CONFIG_FILE,
    MIN_PEERS,
    PLACEHOLDERS,
    BriefConfig,
    build_brief,
    default_config,
    fill,
    percentile_rank,
)
from reports.brief_batch import from_raw
from reports.brief_render import render_html, render_markdown
from reports.brief_store import from_store
from scoring.schema import AccountScore
from training.registry import ScoringModel

TYPES = ("at_risk", "strategic", "growth_oriented", "satisfied_stable")


@pytest.fixture(scope="module")
def briefs_input(trained, long_data, long_features):
    """(portfolio, records by id) of `radar brief`'s path at the store's latest date."""
    as_of = pd.Timestamp(
        json.loads((long_features / "manifest.json").read_text())["as_of_dates"][-1]
    )
    model = ScoringModel(trained[1].bundle, uri="x", name="renewal-radar", version="1")
    portfolio, records = from_raw(long_data, as_of, model)
    return portfolio, {r["account_id"]: r for r in records}


def one_of_each_type(records: dict) -> dict[str, dict]:
    out = {}
    for r in records.values():
        out.setdefault(r["customer_type"], r)
    return out


def test_every_type_stage_and_play_has_a_track_with_every_placeholder_filled():
    cfg = default_config()
    figures = {p: f"<{p}>" for p in PLACEHOLDERS}
    for kind, stage, play in itertools.product(TYPES, RENEWAL_STAGES, w.PLAYS):
        track = cfg.talk_tracks
        for text in (
            track.customer_types[kind].approach,
            track.renewal_stages[stage],
            track.plays[play],
        ):
            filled = fill(text, figures)
            assert "{" not in filled and filled
    used = set()
    for text in [
        *(t.approach for t in cfg.talk_tracks.customer_types.values()),
        *cfg.talk_tracks.renewal_stages.values(),
        *cfg.talk_tracks.plays.values(),
    ]:
        used |= {p for p in PLACEHOLDERS if "{" + p + "}" in text}
    assert used == set(PLACEHOLDERS)  # no placeholder computed for nothing
    stages = [s.stage for s in cfg.renewal_stages]
    assert stages == [
        "t_minus_180",
        "t_minus_120",
        "t_minus_90",
        "t_minus_60",
        "t_minus_30",
        "t_plus_30",
    ]


def test_the_configuration_refuses_unknown_placeholders_and_missing_texts(tmp_path):
    raw = yaml.safe_load(CONFIG_FILE.read_text())
    raw["talk_tracks"]["plays"]["value_review"] = "Ask about {roi_figure}."
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"unknown placeholder.*roi_figure"):
        BriefConfig.load(bad)
    del raw["talk_tracks"]["plays"]["value_review"]
    raw["talk_tracks"]["plays"].pop("advocacy_ask")
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="advocacy_ask"):
        BriefConfig.load(bad)


@pytest.mark.parametrize(
    "value,peers",
    [(0.5, [0.1, 0.5, 0.5, 0.9]), (3.0, [1.0, 2.0]), (-1.0, [0.0, 1.0]), (7.0, [7.0, 7.0, 7.0])],
)
def test_percentile_rank_is_scipys_mean_kind(value, peers):
    import numpy as np

    assert percentile_rank(value, np.array(peers)) == pytest.approx(
        percentileofscore(peers, value, kind="mean")
    )


def test_brief_sections_match_the_record_and_the_raw_tables(briefs_input, long_data, long_features):
    portfolio, records = briefs_input
    picked = one_of_each_type(records)
    assert set(picked) == set(TYPES), set(picked)  # the small world has every customer type
    store = SnapshotStore.open(long_features)
    snaps = store.snapshots()
    today = snaps[snaps["as_of"] == portfolio.as_of]
    tickets = pd.read_parquet(long_data / "support_tickets.parquet")
    contacts = pd.read_parquet(long_data / "contacts.parquet")
    tested_benchmarks = tested_small = outlooks = 0
    for kind, record in picked.items():
        AccountScore.model_validate(record)
        b = build_brief(record, portfolio)
        me = today[today["account_id"] == record["account_id"]].iloc[0]
        assert b.customer_type == kind and b.talk.customer_type == kind
        # Value delivered: the snapshot's figures, the seat and feature counts behind them.
        fig = {f.metric: f for f in b.value.figures}
        assert fig["seat_utilisation"].value == pytest.approx(me["seat_utilisation"], nan_ok=True)
        assert b.value.seats_purchased == me["seats"]
        if pd.notna(me["seat_utilisation"]):
            assert b.value.seats_used == round(me["seats"] * me["seat_utilisation"])
        assert b.value.features_used == me["features_used_30d"]
        mine_snaps = snaps[
            (snaps["account_id"] == record["account_id"])
            & (snaps["as_of"] >= portfolio.as_of - pd.DateOffset(months=12))
            & (snaps["as_of"] <= portfolio.as_of)
        ]
        assert len(fig["seat_utilisation"].series) == len(mine_snaps) <= 13  # the year, monthly
        year_ago = snaps[
            (snaps["account_id"] == record["account_id"])
            & (snaps["as_of"] <= portfolio.as_of - pd.DateOffset(months=12))
        ]
        if len(year_ago):
            want = year_ago.sort_values("as_of")["nps_180d"].iloc[-1]
            assert fig["nps_180d"].year_ago == pytest.approx(want, nan_ok=True) or (
                pd.isna(want) and fig["nps_180d"].year_ago is None
            )
        # Benchmarks: percentile among the other accounts of the segment and tier that day.
        peers = today[
            (today["segment"] == me["segment"])
            & (today["plan_tier"] == me["plan_tier"])
            & (today["account_id"] != me["account_id"])
        ]
        for x in b.benchmarks:
            assert x.metric in BENCHMARKED
            values = peers[x.metric].dropna().astype(float).to_numpy()
            assert x.peers == len(values)
            if len(values) < MIN_PEERS or pd.isna(me[x.metric]):
                assert x.percentile is None
                tested_small += len(values) < MIN_PEERS
            else:
                want = percentileofscore(values, float(me[x.metric]), kind="mean")
                assert x.percentile == pytest.approx(want)
                assert w.ordinal(int(want + 0.5)) in x.sentence and str(len(values)) in x.sentence
                tested_benchmarks += 1
        # Risks: the record's reasons, in the account page's words.
        assert b.risks.play_reason == record["play_reason"]
        assert b.risks.p_churn_90d == record["p_churn_90d"]
        assert b.risks.timing["churn_90d"] == record["timing"]["churn_90d"]["sentence"]
        titles = [r["title"] for r in record["reasons"]["churn_90d"] if r["effect"] >= 0.005]
        assert [r.title for r in b.risks.churn] == titles
        assert b.risks.alerts == [w.alert_words(a) for a in record["alerts"]]
        # Renewal plan: date, amount and stage from the record; status from the dates.
        assert b.renewal.renewal_date == record["renewal_date"]
        assert b.renewal.amount == record["arr"]
        if record["renewal_date"] is not None:
            for s in b.renewal.stages:
                cfg = next(c for c in default_config().renewal_stages if c.stage == s.stage)
                end = pd.Timestamp(record["renewal_date"])
                if record["renewal_stage"] == "t_plus_30" and cfg.to_days < 0:
                    end = pd.Timestamp(s.starts)  # dated from the renewal just passed
                    assert portfolio.as_of - end < pd.Timedelta(days=30)
                starts = end - pd.Timedelta(days=cfg.from_days)
                ends = end - pd.Timedelta(days=cfg.to_days)
                t = portfolio.as_of
                want = "overdue" if t >= ends else "due" if t >= starts else "upcoming"
                assert s.status == w.TASK_STATUS[want]
            if record["renewal_stage"] in [c.stage for c in default_config().renewal_stages]:
                due = [s.stage for s in b.renewal.stages if s.status == w.TASK_STATUS["due"]]
                assert due == [record["renewal_stage"]]  # the plan's clock is the feature's
        # Talk track: the type's, stage's and play's texts with the account's own figures.
        assert b.talk.play == record["play"]
        tracks = default_config().talk_tracks
        stage = record["renewal_stage"] or "not_in_cycle"
        # The figures a placeholder stands for, from the record and the snapshot table.
        known = {
            "name": record["name"],
            "arr": w.money(record["arr"]),
            "churn_90d": w.pct(record["p_churn_90d"]),
            "expansion_90d": w.pct(record["p_expansion_90d"]),
            "seat_use": w.format_value("seat_utilisation", me["seat_utilisation"]),
            "nps": w.format_value("nps_180d", me["nps_180d"]),
            "renewal_date": w.day(record["renewal_date"]) if record["renewal_date"] else None,
        }
        for template, text in (
            (tracks.customer_types[kind].approach, b.talk.approach),
            (tracks.renewal_stages[stage], b.talk.stage_line),
            (tracks.plays[record["play"]], b.talk.ask),
        ):
            assert "{" not in text
            for name, value in known.items():
                if "{" + name + "}" in template and value is not None:
                    assert value in text, (name, value, text)
        # Who: contacts and tickets as the raw tables have them at the date.
        mine = contacts[
            (contacts["account_id"] == record["account_id"])
            & (contacts["start_date"] <= portfolio.as_of)
        ]
        assert sorted(c.contact_id for c in b.who.contacts) == sorted(mine["contact_id"])
        current = mine[mine["end_date"].isna() | (mine["end_date"] > portfolio.as_of)]
        assert b.who.champion == (current["role"] == "champion").any()
        assert b.who.sponsor == (current["role"] == "executive_sponsor").any()
        t = tickets[
            (tickets["account_id"] == record["account_id"])
            & (tickets["created_date"] <= portfolio.as_of)
        ]
        still_open = t["resolved_date"].isna() | (t["resolved_date"] > portfolio.as_of)
        for sev in w.SEVERITY_ORDER:
            assert b.who.open_by_severity[sev] == int((still_open & (t["severity"] == sev)).sum())
        recent = t["created_date"] > portfolio.as_of - pd.Timedelta(days=90)
        assert len(b.who.tickets) == int((still_open | recent).sum())
        # The words of each format carry the sections and the figures.
        html, md = render_html(b), render_markdown(b)
        for title in w.BRIEF_SECTIONS.values():
            assert title in html and f"## {title}" in md
        assert b.risks.play_reason in md
        assert "<svg" in html and "<path" in html  # charts by matplotlib, inline
        if pd.notna(record.get("forecast_health_90d")):  # "70 now, 58 expected in 90 days"
            assert b.outlook.startswith(
                f"Health {record['health_score']:.0f} now, "
                f"{record['forecast_health_90d']:.0f} expected in 90 days"
            )
            assert f"{b.outlook}." in md and b.outlook in html
            outlooks += 1
    assert tested_benchmarks > 0 and outlooks > 0


def test_the_service_path_gives_the_same_brief(briefs_input, long_features):
    portfolio, records = briefs_input
    store = SnapshotStore.open(long_features)
    served = from_store(store, portfolio.as_of)
    for record in one_of_each_type(records).values():
        a = build_brief(record, portfolio).model_dump()
        b = build_brief(record, served).model_dump()
        assert a == b


def test_the_customer_brief_leaves_out_the_internal_parts_and_keeps_the_customers(briefs_input):
    """`--audience customer`: no risk, model points, play, talk track or internal task."""
    portfolio, records = briefs_input
    for record in one_of_each_type(records).values():
        b = build_brief(record, portfolio)
        internal = [
            b.risks.play_title,
            b.risks.play_reason,
            b.talk.approach,
            b.talk.ask,
            b.talk.type_title,
            b.model_version,
            *(t for s in b.renewal.stages for t in s.tasks),
            *(e for r in [*b.risks.churn, *b.risks.expansion] for e in r.evidence),
            "churn",
            "renewal likelihood",
            "points on the",
            "health",
        ]
        html_and_md = (
            (render_html(b, audience="customer"), lambda t: str(escape(t))),
            (render_markdown(b, audience="customer"), str),
        )
        for page, esc in html_and_md:
            page = page[max(page.find("<main>"), 0) :]  # the text, not the style sheet
            text = page.lower()
            for phrase in internal:
                assert esc(phrase).lower() not in text, phrase
            for k in ("risks", "talk", "who", "renewal"):
                title = w.BRIEF_SECTIONS[k]
                assert f"<h2>{title}</h2>" not in page and f"## {title}\n" not in page
            for section in w.CUSTOMER_SECTIONS.values():
                assert section in page
            for x in b.benchmarks:  # each benchmark with its peer count
                assert esc(x.sentence) in page
            for m in b.value.milestones:
                assert esc(w.dated_text(m.milestone)) in page
            for f in b.value.figures:
                assert esc(f.text) in page
            if b.renewal.renewal_date:
                assert w.day(b.renewal.renewal_date) in page
        # The internal brief keeps them.
        assert str(escape(b.risks.play_reason)) in render_html(b)
    with pytest.raises(ValueError, match="unknown audience"):
        render_html(b, audience="board")
