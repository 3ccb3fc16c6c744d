"""The effect table: treatment after T, history before it (point in time)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from effects.config import EffectsConfig
from effects.data import LAST_PLAY, NONE, effect_table


def test_history_is_what_happened_up_to_t_and_treatment_what_started_after():
    snaps = pd.DataFrame(
        {
            "account_id": ["A", "A", "A", "B"],
            "as_of": pd.to_datetime(["2026-01-31", "2026-02-28", "2026-03-31", "2026-03-31"]),
            "churn_90d": [0, 0, 1, 0],
        }
    )
    actions = pd.DataFrame(
        {
            "account_id": ["A", "A", "B"],
            "date": ["2025-12-01", "2026-02-01", "2026-04-10"],
            "action": "play_started",
            "reason": "",
            "play": ["value_review", "adoption_plan", "executive_outreach"],
        }
    )
    t = effect_table(snaps, actions, EffectsConfig())
    # A: a play on Feb 1 is the treatment of Jan 31 (inside 30 days) and history after.
    assert list(t["treatment"]) == ["adoption_plan", NONE, NONE, "executive_outreach"]
    assert list(t["plays_before_180d"]) == [1, 2, 2, 0]
    days = t[LAST_PLAY].to_numpy()
    assert days[:3].tolist() == [61.0, 27.0, 58.0]  # from Dec 1, then from Feb 1
    assert np.isnan(days[3])  # B had no play before T: unknown, not zero
    assert list(t["outcome"]) == [0.0, 0.0, 1.0, 0.0]
