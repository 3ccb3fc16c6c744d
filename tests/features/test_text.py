"""Ticket and survey text: the contract's text columns, the generator's text, the analyser,
the text features, the negative-sentiment alert and its words."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from features.catalogue import TEXT_FEATURES, TEXT_TOPICS
from features.config import FeatureConfig
from features.contract import load_dataset
from features.engine import compute
from features.leakage import differences
from features.pipeline import run_features
from features.reference import reference_features
from features.snapshots import active_snapshots, as_of_dates
from features.synthetic.dataset import generate_dataset
from features.synthetic.process import SyntheticConfig
from features.synthetic.text import TextConfig as WorldText
from features.text import (
    TextConfig,
    fit_topic_classifier,
    sentiment,
    text_signals,
    tones,
    topic_codes,
    topic_masks,
)
from features.words import alert_sentence, format_value, sentiment_sentence

CFG = TextConfig()


def test_sentiment_reads_english_and_leaves_the_rest_unread():
    texts = [
        "This is really frustrating. The export fails again and nobody fixes it.",
        "Thanks for the great support, we love the product!",
        "Hi team, could you check the invoice for March?",
        "",
        "   ",
        None,
        "Die Rechnung ist falsch, bitte prüfen Sie die Anzahl der Lizenzen.",  # "die": -2.9
        "El informe no se carga desde ayer, por favor revisen.",
        "Die Rechnung",
        "平台一直很慢",
    ]
    s = sentiment(texts, CFG)
    t = tones(s, CFG)
    assert t[0] == 0 and t[1] == 2 and t[2] == 1  # frustrated, pleased, neutral
    assert np.isnan(s[3:]).all()  # empty, blank, missing, foreign: not read...
    assert (t[3:] == -1).all()  # ... and never counted as frustrated


def test_topics_by_keyword_configurable_and_by_a_classifier():
    texts = ["Our invoice was charged twice", "The dashboard is slow", "Moving to Acme", None, ""]
    m = topic_masks(texts, CFG)
    assert m[0] == 1 << TEXT_TOPICS.index("billing")
    assert m[1] == 1 << TEXT_TOPICS.index("performance")
    assert m[2] == 0 and m[3] == 0 and m[4] == 0
    named = TextConfig(competitors=("Acme",))
    assert topic_masks(texts, named)[2] == 1 << TEXT_TOPICS.index("competitor")
    with pytest.raises(ValueError, match="unknown text topics"):
        TextConfig(topics={"weather": ("rain",)})
    train = ["invoice wrong", "charged twice on the invoice", "report is slow", "slow dashboard"]
    clf = fit_topic_classifier(train * 2, ["billing", "billing", "performance", "performance"] * 2)
    got = topic_codes(["the invoice again", "so slow today", ""], CFG, clf)
    assert list(got) == [1, 1 << TEXT_TOPICS.index("performance"), 0]


def test_signals_of_tickets_without_body_or_with_subject_only():
    tickets = pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A2"],
            "created_date": pd.to_datetime(["2025-01-02", "2025-01-03", "2025-01-04"]),
            "subject": ["Terrible, broken export", None, "Invoice"],
            "body": ["", None, "Hello, the invoice lists 40 seats, we have 30. Could you look?"],
        }
    )
    s = text_signals(tickets, None, CFG)
    assert list(s["read"]) == [True, False, True]
    assert list(s["negative"]) == [True, False, False]  # the empty one: not negative
    assert s.loc[2, "topics"] == 1 << TEXT_TOPICS.index("billing")


def test_words_quote_counts_never_guesses():
    assert (
        sentiment_sentence(3, 5, 0b11)
        == "3 of 5 tickets this month read as frustrated: billing, bugs"
    )
    assert sentiment_sentence(0, 1, 0) == "0 of 1 ticket this month read as frustrated"
    assert sentiment_sentence(np.nan, 0, np.nan) == "No ticket this month has readable text"
    assert format_value("negative_ticket_trend_90d", 0.25) == "+25 points"
    assert format_value("negative_topics_30d", 0b1000010) == "bugs, competitor"


@pytest.fixture(scope="module")
def text_world(small_dataset, tmp_path_factory):
    """The small dataset's world (same size and seed) with text, and its features."""
    root = tmp_path_factory.mktemp("text")
    cfg = SyntheticConfig(text=WorldText(enabled=True))
    generate_dataset(root / "data", accounts=300, months=12, seed=11, cfg=cfg)
    run = run_features(root / "data", root / "features", FeatureConfig(product_feature_columns=0))
    return root, run


