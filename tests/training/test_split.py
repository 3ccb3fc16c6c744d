from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.config import TrainConfig
from training.data import time_split


def month_ends(n: int, start: str = "2024-01-31") -> pd.Series:
    return pd.Series(pd.date_range(start, periods=n, freq="ME"))


@settings(max_examples=60, deadline=None)
@given(
    months=st.integers(12, 40),
    weekly=st.booleans(),
    test_days=st.integers(7, 120),
    val_days=st.integers(7, 120),
    gap=st.sampled_from([30, 60, 90, 120]),
    unlabelled_tail=st.integers(0, 4),
)
def test_windows_are_ordered_and_gapped(months, weekly, test_days, val_days, gap, unlabelled_tail):
    freq = "W-SUN" if weekly else "ME"
    times = pd.Series(pd.date_range("2024-01-01", periods=months * (4 if weekly else 1), freq=freq))
    labelled = pd.Series(True, index=times.index)
    labelled.iloc[len(times) - unlabelled_tail :] = False
    try:
        s = time_split(times, labelled, test_days, val_days, gap)
    except ValueError as exc:
        assert "too short" in str(exc) or "nothing left to train" in str(exc)
        return
    part = s.assign(times)
    train, val, test = (times[part == p] for p in ("train", "validation", "test"))
    assert len(train) and len(val) and len(test)
    # a label window (T, T + gap] of one split ends by the next split's first as-of date, so
    # it never overlaps that split's own label windows
    assert train.max() + pd.Timedelta(days=gap) <= val.min()
    assert val.max() + pd.Timedelta(days=gap) <= test.min()
    # the test window is the latest labelled one, and never holds unlabelled rows
    assert test.max() == times[labelled].max()
    assert labelled[test.index].all()
    assert (test.max() - test.min()).days < test_days
    assert (val.max() - val.min()).days < val_days
    # no row in two splits
    assert not (set(train.index) & set(val.index) or set(val.index) & set(test.index))


def test_split_of_24_monthly_snapshots():
    times = month_ends(24, "2025-01-31")
    labelled = times <= "2026-07-31"
    s = time_split(times, labelled, 90, 90, 90)
    assert s.as_dict() == {
        "train_start": "2025-01-31",
        "train_end": "2025-09-30",
        "validation_start": "2025-12-31",
        "validation_end": "2026-02-28",
        "test_start": "2026-05-31",
        "test_end": "2026-07-31",
        "gap_days": 90,
    }


def test_too_short_history_is_refused_with_the_span():
    times = month_ends(8)
    with pytest.raises(
        ValueError, match=r"span 2024-01-31 \.\. 2024-08-31: .*need more than 360 days"
    ):
        time_split(times, pd.Series(True, index=times.index), 90, 90, 90)


def test_gap_shorter_than_the_horizon_is_refused():
    cfg = TrainConfig.from_yaml(**{"split.gap_days": 60})
    assert cfg.gap([30]) == 60
    with pytest.raises(ValueError, match="shorter than the 90-day label horizon"):
        cfg.gap([30, 90])
    assert TrainConfig().gap([30, 90]) == 90


def test_config_overrides_and_unknown_keys(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("seed: 4\nlightgbm:\n  num_leaves: 7\n")
    cfg = TrainConfig.from_yaml(path, **{"lightgbm.max_trees": 10, "seed": None})
    assert (cfg.seed, cfg.lightgbm.num_leaves, cfg.lightgbm.max_trees) == (4, 7, 10)
    path.write_text("lightgbm:\n  num_leafs: 7\n")
    with pytest.raises(ValueError, match="num_leafs"):
        TrainConfig.from_yaml(path)
    with pytest.raises(ValueError, match="unknown head"):
        TrainConfig.from_yaml(heads=["churn_60d"])
