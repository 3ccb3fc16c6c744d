"""The analysis' split of the as-of dates: the worklist is judged on outcomes it never saw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from effects.config import EffectsConfig
from effects.data import POLICY_SHARE, policy_split


def test_the_worklist_learns_a_horizon_before_the_dates_that_judge_it():
    dates = np.array(pd.date_range("2025-01-31", periods=20, freq="ME"))
    cut, learn_end = policy_split(dates, EffectsConfig())
    assert cut == pd.Timestamp(dates[int(20 * POLICY_SHARE)])
    # churn_90d: a row learned from ends its outcome window before the first judged date.
    assert learn_end == cut - pd.Timedelta(days=90)
    learned = dates[dates < learn_end]
    assert (learned + pd.Timedelta(days=90) < cut).all() and len(learned) >= 8
    _, end30 = policy_split(dates, EffectsConfig(outcome="churn_30d"))
    assert end30 == cut - pd.Timedelta(days=30)


def test_past_max_accounts_the_estimate_learns_from_a_sample_and_the_worklist_covers_all():
    from effects.run import analyse, learning_sample
    from tests.effects.test_estimate import _confounded

    df, _ = _confounded(n=3000, seed=5)
    df["rule_play"] = np.where(df["cause_adoption"], "adoption_plan", "value_review")
    two = pd.concat([df, df.assign(as_of=pd.Timestamp("2026-02-28"))], ignore_index=True)
    cfg = EffectsConfig(max_accounts=1000, n_estimators=40)
    sample = learning_sample(two, cfg)
    assert sample["account_id"].nunique() == 1000
    assert (sample.groupby("account_id").size() == 2).all()  # every month of a drawn account
    assert learning_sample(two, cfg).equals(sample)  # seeded
    assert learning_sample(two, EffectsConfig()).equals(two)  # under the cap: all of it

    report = analyse(df, cfg)
    assert (report.accounts_total, report.accounts_learned) == (3000, 1000)
    learned = set(report.result.rows["account_id"])
    assert learned <= set(learning_sample(df, cfg)["account_id"]) and len(learned) > 900
    assert len(report.accounts) == 3000  # every account gets its effects and chosen play
    assert not set(report.worklist["account_id"]) <= learned


def test_the_programs_plays_and_arr_saved_count_every_account_not_only_the_sample():
    from effects.artefact import summary
    from effects.estimate import predict
    from effects.run import analyse
    from tests.effects.test_estimate import _confounded

    df, _ = _confounded(n=3000, seed=6)
    df["rule_play"] = np.where(df["cause_adoption"], "adoption_plan", "value_review")
    cfg = EffectsConfig(max_accounts=1500, n_estimators=40)
    report = analyse(df, cfg)
    out = summary(report, cfg, "test")
    assert (out["accounts"], out["accounts_learned"]) == (3000, 1500)
    plays = {p["play"]: p for p in out["plays"]}
    got = df["treatment"] == "adoption_plan"
    assert (
        plays["adoption_plan"]["treated"] == got.sum() > report.result.play("adoption_plan").treated
    )
    effect = predict(report.result, df[got])["cate_adoption_plan"]
    saved = -(effect * df.loc[got, "arr"]).sum()  # every account's, by the estimate's model
    assert plays["adoption_plan"]["saved_arr"]["estimate"] == pytest.approx(saved, rel=1e-6)
    assert plays["adoption_plan"]["hours"] == got.sum() * cfg.play_hours["adoption_plan"]
