"""The figures behind two alerts, on the record and in words: ticket text, the health forecast.

Pure functions on arrays and records. :func:`text_columns` adds the counts behind the
negative-sentiment alert ("3 of 5 tickets this month read as frustrated: billing, bugs") to
every scoring record: the same counts and the same words as the alert
(:func:`features.words.sentiment_sentence`). Data without text has none of them (null, never
"0 of 0"; ``radar features`` says once that the text features are absent), and a month
without a readable ticket has its counts (0) but no sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from features.catalogue import (
    FORECAST_DROP_ALERT,
    HEALTH_FORECASTS,
    NEGATIVE_SENTIMENT_ALERT,
    TEXT_TOPICS,
)
from features.words import code, missing, sentiment_sentence
from scoring.outlook import falls_before_renewal

# The record's text columns: the snapshot's counts (features.engine's text features), the
# topics of the frustrated tickets (codes of catalogue.TEXT_TOPICS) and the sentence.
READ, NEGATIVE, TOPICS_MASK = "read_tickets_30d", "negative_tickets_30d", "negative_topics_30d"
TOPICS, SENTENCE = "frustrated_topics", "text_evidence"


def topic_codes_of(mask: object) -> list[str]:
    """The topic codes of a bit mask (bit ``i``: ``TEXT_TOPICS[i]``); none when missing."""
    if missing(mask):
        return []
    m = int(mask)
    return [t for i, t in enumerate(TEXT_TOPICS) if m >> i & 1]


def text_columns(col: Callable[..., np.ndarray]) -> dict[str, np.ndarray | list]:
    """The record's text columns from a column getter (``Rows.col``).

    Counts are null without text; the sentence is null without a readable ticket this month.
    """
    read = col(READ, numeric=True)
    negative = col(NEGATIVE, numeric=True)
    mask = col(TOPICS_MASK, numeric=True)
    said = ~np.isnan(read) & (np.nan_to_num(read) >= 1)
    return {
        READ: read,
        NEGATIVE: negative,
        # Topics only where the month had a frustrated ticket (the sentence names them then).
        TOPICS: [
            topic_codes_of(m) if s and not missing(k) and k > 0 else []
            for m, s, k in zip(mask.tolist(), said.tolist(), negative.tolist(), strict=True)
        ],
        SENTENCE: [
            sentiment_sentence(k, n, m) if s else None
            for k, n, m, s in zip(
                negative.tolist(), read.tolist(), mask.tolist(), said.tolist(), strict=True
            )
        ],
    }


def _get(record: Mapping | object, name: str):
    # A mapping or a pandas row (both have get), or an AccountScore (fields).
    v = record.get(name) if hasattr(record, "get") else getattr(record, name, None)
    return None if missing(v) else v


def forecast_drop_sentence(record: Mapping | object) -> str | None:
    """The health-forecast alert's sentence from the record's own figures; None when it has none.

    "Health 74 now, 62 expected in 90 days (49-75), under 70 before the renewal in 120 days": the
    words :func:`scoring.outlook.falls_before_renewal` put in the disagreement.
    """
    forecast = {}
    for name in HEALTH_FORECASTS:
        parts = [_get(record, name + end) for end in ("", "_low", "_high")]
        if all(p is not None for p in parts):
            for end, v in zip(("", "_low", "_high"), parts, strict=True):
                forecast[name + end] = np.array([float(v)])
    health, days = _get(record, "health_score"), _get(record, "days_to_renewal")
    if not forecast or health is None or days is None:
        return None
    _, words = falls_before_renewal(np.array([float(health)]), forecast, np.array([float(days)]))
    return words[0]


def alert_reason(alert: str, record: Mapping | object) -> str | None:
    """The sentence with the figures behind an alert, for its CTA; None for the other alerts.

    The negative-sentiment alert quotes its counts, the health-forecast alert its forecast.
    """
    if alert == NEGATIVE_SENTIMENT_ALERT:
        return _get(record, SENTENCE)
    if alert == FORECAST_DROP_ALERT:
        return forecast_drop_sentence(record)
    return None


# --- the consistency checker's rules (scoring.consistency.RULES) ---------------------------

_SAID = re.compile(r"^(\d+) of (\d+) tickets? this month read as frustrated(?:: (.+))?$")


def _records_col(df: pd.DataFrame, name: str) -> list:
    return df[name].tolist() if name in df else [None] * len(df)


def text_evidence_rule(df: pd.DataFrame, cfg: object = None) -> list:
    """The ticket sentence quotes the record's counts and topics, and is there when it should be.

    Said exactly when the month has a readable ticket (never "0 of 0", never a guess); its
    "k of n" are the record's frustrated and readable tickets, its topics the record's; an
    account with the negative-sentiment alert has the sentence. Records scored before the
    sentence existed (no such column) are not held to it.
    """
    if SENTENCE not in df:
        return [None] * len(df)
    out = []
    rows = zip(
        _records_col(df, SENTENCE),
        _records_col(df, READ),
        _records_col(df, NEGATIVE),
        _records_col(df, TOPICS),
        _records_col(df, "alerts"),
        strict=True,
    )
    for text, read, negative, topics, alerts in rows:
        n = None if missing(read) else float(read)
        said = isinstance(text, str) and bool(text)
        alerted = NEGATIVE_SENTIMENT_ALERT in list(alerts if alerts is not None else ())
        why = None
        if not said:
            if n is not None and n >= 1:
                why = f"{n:.0f} readable tickets this month but no sentence"
            elif alerted:
                why = "negative-sentiment alert without its counts"
        elif (m := _SAID.match(text)) is None:
            why = f"ticket sentence {text!r} does not read 'k of n tickets ...'"
        else:
            k_said, n_said = int(m.group(1)), int(m.group(2))
            k = None if missing(negative) else float(negative)
            names = [code(t) for t in (topics if topics is not None else ())]
            said_topics = m.group(3).split(", ") if m.group(3) else []
            if n is None or n < 1 or n_said != n or k is None or k_said != k:
                why = f"says {k_said} of {n_said}, the record has {k} of {n}"
            elif said_topics != names:
                why = f"names topics {said_topics}, the record has {names}"
        out.append(why)
    return out


def forecast_alert_rule(df: pd.DataFrame, cfg: object = None) -> list:
    """The health-forecast alert is raised exactly where the record's forecast says so.

    A healthy account forecast below healthy before its renewal has the alert, and its
    disagreement says the forecast's figures; no other account has it.
    """

    def num(name: str) -> np.ndarray:
        if name not in df:
            return np.full(len(df), np.nan)
        return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype="float64")

    forecast = {
        name + end: num(name + end)
        for name in HEALTH_FORECASTS
        if name in df
        for end in ("", "_low", "_high")
    }
    _, words = falls_before_renewal(num("health_score"), forecast, num("days_to_renewal"))
    out = []
    rows = zip(words, _records_col(df, "alerts"), _records_col(df, "disagreement"), strict=True)
    for sentence, alerts, said in rows:
        alerted = FORECAST_DROP_ALERT in list(alerts if alerts is not None else ())
        why = None
        if sentence is not None and not alerted:
            why = f"forecast to fall ({sentence}) without the alert"
        elif sentence is None and alerted:
            why = "health-forecast alert without a forecast below healthy before the renewal"
        elif sentence is not None and not (isinstance(said, str) and sentence in said):
            why = f"the disagreement does not say the forecast ({sentence})"
        out.append(why)
    return out
