"""Splits beyond the plain time split: one that adapts to short histories, and a random one.

The time split (``training.data.time_split``) is the default and the honest one. Two cases it
cannot serve on its own:

- a short history (a year of monthly snapshots): the configured window lengths are shrunk,
  never the gap, until train, validation and test each get as-of dates;
- a table with no time at all (one row per customer): a seeded, stratified random split,
  grouped by entity so one customer never sits in two parts. Its evaluation is not temporal,
  and every caller says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training.data import TimeSplit, time_split

PARTS = ("train", "validation", "test")
RANDOM_SHARES = (0.70, 0.15, 0.15)  # train, validation, test

NOT_TEMPORAL = (
    "no --time column: train, validation and test are a stratified random split{grouped} "
    "(seed {seed}), so the evaluation is not temporal: it says how well the model ranks "
    "customers like these at the same moment, not how it will do on later data"
)


@dataclass(frozen=True)
class RandomSplit:
    """A seeded, stratified random split of rows (grouped by entity when one is given).

    Attributes:
        seed: The random seed.
        entity: The column rows were grouped by, if any.
        shares: Shares of groups in train, validation and test.
        parts: The part of each row, by position (``train``, ``validation``, ``test``, or
            missing for rows whose label is unknown).

    """

    seed: int
    entity: str | None
    shares: tuple[float, float, float] = RANDOM_SHARES
    parts: np.ndarray = field(default_factory=lambda: np.array([], dtype=object), repr=False)
    gap_days: int = 0  # no time, no gap: kept so both splits read alike

    def assign(self, times: pd.Series) -> pd.Series:
        """The part of each row (``times`` only supplies the index)."""
        return pd.Series(self.parts, index=times.index, dtype="str")

    def as_dict(self) -> dict[str, str | int | float]:
        """What to log: the kind, seed, entity and shares."""
        return {
            "kind": "random",
            "seed": self.seed,
            "entity": self.entity or "",
            "train_share": self.shares[0],
            "validation_share": self.shares[1],
            "test_share": self.shares[2],
            "gap_days": 0,
        }

    def describe(self) -> str:
        """One line for the console."""
        by = f", grouped by {self.entity}" if self.entity else ""
        return f"random split (seed {self.seed}{by}): no time, no gap"


def random_split(
    labels: pd.Series,
    seed: int,
    groups: pd.Series | None = None,
    shares: tuple[float, float, float] = RANDOM_SHARES,
) -> RandomSplit:
    """Split rows at random, stratified by label, keeping each group in one part.

    A group's stratum is its highest known label (a customer who churned once is a churner);
    groups whose labels are all unknown get no part.
    """
    y = pd.to_numeric(labels, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    key = groups.to_numpy() if groups is not None else np.arange(len(y))
    key = pd.Series(key).astype("str").to_numpy()
    by_group = pd.Series(y).groupby(key, sort=True).max()
    rng = np.random.default_rng(seed)
    part_of: dict[str, str] = {}
    for _, members in by_group.dropna().groupby(by_group.dropna(), sort=True):
        names = members.index.to_numpy()[rng.permutation(len(members))]
        n_test = int(round(len(names) * shares[2]))
        n_val = int(round(len(names) * shares[1]))
        for name, part in zip(
            names,
            ["test"] * n_test + ["validation"] * n_val + ["train"] * len(names),
            strict=False,
        ):
            part_of[name] = part
    parts = pd.Series(key).map(part_of).to_numpy(dtype=object)
    parts[np.isnan(y)] = None  # unknown label: in no part
    return RandomSplit(seed, groups.name if groups is not None else None, shares, parts)


def adaptive_time_split(
    times: pd.Series,
    labelled: pd.Series,
    test_days: int,
    validation_days: int,
    gap_days: int,
) -> tuple[TimeSplit, str | None]:
    """The configured time split, or shorter windows when the history is too short for it.

    The gap is never shortened. Windows shrink a day at a time, and the first length that
    leaves train with at least as many as-of dates as validation and test together is used
    (each window anchored at the latest date it may hold). Returns the split and, when the
    windows were shortened, a sentence saying so.

    Raises:
        ValueError: When even one as-of date each for validation and test with the two gaps
            leaves nothing to train on; the message says what the data would support.

    """
    try:
        return time_split(times, labelled, test_days, validation_days, gap_days), None
    except ValueError as exc:
        first_error = exc
    t = pd.to_datetime(times)
    dates = np.sort(t[labelled.to_numpy(dtype=bool)].unique())
    if len(dates) == 0:
        raise first_error
    fallback = None
    for w in range(min(test_days, validation_days) - 1, 0, -1):
        windows = _windows(dates, w, gap_days)
        if windows is None:
            continue
        train, val, test = windows
        if fallback is None:
            fallback = windows
        if len(train) >= len(val) + len(test):
            break
    else:
        if fallback is None:
            raise ValueError(_no_room(dates, gap_days)) from first_error
        train, val, test = fallback
    split = TimeSplit(
        train_start=pd.Timestamp(train[0]),
        train_end=pd.Timestamp(train[-1]),
        validation_start=pd.Timestamp(val[0]),
        validation_end=pd.Timestamp(val[-1]),
        test_start=pd.Timestamp(test[0]),
        test_end=pd.Timestamp(test[-1]),
        gap_days=gap_days,
    )
    note = (
        f"the history is too short for {test_days}-day test and {validation_days}-day "
        f"validation windows with {gap_days}-day gaps: using {len(test)} test and {len(val)} "
        f"validation as-of date(s), {len(train)} to train on"
    )
    return split, note


def _windows(dates: np.ndarray, w: int, gap: int):
    """Train, validation and test dates for windows of ``w`` days, or None if one is empty."""
    day = np.timedelta64(1, "D")
    last = dates[-1]
    test = dates[dates > last - w * day]
    before = dates[dates <= test[0] - gap * day]
    if len(before) == 0:
        return None
    val = before[before > before[-1] - w * day]
    train = dates[dates <= val[0] - gap * day]
    if len(train) == 0:
        return None
    return train, val, test


def _no_room(dates: np.ndarray, gap_days: int) -> str:
    """Why no time split fits these labelled dates, and what would truly make room.

    Train, validation and test need one as-of date each with a gap between them: the
    labelled dates must span more than two gaps. Weekly snapshots are suggested only to
    snapshots taken less often (they pack the windows closer; they cannot lengthen a span).
    """
    first, last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
    span = (last - first).days
    longest = _longest_gap(dates)
    spacing = (
        float(np.median(np.diff(dates).astype("timedelta64[D]").astype(float)))
        if len(dates) > 1
        else 0.0
    )
    fixes = [
        f"a labelled history about {max(2 * gap_days - span, 1)} days longer (snapshots from an "
        "earlier date: radar features --start, or more history in the data)"
    ]
    if spacing > 7:
        fixes.append("weekly snapshots (radar features --freq weekly) to pack the windows closer")
    return (
        f"labelled snapshots span {first.date()} .. {last.date()} ({span} days, {len(dates)} "
        f"as-of dates): a time split with {gap_days}-day gaps needs more than "
        f"{2 * gap_days} days (train, a gap, validation, a gap, test), so even one as-of date "
        "each for test and validation leaves nothing to train on; "
        + (
            f"this history supports label horizons up to {longest} days"
            if longest
            else "too few labelled as-of dates for any time split"
        )
        + "; what would make room: "
        + "; or ".join(fixes)
    )


def _longest_gap(dates: np.ndarray) -> int | None:
    """The longest gap in days for which one-date windows still leave a date to train on."""
    best = None
    for gap in range(1, 366):
        if _windows(dates, 1, gap) is None:
            break
        best = gap
    return best
