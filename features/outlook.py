"""Labels of the forecasts: the health score ahead, and the next survey answer or ticket rating.

Pure functions on frames (no I/O). A label whose window reaches past the end of the data, or
with nothing to read in it, is null (unknown), never 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import (
    DETRACTOR_MAX_SCORE,
    LOW_CSAT_MAX,
    SATISFACTION_WINDOW_DAYS,
)

# A snapshot counts as "h days ahead" when it lies within this many days of T + h: the next
# month end for monthly snapshots (28-31 days on), the Sunday nearest for weekly ones.
AHEAD_TOLERANCE_DAYS = 16


def health_ahead(frame: pd.DataFrame, days: int, column: str = "health_score") -> pd.Series:
    """The same account's ``column`` at its snapshot nearest to T + ``days`` (on ``frame``'s index).

    Null when the account has no snapshot within ``AHEAD_TOLERANCE_DAYS`` of that date, after
    T (it churned, or the data ends before).
    """
    keys = frame[["account_id", "as_of"]].copy()
    keys["as_of"] = pd.to_datetime(keys["as_of"]).astype("datetime64[ns]")
    left = pd.DataFrame(
        {
            "account_id": keys["account_id"].to_numpy(),
            "at": keys["as_of"] + pd.Timedelta(days=days),
            "t": keys["as_of"],
            "_pos": np.arange(len(frame)),
        }
    ).sort_values("at")
    right = pd.DataFrame(
        {
            "account_id": keys["account_id"].to_numpy(),
            "at": keys["as_of"],
            "_value": frame[column].to_numpy(dtype="float64", na_value=np.nan),
        }
    ).sort_values("at")
    right["_when"] = right["at"]
    merged = pd.merge_asof(
        left,
        right,
        on="at",
        by="account_id",
        direction="nearest",
        tolerance=pd.Timedelta(days=AHEAD_TOLERANCE_DAYS),
    ).sort_values("_pos")
    value = merged["_value"].to_numpy(dtype="float64", copy=True)
    value[~(merged["_when"] > merged["t"]).to_numpy()] = np.nan
    return pd.Series(value, index=frame.index, dtype="float64")


def _next_in_window(
    keys: pd.DataFrame, events: pd.DataFrame, date: str, end: pd.Timestamp
) -> pd.Series:
    """Per (account_id, as_of) row: the ``_bad`` flag of the first event in (T, T + window]."""
    ev = events[["account_id", date, "_bad"]].dropna(subset=[date]).copy()
    ev[date] = pd.to_datetime(ev[date]).astype("datetime64[ns]")
    # Ties on a day (two contacts answering the same day): the worse answer counts.
    ev = ev.sort_values([date, "_bad"], ascending=[True, False])
    left = pd.DataFrame(
        {
            "account_id": keys["account_id"].to_numpy(),
            # the first event strictly after T: search forward from T + 1 day
            "at": pd.to_datetime(keys["as_of"]).astype("datetime64[ns]").to_numpy()
            + np.timedelta64(1, "D"),
            "_pos": np.arange(len(keys)),
        }
    ).sort_values("at")
    right = ev.rename(columns={date: "at"}).drop_duplicates(["account_id", "at"])
    right["_when"] = right["at"]
    merged = pd.merge_asof(
        left, right.sort_values("at"), on="at", by="account_id", direction="forward"
    ).sort_values("_pos")
    at = left.sort_values("_pos")["at"].to_numpy() - np.timedelta64(1, "D")
    window_end = at + np.timedelta64(SATISFACTION_WINDOW_DAYS, "D")
    when = merged["_when"].to_numpy()
    found = ~pd.isna(when) & (when <= window_end)
    out = np.where(found, merged["_bad"].to_numpy(dtype="float64", na_value=np.nan), np.nan)
    out[window_end > np.datetime64(pd.Timestamp(end))] = np.nan  # the window is not all seen
    return pd.Series(out, index=keys.index, dtype="float64")


def detractor_label(nps: pd.DataFrame, keys: pd.DataFrame, end: pd.Timestamp) -> pd.Series:
    """1 when the account's next NPS answer within the window is 0-6, 0 when 7-10, else null."""
    events = nps.assign(_bad=(nps["score"].astype("float64") <= DETRACTOR_MAX_SCORE).astype(float))
    return _next_in_window(keys, events, "date", end)


def low_csat_label(tickets: pd.DataFrame, keys: pd.DataFrame, end: pd.Timestamp) -> pd.Series:
    """1 when the next rated ticket resolved within the window is rated 1-2 of 5, 0 when 3-5.

    Null when no ticket resolved in the window has a rating (unrated tickets are skipped).
    """
    if "csat" not in tickets:
        return pd.Series(np.nan, index=keys.index, dtype="float64")
    rated = tickets[tickets["csat"].notna() & tickets["resolved_date"].notna()]
    events = rated.assign(_bad=(rated["csat"].astype("float64") <= LOW_CSAT_MAX).astype(float))
    return _next_in_window(keys, events, "resolved_date", end)


# Each satisfaction head's label (features.catalogue.SATISFACTION_HEADS) from its table's rows.
SATISFACTION_LABELS = {"nps_detractor": detractor_label, "low_csat": low_csat_label}
