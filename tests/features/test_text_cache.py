"""The reading cache: a second read takes every reading from it, identical; a changed reader
(taxonomy, lexicon, classifier) reads again; a damaged file is ignored, never trusted."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from features.text import TextConfig, fit_topic_classifier, text_signals
from features.text_cache import ReadingCache

BODIES = [
    "The invoice was wrong again and nobody answers, this is unacceptable.",
    "Thanks, the setup walkthrough was great and the team is happy with it.",
    "Reports are slow and the export fails with an error every morning.",
    "We are evaluating an alternative because the renewal quote is too expensive.",
    "",
    "Die Rechnung ist falsch und das ist nicht gut.",
]


def _tickets(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": [f"A{i % 7}" for i in range(n)],
            "created_date": pd.date_range("2026-01-01", periods=n, freq="D"),
            "subject": [f"Case {i % 11}" for i in range(n)],
            "body": [f"{BODIES[i % len(BODIES)]} Ref {i % 20}." for i in range(n)],
        }
    )


def _nps() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A3"],
            "date": pd.to_datetime(["2026-02-01", "2026-02-02", "2026-02-03"]),
            "comment": ["Great product, thanks!", None, "Too expensive for what we get."],
        }
    )


def test_a_second_read_reads_nothing_and_gives_the_same_signals(tmp_path):
    path = tmp_path / ".radar" / "text_readings.parquet"
    cfg = TextConfig()
    plain = text_signals(_tickets(), _nps(), cfg)
    first = ReadingCache(path)
    cold = text_signals(_tickets(), _nps(), cfg, cache=first)
    first.save()
    assert first.read > 0 and path.exists()
    pd.testing.assert_frame_equal(cold, plain)
    again = ReadingCache(path)
    warm = text_signals(_tickets(), _nps(), cfg, cache=again)
    assert again.read == 0 and again.reused == first.read
    pd.testing.assert_frame_equal(warm, plain)
    assert np.isnan(warm["sentiment"]).sum() == np.isnan(plain["sentiment"]).sum() > 0
    # New texts only: 5 more tickets of which 5 distinct bodies and subjects are unseen.
    more = _tickets(65)
    more.loc[60:, "body"] = [f"New complaint {i}: the invoice is wrong." for i in range(5)]
    daily = ReadingCache(path)
    text_signals(more, _nps(), cfg, cache=daily)
    assert daily.read == 5 + 5  # sentiment of 5 bodies, topics of 5 subject-and-body texts
    pd.testing.assert_frame_equal(
        text_signals(more, _nps(), cfg, cache=daily), text_signals(more, _nps(), cfg)
    )


def test_a_changed_taxonomy_lexicon_or_classifier_reads_again(tmp_path):
    path = tmp_path / "readings.parquet"
    cfg = TextConfig()
    cache = ReadingCache(path)
    text_signals(_tickets(), None, cfg, cache=cache)
    cache.save()
    texts = _tickets()
    n_tone = texts["body"].nunique()
    n_topic = (texts["subject"] + ". " + texts["body"]).nunique()
    # A taxonomy without the billing keywords: topics read again, sentiment kept.
    topics = dict(cfg.topics, billing=("refund",))
    changed = TextConfig(topics=topics)
    other = ReadingCache(path)
    got = text_signals(texts, None, changed, cache=other)
    assert other.read == n_topic and other.reused == n_tone
    pd.testing.assert_frame_equal(got, text_signals(texts, None, changed))
    assert not got["topics"].equals(text_signals(texts, None, cfg)["topics"])
    # Another lexicon weight: sentiment read again.
    heavier = TextConfig(lexicon={"unacceptable": -4.0, "escalate": -1.5})
    lex = ReadingCache(path)
    got = text_signals(texts, None, heavier, cache=lex)
    assert lex.read == n_tone
    pd.testing.assert_frame_equal(got, text_signals(texts, None, heavier))
    # A classifier reads topics under its own identity; a different one reads again.
    labels = ["billing", "onboarding", "bugs", "pricing", "bugs", "bugs"] * 10
    clf = fit_topic_classifier(texts["body"].tolist(), labels)
    c1 = ReadingCache(path)
    got = text_signals(texts, None, cfg, clf, cache=c1)
    assert c1.read == n_topic
    pd.testing.assert_frame_equal(got, text_signals(texts, None, cfg, clf))
    c1.save()  # the same labels fit the same classifier again: its readings are reused
    refit = fit_topic_classifier(texts["body"].tolist(), labels)
    c3 = ReadingCache(path)
    pd.testing.assert_frame_equal(text_signals(texts, None, cfg, refit, cache=c3), got)
    assert c3.read == 0
    clf2 = fit_topic_classifier(texts["body"].tolist()[:30], labels[:30])
    c2 = ReadingCache()
    c2._kept = c1._kept  # the first classifier's readings at hand: none are used
    text_signals(texts, None, cfg, clf2, cache=c2)
    assert c2.read == n_topic  # topics only: the sentiment readings were kept


def test_a_damaged_or_foreign_cache_is_ignored_with_one_line(tmp_path, caplog):
    path = tmp_path / "readings.parquet"
    cfg = TextConfig()
    plain = text_signals(_tickets(), None, cfg)
    for damage in (b"not parquet at all", None):
        if damage is None:  # a Parquet file, but not a reading cache
            pd.DataFrame({"reader": ["x"], "key": [b"k"], "value": [0.5]}).to_parquet(path)
        else:
            path.write_bytes(damage)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="features.text_cache"):
            cache = ReadingCache(path)
        assert len(caplog.records) == 1 and "ignored" in caplog.records[0].getMessage()
        got = text_signals(_tickets(), None, cfg, cache=cache)
        pd.testing.assert_frame_equal(got, plain)
        assert cache.reused == 0
        cache.save()  # written afresh: the next read uses it
        again = ReadingCache(path)
        text_signals(_tickets(), None, cfg, cache=again)
        assert again.read == 0


def test_a_cache_that_cannot_be_written_is_said_and_skipped(tmp_path, caplog):
    (tmp_path / "blocked").write_text("a file where the cache folder would be")
    cache = ReadingCache(tmp_path / "blocked" / "readings.parquet")
    got = text_signals(_tickets(), None, TextConfig(), cache=cache)
    with caplog.at_level(logging.WARNING, logger="features.text_cache"):
        cache.save()  # no exception: the build goes on without a kept cache
    assert len(caplog.records) == 1 and "not written" in caplog.records[0].getMessage()
    pd.testing.assert_frame_equal(got, text_signals(_tickets(), None, TextConfig()))
