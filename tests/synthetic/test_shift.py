"""The generator's shift option: the world changes from a month on, and the oracle follows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.synthetic.dataset import generate_dataset, load_world
from features.synthetic.oracle import Oracle
from features.synthetic.process import SyntheticConfig, churn_probability, observed_utilisation
from tests.synthetic.mc import monte_carlo

SHIFT = {"month": "2025-06", "churn_logit": 1.2, "utilisation_logit": -1.0}


def test_shift_applies_from_its_month_only():
    cfg = SyntheticConfig(shift=SHIFT)
    june = int(np.datetime64("2025-06", "M").astype(np.int64))
    h, seg, term = np.array([0.0]), np.array([2]), np.array([1])
    args = (h, seg, term, np.array([1.0]), np.array([True]))
    base = churn_probability(SyntheticConfig(), *args)
    assert churn_probability(cfg, *args, june - 1) == pytest.approx(base)
    after = churn_probability(cfg, *args, june)
    logit = np.log(after / (1 - after)) - np.log(base / (1 - base))
    assert logit == pytest.approx(1.2)
    util = np.array([0.6])
    assert observed_utilisation(cfg, util, june - 1) == util
    assert observed_utilisation(cfg, util, june)[0] < 0.4
    with pytest.raises(ValueError):
        SyntheticConfig(shift={"month": "2025-13"})


@pytest.mark.slow
def test_same_world_before_the_shift_and_the_oracle_follows_it(tmp_path):
    base = generate_dataset(tmp_path / "base", 300, 12, 4).path
    shifted = generate_dataset(tmp_path / "shift", 300, 12, 4, SyntheticConfig(shift=SHIFT)).path
    subs = {
        k: pd.read_parquet(p / "subscriptions.parquet").sort_values(["account_id", "start_date"])
        for k, p in (("base", base), ("shift", shifted))
    }
    cut = pd.Timestamp("2025-06-01")
    before = {k: s[s["start_date"] < cut].reset_index(drop=True) for k, s in subs.items()}
    pd.testing.assert_frame_equal(before["base"], before["shift"])
    after = {k: (s["start_date"] >= cut) & (s["change_type"] == "churn") for k, s in subs.items()}
    assert after["shift"].sum() > after["base"].sum()

    world = load_world(shifted)
    probs = Oracle(world).probabilities("2025-05-15").sort_values("p_churn_90d")
    for _, row in probs.iloc[[len(probs) // 2, -5, -1]].iterrows():
        i = int(row["account_index"])
        churn, _ = monte_carlo(world, i, "2025-05-15", 90, draws=100_000, seed=i)
        assert abs(row["p_churn_90d"] - churn) < 0.006, i
