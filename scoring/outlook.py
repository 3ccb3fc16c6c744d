"""The forecasts on a scoring record: health ahead with its interval, satisfaction, the alert.

Pure functions on arrays; :func:`scoring.records.score_rows` adds their columns. A bundle
trained without forecasts adds none; a row without today's health score has no forecast
(null, never 0).
"""

from __future__ import annotations

import math

import numpy as np

from features.catalogue import (
    FORECAST_DROP_ALERT,
    HEALTH_FORECASTS,
    SATISFACTION_HEADS,
    horizon_days,
)
from features.config import HEALTHY_SCORE
from features.health import PREVIOUS_HEALTH
from features.words import SATISFACTION_WORDS, missing, pct

INTERVAL = ("_low", "_high")  # the interval's bounds: forecast_health_90d_low, ..._high


def forecast_record_columns(forecasts) -> list[str]:
    """The record columns of ``forecasts`` (training.forecast.Forecasts, or None)."""
    if forecasts is None:
        return []
    health = [f"{n}{s}" for n in forecasts.health for s in ("", *INTERVAL)]
    return health + [f"p_{n}" for n in forecasts.satisfaction]


def forecast_columns(forecasts, x: np.ndarray, health: np.ndarray, month_ago: np.ndarray) -> dict:
    """The forecast columns of rows with feature matrix ``x`` and today's / month-ago health."""
    if forecasts is None:
        return {}
    return forecasts.predict_matrix(x, np.column_stack([health, month_ago]))


def forecast_inputs_of(col) -> tuple[np.ndarray, np.ndarray]:
    """Today's and the month-ago health score from a column getter (``Rows.col``)."""
    return col("health_score", numeric=True), col(PREVIOUS_HEALTH, numeric=True)


def _below_line(value: float) -> str:
    """A forecast under the healthy line in words that stay under it: 62, or 69.6 (never "70")."""
    if round(value) < HEALTHY_SCORE:
        return f"{value:.0f}"
    return f"{math.floor(value * 10) / 10:.1f}"


def falls_before_renewal(
    health: np.ndarray, forecast: dict, days_to_renewal: np.ndarray
) -> tuple[np.ndarray, list[str | None]]:
    """Healthy accounts forecast to fall below healthy before their renewal, and the sentence.

    The forecast counted is the longest one whose horizon ends on or before the renewal
    (a renewal 40 days away is judged by the 30-day forecast). Returns a flag per row and, for
    flagged rows, a sentence with the numbers: "Health 74 now, 62 expected in 90 days
    (49-75), under 70 before the renewal in 120 days".
    """
    n = len(health)
    flag = np.zeros(n, dtype=bool)
    words: list[str | None] = [None] * n
    days = np.asarray(days_to_renewal, dtype="float64")
    for name in sorted(
        (f for f in HEALTH_FORECASTS if f in forecast), key=horizon_days, reverse=True
    ):
        h = horizon_days(name)
        mid = forecast[name]
        hit = (
            ~flag
            & (np.nan_to_num(health, nan=-1) >= HEALTHY_SCORE)
            & (np.nan_to_num(mid, nan=np.inf) < HEALTHY_SCORE)
            & (np.nan_to_num(days, nan=-1) >= h)
        )
        for i in np.flatnonzero(hit):
            words[i] = (
                f"Health {health[i]:.0f} now, {_below_line(mid[i])} expected in {h} days "
                f"({forecast[name + '_low'][i]:.0f}-{forecast[name + '_high'][i]:.0f}), "
                f"under {HEALTHY_SCORE:.0f} before the renewal in {days[i]:.0f} days"
            )
        flag |= hit
    return flag, words


def with_forecast_alert(alerts: list[list[str]], flag: np.ndarray) -> list[list[str]]:
    """Each row's alerts, with :data:`FORECAST_DROP_ALERT` added where ``flag`` is set."""
    return [[*a, FORECAST_DROP_ALERT] if f else a for a, f in zip(alerts, flag, strict=True)]


def shown_forecasts(record) -> dict:
    """What a page or brief shows of a record's forecasts (those it has), in order.

    ``health``: forecast name to its horizon in days; ``satisfaction``: head to ``p_<head>``.
    ``record`` is an :class:`scoring.schema.AccountScore` or a mapping of its fields.
    """

    def get(name):
        v = record.get(name) if isinstance(record, dict) else getattr(record, name, None)
        return None if missing(v) else v

    return {
        "health": {n: horizon_days(n) for n in HEALTH_FORECASTS if get(n) is not None},
        "satisfaction": {h: f"p_{h}" for h in SATISFACTION_HEADS if get(f"p_{h}") is not None},
    }


def outlook_sentence(record: dict) -> str | None:
    """The record's forecasts in one sentence; None when it has none.

    "Health 70 now, 58 expected in 90 days (45-69); chance of next NPS answer a detractor
    (0-6): 38%". The longest health forecast is the one said (the brief's horizon).
    """
    shown = shown_forecasts(record)
    parts = []
    if shown["health"] and not missing(record.get("health_score")):
        name, days = max(shown["health"].items(), key=lambda kv: kv[1])
        parts.append(
            f"Health {record['health_score']:.0f} now, {record[name]:.0f} expected in {days} "
            f"days ({record[name + '_low']:.0f}-{record[name + '_high']:.0f})"
        )
    parts += [
        f"chance of {SATISFACTION_WORDS[h]}: {pct(record[col])}"
        for h, col in shown["satisfaction"].items()
    ]
    if not parts:
        return None
    text = "; ".join(parts)
    return text[0].upper() + text[1:]