def test_generated_text_changes_nothing_else_and_follows_the_truth(small_dataset, text_world):
    root, _ = text_world
    data = root / "data"
    for name in ("support_tickets", "nps_responses", "accounts", "subscriptions", "usage"):
        before = pd.read_parquet(small_dataset / f"{name}.parquet")
        after = pd.read_parquet(data / f"{name}.parquet")
        assert before.equals(after[before.columns]), name  # only the text columns are new
    tickets = pd.read_parquet(data / "support_tickets.parquet")
    assert tickets["body"].notna().all() and tickets["subject"].notna().all()
    truth = pd.read_parquet(data / "ground_truth" / "text_truth.parquet")
    t = truth[truth["kind"] == "ticket"].set_index("ticket_id").loc[tickets["ticket_id"]]
    assert set(t["topic"]) == set(TEXT_TOPICS)
    # The tone follows the latent state: tickets of accounts in worse health read worse.
    lat = pd.read_parquet(data / "ground_truth" / "latent_monthly.parquet")
    month = tickets["created_date"].dt.to_period("M").dt.to_timestamp()
    h = tickets.assign(month=month).merge(lat, on=["account_id", "month"], how="left")["health"]
    frustrated = (t["tone"] == "frustrated").to_numpy()
    assert h[frustrated].mean() < h[~frustrated].mean() - 0.3
    s = text_signals(tickets, None, TextConfig())
    read = s["read"].to_numpy()
    agree = (s["negative"].to_numpy() == frustrated)[read].mean()
    assert agree > 0.8  # the analyser reads the generator's tone
    assert 0.9 < read.mean() < 1.0  # some texts are empty or in another language


def test_text_features_and_the_negative_sentiment_alert(text_world):
    root, run = text_world
    snaps = run.snapshots
    assert run.manifest["text_features"] is True
    assert snaps["negative_ticket_share_90d"].notna().mean() > 0.3
    assert (snaps["competitor_mentions_90d"] > 0).any()
    fired = snaps[snaps["alert_negative_sentiment"]]
    assert len(fired) > 5
    # Recount one alert from the raw tickets and the analyser: the sentence quotes the counts.
    row = fired.iloc[0]
    tickets = pd.read_parquet(root / "data" / "support_tickets.parquet")
    mine = tickets[tickets["account_id"] == row["account_id"]]
    age = (row["as_of"] - mine["created_date"]).dt.days
    window = mine[(age >= 0) & (age < 30)]
    s = text_signals(window, None, TextConfig())
    neg, read = int(s["negative"].sum()), int(s["read"].sum())
    assert (neg, read) == (row["negative_tickets_30d"], row["read_tickets_30d"])
    assert read >= 3 and neg / read >= 0.5
    sentence = alert_sentence("negative_sentiment", row.to_dict())
    assert sentence.startswith(f"{neg} of {read} tickets this month read as frustrated: ")
    topics = np.bitwise_or.reduce(s.loc[s["negative"], "topics"].to_numpy())
    assert int(row["negative_topics_30d"]) == topics


def test_engine_matches_the_reference_on_text(text_world):
    root, _ = text_world
    ds = load_dataset(root / "data")
    cfg = FeatureConfig(product_feature_columns=0)
    dates = as_of_dates(ds, cfg)[-3:]  # three month ends: windows full, rows of every kind
    snaps = active_snapshots(ds, dates)
    engine, _ = compute(ds, snaps, cfg)
    reference = reference_features(ds, snaps, cfg)
    assert differences(engine, reference, list(TEXT_FEATURES)) == {}
    assert engine["negative_topics_30d"].max() > 0 and engine["topics_mentioned_90d"].max() > 1


def test_data_without_text_works_as_before(long_features):
    snaps = pd.read_parquet(long_features / "snapshots.parquet")
    manifest = json.loads((long_features / "manifest.json").read_text())
    assert manifest["text_features"] is False
    assert snaps[list(TEXT_FEATURES)].isna().all().all()
    assert not snaps["alert_negative_sentiment"].any()


def test_a_second_build_reads_no_text_and_builds_the_same_features(text_world, caplog):
    root, _ = text_world
    kept = root / "data" / ".radar" / "text_readings.parquet"
    assert kept.exists()  # the fixture's build kept its readings in the data folder
    ds = load_dataset(root / "data")
    snaps = active_snapshots(ds, as_of_dates(ds, FeatureConfig())[-1:])
    with caplog.at_level(logging.INFO, logger="features.text"):
        warm, _ = compute(ds, snaps, FeatureConfig(product_feature_columns=0))
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("texts: ")]
    assert len(said) == 1 and said[0].startswith("texts: 0 read, ")
    before = kept.stat().st_mtime_ns
    cold, _ = compute(ds, snaps, FeatureConfig(product_feature_columns=0, text_cache=False))
    assert kept.stat().st_mtime_ns == before  # off: neither read nor written
    pd.testing.assert_frame_equal(warm, cold)
    assert warm["read_tickets_30d"].sum() > 0
