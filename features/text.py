"""What ticket and survey text says: sentiment, topics, competitor mentions, per text.

Sentiment is VADER's compound score (a lexicon shipped inside the ``vaderSentiment``
package: nothing is fetched at run time). Text that is empty, or not English (too few
English function words), is not read: its sentiment is missing, never negative. Topics come
from a configurable keyword taxonomy (``TextConfig.topics``, one entry per topic of
``catalogue.TEXT_TOPICS``); where a team has labelled texts, :func:`fit_topic_classifier`
learns a supervised classifier (TF-IDF and logistic regression) that
:func:`topic_codes` uses in place of the keywords.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.catalogue import TEXT_TOPICS
from features.text_cache import (
    ReadingCache,
    cache_path,
    classifier_identity,
    sentiment_reader,
    text_key,
    topic_reading_id,
)

if TYPE_CHECKING:  # for the type only: features.contract imports the config, which imports this
    from features.contract import Dataset

log = logging.getLogger(__name__)

# Words nearly every English sentence has; a text with none is read as another language
# (VADER would read the German article "die" as a strong negative).
_ENGLISH = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "i",
        "we",
        "you",
        "he",
        "she",
        "it",
        "they",
        "our",
        "your",
        "my",
        "me",
        "us",
        "this",
        "that",
        "these",
        "those",
        "to",
        "of",
        "in",
        "on",
        "for",
        "with",
        "at",
        "by",
        "from",
        "and",
        "or",
        "but",
        "not",
        "no",
        "so",
        "if",
        "as",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "can",
        "could",
        "will",
        "would",
        "should",
        "please",
        "thanks",
        "thank",
        "what",
        "when",
        "why",
        "how",
        "who",
        "which",
        "there",
        "here",
        "all",
        "any",
        "some",
        "more",
        "very",
        "too",
        "again",
        "still",
        "since",
        "just",
    ]
)
_WORD = re.compile(r"[a-zà-ÿ']+")


def _default_topics() -> dict[str, tuple[str, ...]]:
    return {
        "billing": ("invoice", "billing", "billed", "charged", "refund", "payment", "receipt"),
        "bugs": ("bug", "error", "crash", "broken", "fails", "failing", "exception", "glitch"),
        "performance": ("slow", "latency", "timeout", "time out", "lag", "load", "performance"),
        "onboarding": ("onboarding", "setup", "setting up", "getting started", "walkthrough"),
        "missing_feature": ("feature request", "missing", "lacks", "we need", "no report"),
        "pricing": (
            "price",
            "pricing",
            "cost",
            "discount",
            "budget",
            "expensive",
            "renewal quote",
            "renewal terms",
            "better terms",
        ),
        "competitor": (
            "competitor",
            "alternative",
            "comparing",
            "switch to",
            "demo of",
            "evaluate",
            "evaluating",
            "trial of",
            "trialling",
        ),
    }


class TextConfig(BaseModel):
    """How ticket and survey text is read (``text`` in the features config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    negative_below: float = Field(
        -0.3,
        description="VADER compound score at or below which a text reads as frustrated "
        "(VADER's own cut is -0.05; support tickets describe problems, so plain reports of a "
        "fault sit a little below zero without being frustrated).",
    )
    positive_above: float = Field(
        0.3, description="Compound score at or above which a text reads as pleased."
    )
    min_english_share: float = Field(
        0.12,
        ge=0,
        le=1,
        description="Share of English function words a text of four or more words needs to "
        "be read; below it the text is taken for another language and not scored.",
    )
    topics: dict[str, tuple[str, ...]] = Field(
        default_factory=_default_topics,
        description="Keywords (lower case; a phrase matches as a whole) of each topic of "
        "catalogue.TEXT_TOPICS; a topic left out is never found.",
    )
    lexicon: dict[str, float] = Field(
        default_factory=lambda: {"unacceptable": -2.5, "escalate": -1.5},
        description="Words added to (or re-weighted in) VADER's lexicon, -4..4: support "
        "tickets' own vocabulary that the general-purpose lexicon lacks.",
    )
    competitors: tuple[str, ...] = Field(
        (),
        description="Competitor product names; a text naming one mentions a competitor "
        "(besides the competitor topic's keywords).",
    )

    @field_validator("topics")
    @classmethod
    def _known_topics(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = sorted(set(value) - set(TEXT_TOPICS))
        if unknown:
            raise ValueError(f"unknown text topics {unknown}; known: {', '.join(TEXT_TOPICS)}")
        return value


def _analyser(cfg: TextConfig | None = None):
    """VADER with the configured lexicon additions."""
    return _vader(tuple(sorted((cfg or TextConfig()).lexicon.items())))


@lru_cache(maxsize=4)
def _vader(extra: tuple[tuple[str, float], ...]):
    # Imported here: the lexicon loads in ~30 ms, paid only by builds that have text.
    from vaderSentiment.vaderSentiment import (
        BOOSTER_DICT,
        N_SCALAR,
        NEGATE,
        SentimentIntensityAnalyzer,
        SentiText,
    )

    negate = frozenset(NEGATE)

    def negated(word: str) -> bool:
        return word in negate or "n't" in word

    class Analyser(SentimentIntensityAnalyzer):
        """VADER made faster where it wastes time, with the same scores (tested against it).

        VADER 3.3.2 lower-cases the whole text and scans its 59 negations for every
        sentiment word; this reads only the (up to three) words before it, as VADER does.
        An ASCII text has no emoji (every key of VADER's emoji table is non-ASCII), so its
        character-by-character emoji pass is skipped; the rest is VADER's own steps.
        """

        def polarity_scores(self, text):
            if not text.isascii():  # emojis possible: VADER's own path
                return super().polarity_scores(text)
            sentitext = SentiText(text.strip())
            words = sentitext.words_and_emoticons
            sentiments: list[float] = []
            for i, item in enumerate(words):
                low = item.lower()
                if low in BOOSTER_DICT or (
                    i < len(words) - 1 and low == "kind" and words[i + 1].lower() == "of"
                ):
                    sentiments.append(0)
                    continue
                sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
            sentiments = self._but_check(words, sentiments)
            return self.score_valence(sentiments, text.strip())

        @staticmethod
        def _negation_check(valence, words, start_i, i):
            def w(k: int) -> str:
                return str(words[k]).lower()

            if start_i == 0 and negated(w(i - 1)):
                valence = valence * N_SCALAR
            if start_i == 1:
                if w(i - 2) == "never" and w(i - 1) in ("so", "this"):
                    valence = valence * 1.25
                elif w(i - 2) == "without" and w(i - 1) == "doubt":
                    pass
                elif negated(w(i - 2)):
                    valence = valence * N_SCALAR
            if start_i == 2:
                if (w(i - 3) == "never" and w(i - 2) in ("so", "this")) or w(i - 1) in (
                    "so",
                    "this",
                ):
                    valence = valence * 1.25
                elif w(i - 3) == "without" and (w(i - 2) == "doubt" or w(i - 1) == "doubt"):
                    pass
                elif negated(w(i - 3)):
                    valence = valence * N_SCALAR
            return valence

    analyser = Analyser()
    analyser.lexicon.update(dict(extra))
    return analyser


def readable(text: object, cfg: TextConfig) -> bool:
    """Whether a text is non-empty English (else its sentiment is not read)."""
    if not isinstance(text, str):
        return False
    words = _WORD.findall(text.lower())
    if not words:
        return False
    english = sum(w in _ENGLISH for w in words)
    if len(words) < 4:  # "Great product!": short, read when most words are known English
        lexicon = _analyser(cfg).lexicon
        return 2 * sum(w in _ENGLISH or w in lexicon for w in words) > len(words)
    return english >= 1 and english / len(words) >= cfg.min_english_share


# Distinct texts from which sentiment is read in worker processes (VADER is pure Python,
# ~0.1-0.4 ms a text, so 400,000 take a minute or more alone; starting the workers costs a
# few seconds, repaid from about this many with 4 cores or more).
PARALLEL_TEXTS = 100_000


def _scores(texts: list[str], cfg: TextConfig) -> list[float]:
    """VADER compound score of each (distinct) text; NaN when not readable."""
    analyser = _analyser(cfg)
    return [analyser.polarity_scores(t)["compound"] if readable(t, cfg) else np.nan for t in texts]


def sentiment(
    texts: Sequence[object],
    cfg: TextConfig,
    workers: int | None = None,
    cache: ReadingCache | None = None,
) -> np.ndarray:
    """VADER compound score of each text, -1 (frustrated) .. +1; NaN when not readable.

    Repeated texts are scored once (templates and canned replies repeat). ``workers``:
    processes to read in (None: one per core, up to 8, from ``PARALLEL_TEXTS`` distinct
    texts on with 4 cores or more; else one). ``cache``: readings kept from earlier runs;
    only texts it lacks are read (and added to it).
    """
    strings = pd.Series([t if isinstance(t, str) else None for t in texts], dtype=object)
    distinct = strings.dropna().unique().tolist()
    if cache is None:
        scores = _read_sentiment(distinct, cfg, workers)
    else:
        reader = sentiment_reader(cfg, _ENGLISH)
        known = cache.readings(reader)
        keys = [text_key(t) for t in distinct]
        new = [i for i, k in enumerate(keys) if k not in known]
        cache.reused += len(keys) - len(new)
        got = _read_sentiment([distinct[i] for i in new], cfg, workers)
        cache.add(reader, [keys[i] for i in new], got)
        scores = [known[k] for k in keys]
    lookup = dict(zip(distinct, scores, strict=True))
    return strings.map(lookup).to_numpy(dtype=float, na_value=np.nan)


def _read_sentiment(distinct: list[str], cfg: TextConfig, workers: int | None) -> list[float]:
    """VADER scores of distinct texts, in worker processes where that pays (see sentiment)."""
    if workers is None:  # on 2 cores the workers' start and contention cost more than half
        cores = os.cpu_count() or 1
        workers = min(cores, 8) if cores >= 4 and len(distinct) >= PARALLEL_TEXTS else 1
    if workers > 1 and len(distinct) > 1:
        # Imported here: worker processes only for large reads.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(distinct) // (4 * workers))  # a few chunks a worker: even finish
        chunks = [distinct[i : i + size] for i in range(0, len(distinct), size)]
        spawn = multiprocessing.get_context("spawn")  # no fork of DuckDB's threads
        with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
            scores = [s for part in pool.map(_scores, chunks, [cfg] * len(chunks)) for s in part]
    else:
        scores = _scores(distinct, cfg)
    return scores


def tones(scores: np.ndarray, cfg: TextConfig) -> np.ndarray:
    """Tone index (catalogue.TEXT_TONES: 0 frustrated, 1 neutral, 2 pleased); -1 unread."""
    s = np.asarray(scores, dtype=float)
    t = np.where(s <= cfg.negative_below, 0, np.where(s >= cfg.positive_above, 2, 1))
    return np.where(np.isnan(s), -1, t)


def _patterns(cfg: TextConfig) -> tuple[re.Pattern[str] | None, ...]:
    """One regular expression per topic of the taxonomy (None: no keywords)."""
    keywords = tuple(tuple(cfg.topics.get(t, ())) for t in TEXT_TOPICS)
    return _compiled(keywords, cfg.competitors)


@lru_cache(maxsize=8)
def _compiled(
    keywords: tuple[tuple[str, ...], ...], competitors: tuple[str, ...]
) -> tuple[re.Pattern[str] | None, ...]:
    out = []
    for topic, found in zip(TEXT_TOPICS, keywords, strict=True):
        words = list(found)
        if topic == "competitor":
            words += [c.lower() for c in competitors]
        alts = "|".join(re.escape(w.lower()) for w in sorted(words, key=len, reverse=True))
        out.append(re.compile(rf"\b(?:{alts})") if alts else None)
    return tuple(out)


def topic_masks(texts: Sequence[object], cfg: TextConfig) -> np.ndarray:
    """Bit mask of the topics each text mentions (bit ``i``: ``TEXT_TOPICS[i]``) by keyword."""
    pats = _patterns(cfg)
    out = np.zeros(len(texts), dtype=np.int64)
    cache: dict[str, int] = {}  # repeated texts (canned replies, templates) matched once
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t:
            continue
        got = cache.get(t)
        if got is None:
            low = t.lower()
            got = sum(1 << k for k, p in enumerate(pats) if p is not None and p.search(low))
            cache[t] = got
        out[i] = got
    return out


def fit_topic_classifier(texts: Sequence[str], topics: Sequence[str]):
    """A supervised topic classifier from labelled texts (TF-IDF words and bigrams, logistic).

    ``topics`` are names of ``catalogue.TEXT_TOPICS``; the returned pipeline's ``predict``
    gives one topic name per text.
    """
    # Imported here: scikit-learn's text tools load only when labels exist.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    unknown = sorted(set(topics) - set(TEXT_TOPICS))
    if unknown:
        raise ValueError(f"unknown topic labels {unknown}; known: {', '.join(TEXT_TOPICS)}")
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(max_iter=1000, C=4.0),
    )
    model.fit(list(texts), list(topics))
    # What it learnt from, so the reading cache knows the same classifier in a later run.
    model.reading_id_ = classifier_identity(list(texts), list(topics), model.get_params())
    return model


def topic_codes(
    texts: Sequence[object], cfg: TextConfig, classifier=None, cache: ReadingCache | None = None
) -> np.ndarray:
    """Bit mask of topics per text: the classifier's one topic where given, else keywords.

    ``cache``: masks kept from earlier runs by the same taxonomy or classifier; only texts
    it lacks are read (and added to it).
    """
    if cache is not None:
        reader = topic_reading_id(cfg, classifier)
        known = cache.readings(reader)
        has = [isinstance(t, str) and bool(t) for t in texts]
        keys = [text_key(t) if h else b"" for t, h in zip(texts, has, strict=True)]
        new = list(dict.fromkeys(k for k, h in zip(keys, has, strict=True) if h and k not in known))
        cache.reused += len({k for k, h in zip(keys, has, strict=True) if h}) - len(new)
        if new:
            wanted = set(new)
            first = {k: t for t, k in zip(texts, keys, strict=True) if k in wanted}
            got = topic_codes([first[k] for k in new], cfg, classifier)
            cache.add(reader, new, got)
        return np.array(
            [int(known[k]) if h else 0 for k, h in zip(keys, has, strict=True)], dtype=np.int64
        )
    if classifier is None:
        return topic_masks(texts, cfg)
    out = np.zeros(len(texts), dtype=np.int64)
    has = np.array([isinstance(t, str) and bool(t.strip()) for t in texts], dtype=bool)
    if has.any():
        names = classifier.predict([t for t, h in zip(texts, has, strict=True) if h])
        index = {t: i for i, t in enumerate(TEXT_TOPICS)}
        out[has] = [1 << index[n] for n in names]
    return out


def has_text(tickets: pd.DataFrame | None, nps: pd.DataFrame | None) -> bool:
    """Whether any ticket subject or body, or any NPS comment, holds text."""
    for df, cols in ((tickets, ("subject", "body")), (nps, ("comment",))):
        if df is None:
            continue
        for c in cols:
            if c in df.columns and df[c].notna().any():
                return True
    return False


LOOK_BACK_DAYS = 180  # the longest window of a text feature
# Labelled tickets a topic classifier needs (fewer: keywords; the labels still count).
MIN_TOPIC_LABELS = 20


def labelled_tickets(
    tickets: pd.DataFrame | None, upto: pd.Timestamp | None = None
) -> pd.DataFrame | None:
    """Tickets the team labelled with a topic (``support_tickets.topic``) and text, up to a date.

    None when there are too few (under ``MIN_TOPIC_LABELS``, or a single topic) to train
    a classifier on: topics are then read by keywords.
    """
    if tickets is None or "topic" not in tickets.columns:
        return None
    rows = tickets[tickets["topic"].notna()]
    if upto is not None:
        rows = rows[rows["created_date"] <= upto]
    subject = rows.get("subject", pd.Series(pd.NA, index=rows.index))
    body = rows.get("body", pd.Series(pd.NA, index=rows.index))
    texts = pd.Series(_join(subject, body), index=rows.index, dtype=object)
    rows = rows.assign(_text=texts)[texts.notna().to_numpy()]
    if len(rows) < MIN_TOPIC_LABELS or rows["topic"].nunique() < 2:
        return None
    return rows


def topic_reader(ds: Dataset, upto: pd.Timestamp | None = None) -> dict:
    """How a build reads topics: by a classifier on labelled tickets, or by keywords.

    ``{"method": "classifier", "labelled_tickets": N}`` or ``{"method": "keywords"}`` (see
    :func:`labelled_tickets`).
    """
    tickets = ds["support_tickets"] if ds.has("support_tickets") else None
    rows = labelled_tickets(tickets, upto)
    if rows is None:
        given = 0
        if tickets is not None and "topic" in tickets.columns:
            given = int(tickets["topic"].notna().sum())
        return {"method": "keywords", "labelled_tickets": given, "needed": MIN_TOPIC_LABELS}
    return {"method": "classifier", "labelled_tickets": len(rows)}


def text_table(
    ds: Dataset,
    enabled: bool | None,
    cfg: TextConfig,
    as_of: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    cache: bool | ReadingCache = False,
) -> pd.DataFrame | None:
    """Each ticket's and NPS comment's signals, or None without text or when ``enabled`` is False.

    ``enabled``: the features config's ``text_features`` (None: on when there is text).
    ``as_of``: the first and last as-of date to be computed; only texts that a window of
    theirs can hold are read (scoring one date reads 180 days of text, not the history).
    ``cache``: True keeps each text's reading in the data directory (features.text_cache),
    so a later build reads only new texts; or the cache to use; False: read every text.
    """
    tickets = ds["support_tickets"] if ds.has("support_tickets") else None
    nps = ds["nps_responses"] if ds.has("nps_responses") else None
    if enabled is False or not has_text(tickets, nps):
        return None
    # The team's labels up to the last as-of date train the classifier that reads the rest.
    labelled = labelled_tickets(tickets, None if as_of is None else as_of[1])
    classifier = None
    if labelled is not None:
        classifier = fit_topic_classifier(labelled["_text"].tolist(), labelled["topic"].tolist())
        log.info("topics: a classifier trained on %d labelled tickets", len(labelled))
    if as_of is not None:
        lo, hi = as_of[0] - pd.Timedelta(days=LOOK_BACK_DAYS), as_of[1]
        if tickets is not None:
            tickets = tickets[tickets["created_date"].between(lo, hi)]
        if nps is not None:
            nps = nps[nps["date"].between(lo, hi)]
    kept = cache if isinstance(cache, ReadingCache) else None
    if cache is True:
        kept = ReadingCache(cache_path(ds.source))
    out = text_signals(tickets, nps, cfg, classifier, cache=kept)
    if kept is not None:
        log.info("texts: %d read, %d readings from the cache", kept.read, kept.reused)
        kept.save()
    return out


def _join(subject: pd.Series, body: pd.Series) -> list[object]:
    """Subject and body as one text (None when both are empty)."""
    s = subject.fillna("").astype(str).str.strip()
    b = body.fillna("").astype(str).str.strip()
    both = (s + ". " + b).where((s != "") & (b != ""), s + b)
    return [t if t else None for t in both.tolist()]


def ticket_signals(
    tickets: pd.DataFrame,
    cfg: TextConfig,
    classifier=None,
    workers: int | None = None,
    cache: ReadingCache | None = None,
) -> pd.DataFrame:
    """Per ticket: account, date, readable, frustrated, pleased, topic mask, competitor, pricing.

    Sentiment is read from the body (the customer's words; the subject is a title), the
    subject where the body is empty; topics from both.
    """
    subject = tickets.get("subject", pd.Series(pd.NA, index=tickets.index))
    body = tickets.get("body", pd.Series(pd.NA, index=tickets.index))
    body_or_subject = body.where(body.fillna("").astype(str).str.strip() != "", subject)
    out = _signals(
        tickets["account_id"],
        tickets["created_date"],
        body_or_subject.tolist(),
        _join(subject, body),
        "ticket",
        cfg,
        classifier,
        workers,
        cache,
    )
    if "topic" in tickets.columns:  # a ticket the team labelled has the topic it was given
        index = {t: i for i, t in enumerate(TEXT_TOPICS)}
        given = tickets["topic"].map(index).to_numpy(dtype=float)
        has = ~np.isnan(given)
        bits = np.left_shift(1, np.where(has, given, 0).astype(np.int64))
        out["topics"] = np.where(has, bits, out["topics"].to_numpy())
        for name in ("competitor", "pricing"):
            out[name] = ((out["topics"].to_numpy() >> index[name]) & 1).astype(bool)
    return out


def comment_signals(
    nps: pd.DataFrame,
    cfg: TextConfig,
    classifier=None,
    workers: int | None = None,
    cache: ReadingCache | None = None,
) -> pd.DataFrame:
    """Per NPS comment: the same signals as :func:`ticket_signals` (rows without one left out)."""
    has = nps["comment"].notna() if "comment" in nps.columns else pd.Series(False, nps.index)
    rows = nps[has.to_numpy()]
    texts = rows["comment"].tolist()
    return _signals(
        rows["account_id"], rows["date"], texts, texts, "comment", cfg, classifier, workers, cache
    )


def _signals(
    account, date, tone_texts, topic_texts, kind, cfg, classifier, workers=None, cache=None
) -> pd.DataFrame:
    score = sentiment(tone_texts, cfg, workers, cache)
    tone = tones(score, cfg)
    mask = topic_codes(topic_texts, cfg, classifier, cache)
    competitor = (mask >> TEXT_TOPICS.index("competitor")) & 1
    pricing = (mask >> TEXT_TOPICS.index("pricing")) & 1
    return pd.DataFrame(
        {
            "account_id": np.asarray(account, dtype=object),
            "date": pd.to_datetime(np.asarray(date)).astype("datetime64[s]"),
            "kind": kind,
            "sentiment": score,
            "read": tone >= 0,
            "negative": tone == 0,
            "positive": tone == 2,
            "topics": mask,
            "competitor": competitor.astype(bool),
            "pricing": pricing.astype(bool),
        }
    )


def text_signals(
    tickets: pd.DataFrame | None,
    nps: pd.DataFrame | None,
    cfg: TextConfig,
    classifier=None,
    workers: int | None = None,
    cache: ReadingCache | None = None,
) -> pd.DataFrame:
    """The signals of every ticket and NPS comment with text, tickets first.

    ``workers``: processes reading sentiment (see :func:`sentiment`); ``cache``: readings
    kept from earlier runs (features.text_cache).
    """
    parts = []
    if tickets is not None and len(tickets):
        parts.append(ticket_signals(tickets, cfg, classifier, workers, cache))
    if nps is not None and len(nps):
        parts.append(comment_signals(nps, cfg, classifier, workers, cache))
    if not parts:
        return _signals([], [], [], [], "ticket", cfg, classifier)
    return pd.concat(parts, ignore_index=True)
