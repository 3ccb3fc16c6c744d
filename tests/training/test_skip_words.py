"""Skips say the real shortfall and what would truly make room (issue 33), on small inputs."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.catalogue import RENEWAL_LABEL, RENEWAL_WINDOW_DAYS
from training.config import TrainConfig
from training.splits import adaptive_time_split
from training.train import _options, _too_few, renewal_horizon


def _stats(*parts: tuple[int, int]) -> list[dict]:
    names = ("train", "validation", "test")
    return [
        {"head": "h", "part": p, "rows": r, "positives": k}
        for p, (r, k) in zip(names, parts, strict=True)
    ]


def test_a_skip_names_positives_when_rows_suffice():
    cfg = TrainConfig()
    why = _too_few("renewal_likelihood", _stats((5000, 400), (1905, 29), (1800, 40)), cfg)
    assert "too few positives" in why and "too few rows" not in why
    assert "validation has 1,905 rows, 29 positives" in why
    why = _too_few("h", _stats((5000, 400), (90, 40), (1800, 400)), cfg)
    assert "too few rows to train" in why
    why = _too_few("h", _stats((5000, 4980), (900, 890), (900, 880)), cfg)
    assert "too few negatives" in why


def test_no_room_for_the_gaps_is_said_truthfully_for_weekly_and_monthly_snapshots():
    weekly = pd.Series(pd.date_range("2025-01-05", "2025-12-28", freq="W-SUN"))
    monthly = pd.Series(pd.date_range("2025-01-31", "2025-12-31", freq="ME"))
    for times, weekly_said in ((weekly, False), (monthly, True)):
        with pytest.raises(ValueError) as exc:
            adaptive_time_split(times, pd.Series(True, index=times.index), 90, 90, 180)
        said = str(exc.value)
        assert "needs more than 360 days" in said and "days longer" in said
        assert ("--freq weekly" in said) is weekly_said, said


def test_weekly_is_offered_only_to_monthly_snapshots():
    refused = {"h": "h: skipped, too few rows"}
    for freq, offered in (("monthly", True), ("weekly", False)):
        data = SimpleNamespace(
            source={"kind": "snapshots", "manifest": {"config": {"freq": freq}}}, time="as_of"
        )
        assert ("--freq weekly" in _options(data, refused)) is offered


def test_the_renewal_horizon_fits_the_contracts_terms():
    frame = pd.DataFrame(
        {
            RENEWAL_LABEL: [1.0, 0.0, np.nan, 1.0],
            "days_to_renewal": [12.0, 30.4, 150.0, np.nan],  # monthly plans; 150: unlabelled
        }
    )
    assert renewal_horizon(frame) == 31  # monthly contracts decide within a month
    frame.loc[2, RENEWAL_LABEL] = 1.0  # an annual contract 150 days from its decision
    assert renewal_horizon(frame) == 150
    assert renewal_horizon(frame.drop(columns="days_to_renewal")) == RENEWAL_WINDOW_DAYS


def test_a_long_log_warning_wraps_in_piped_output():
    code = (
        "import logging; from radar.cli import main; main(verbose=False); "
        "logging.getLogger('x').warning(', '.join(f'plan {i}' for i in range(400)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stderr.splitlines()
    assert len(lines) > 10 and max(len(line) for line in lines) <= 100
    assert "plan 399" in out.stderr
