"""Model inputs: the feature spec, the snapshot table, and the time-based split."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from features.catalogue import CATEGORICAL, FEATURES, product_feature_columns

log = logging.getLogger(__name__)

MAX_LEVELS = 200  # a text column with more distinct values is an identifier, not a category


@dataclass(frozen=True)
class FeatureSpec:
    """The model's inputs, in order, with the categorical levels fixed at training time.

    Attributes:
        numeric: Numeric (and boolean) feature columns.
        categorical: Categorical feature columns and their levels; other values become missing.

    """

    numeric: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """All feature columns, numeric first."""
        return [*self.numeric, *self.categorical]

    @classmethod
    def from_catalogue(cls, product_features: tuple[str, ...] | None = ()) -> FeatureSpec:
        """The spec of the snapshot table: every catalogue feature the model uses.

        ``product_features``: those the table has usage columns for (its manifest's).
        """
        cols = FEATURES + product_feature_columns(product_features or ())
        return cls(
            numeric=tuple(f.name for f in cols if not f.categorical and f.modelled),
            categorical={name: tuple(levels) for name, levels in CATEGORICAL.items()},
        )

    @classmethod
    def infer(cls, df: pd.DataFrame, exclude: set[str]) -> FeatureSpec:
        """A spec for a table of one's own: numbers and booleans as numeric, text as categories.

        Date columns and ``exclude`` are left out; so is text with more than ``MAX_LEVELS``
        distinct values (an identifier, not a category).
        """
        numeric, categorical = [], {}
        for col in df.columns:
            if col in exclude:
                continue
            s = df[col]
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                numeric.append(col)
            elif isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s):
                levels = sorted(str(v) for v in s.dropna().unique())
                if len(levels) > MAX_LEVELS:
                    log.warning(
                        "%s: %d distinct values, left out as an identifier", col, len(levels)
                    )
                    continue
                categorical[col] = tuple(levels)
        if not numeric and not categorical:
            raise ValueError("the table has no feature columns besides the excluded ones")
        return cls(tuple(numeric), categorical)

    def to_json(self) -> str:
        """JSON text of the spec."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        return cls(tuple(raw["numeric"]), {k: tuple(v) for k, v in raw["categorical"].items()})

    def matrix(self, df: pd.DataFrame) -> np.ndarray:
        """Float matrix in spec order: categories as their level index, missing as NaN.

        Absent columns are all missing; values outside a column's levels are missing too.
        """
        out = np.full((len(df), len(self.names)), np.nan)
        cols = set(df.columns)
        present = [j for j, c in enumerate(self.numeric) if c in cols]
        if present:
            block = df[[self.numeric[j] for j in present]]
            try:  # one conversion for the whole block: the common, all-numeric case
                out[:, present] = block.to_numpy(dtype="float64", na_value=np.nan)
            except (TypeError, ValueError):  # text in a numeric column: that value is missing
                coerced = block.apply(pd.to_numeric, errors="coerce").astype("float64")
                out[:, present] = coerced.to_numpy(na_value=np.nan)
        offset = len(self.numeric)
        for j, (col, levels) in enumerate(self.categorical.items()):
            if col in df.columns:
                codes = pd.Index(levels).get_indexer(df[col].astype("str"))
                out[:, offset + j] = np.where(codes < 0, np.nan, codes)
        return out

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """The features as a DataFrame: floats, and pandas categories with the fixed levels."""
        x = self.matrix(df)
        cols = {c: x[:, j] for j, c in enumerate(self.numeric)}
        for j, (col, levels) in enumerate(self.categorical.items()):
            codes = x[:, len(self.numeric) + j]
            cols[col] = pd.Categorical.from_codes(
                np.where(np.isnan(codes), -1, codes).astype(int), categories=list(levels)
            )
        return pd.DataFrame(cols, index=df.index)


@dataclass(frozen=True)
class TimeSplit:
    """As-of windows, inclusive: train <= train_end < validation < test; gaps between them."""

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    validation_start: pd.Timestamp
    validation_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    gap_days: int

    def assign(self, times: pd.Series) -> pd.Series:
        """``train``, ``validation``, ``test`` or missing (in a gap or after the test window)."""
        t = pd.to_datetime(times)
        out = pd.Series(pd.NA, index=times.index, dtype="str")
        out[t.between(self.train_start, self.train_end)] = "train"
        out[t.between(self.validation_start, self.validation_end)] = "validation"
        out[t.between(self.test_start, self.test_end)] = "test"
        return out

    def as_dict(self) -> dict[str, str | int]:
        """Dates as ISO strings, for logging."""
        return {
            k: (v.date().isoformat() if isinstance(v, pd.Timestamp) else v)
            for k, v in asdict(self).items()
        }


def time_split(
    times: pd.Series,
    labelled: pd.Series,
    test_days: int,
    validation_days: int,
    gap_days: int,
) -> TimeSplit:
    """Split as-of dates into train, validation and test windows with gaps between them.

    Args:
        times: As-of date of each row.
        labelled: Whether each row's labels are all known (its label windows end in the data).
        test_days: Length of the test window, ending at the last labelled as-of date.
        validation_days: Length of the validation window.
        gap_days: Days between the end of one window and the start of the next; at least the
            label horizon, so that a label window (T, T + h] never reaches the next split.

    Raises:
        ValueError: When the data is too short for three windows and two gaps.

    """
    t = pd.to_datetime(times)
    known = t[labelled.to_numpy(dtype=bool)]
    if known.empty:
        raise ValueError("no snapshot has known labels: the data ends before any label window")
    dates = np.sort(known.unique())
    last = pd.Timestamp(dates[-1])
    day = pd.Timedelta(days=1)
    test = dates[dates > last - test_days * day]
    test_start = pd.Timestamp(test[0])
    val_end_limit = test_start - gap_days * day
    val = dates[(dates <= val_end_limit) & (dates > val_end_limit - validation_days * day)]
    need = test_days + validation_days + 2 * gap_days
    span = f"{pd.Timestamp(dates[0]).date()} .. {last.date()}"
    if len(val) == 0:
        raise ValueError(
            f"labelled snapshots span {span}: too short for a {test_days}-day test window, a "
            f"{gap_days}-day gap and a validation window (need more than {need} days)"
        )
    val_start = pd.Timestamp(val[0])
    train = dates[dates <= val_start - gap_days * day]
    if len(train) == 0:
        raise ValueError(
            f"labelled snapshots span {span}: nothing left to train on before the validation "
            f"window and its {gap_days}-day gap (need more than {need} days)"
        )
    return TimeSplit(
        train_start=pd.Timestamp(train[0]),
        train_end=pd.Timestamp(train[-1]),
        validation_start=val_start,
        validation_end=pd.Timestamp(val[-1]),
        test_start=test_start,
        test_end=last,
        gap_days=gap_days,
    )
