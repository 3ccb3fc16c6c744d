"""Month arithmetic on numpy datetime64 values, shared by the simulator and the oracle."""

from __future__ import annotations

import numpy as np

DAY = np.timedelta64(1, "D")


def month_index(dates: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each date (datetime64[D] -> int64)."""
    return np.asarray(dates, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_start(months: np.ndarray | int) -> np.ndarray:
    """First day of month index ``months`` (inverse of :func:`month_index`)."""
    return np.asarray(months, dtype=np.int64).astype("datetime64[M]").astype("datetime64[D]")


def month_end(months: np.ndarray | int) -> np.ndarray:
    """Last day of month index ``months``."""
    return month_start(np.asarray(months) + 1) - DAY


def anniversary(months: np.ndarray, anchor_day: np.ndarray) -> np.ndarray:
    """The date in month ``months`` whose day of month is ``anchor_day`` (1-28)."""
    return month_start(months) + (np.asarray(anchor_day) - 1).astype("timedelta64[D]")
