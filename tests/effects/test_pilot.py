"""A randomised pilot: plays given at random with a recorded chance, and the OPE that uses it.

Pure functions on small frames: the simulator's pilot draws with the chance it records, the
effect table carries that chance, and the switch-DR policy score keeps a pilot play's
correction below the switch, so that it sees an effect the outcome model misses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from effects.config import EffectsConfig
from effects.data import NONE, PILOT, EffectsError, check_actions, effect_table
from effects.policy import switch_scores
from features.synthetic.plays import PlayPolicy
from features.synthetic.process import SHOCKS, SyntheticConfig
from features.words import PLAYS


def _policy_months(pilot: float, n: int = 20_000, months: int = 10):
    """A PlayPolicy run for ``months`` on a random portfolio; the pilot's pool, summed."""
    cfg = SyntheticConfig.from_yaml(None, plays={"enabled": True, "pilot": pilot})
    rng = np.random.default_rng(5)
    policy = PlayPolicy(cfg, n, np.random.default_rng(6))
    health = rng.normal(0, 1, n)
    growth = rng.normal(0, 1, n)
    arr = rng.lognormal(10, 1, n)
    pool = 0
    for m in range(months):
        eligible = rng.random(n) < 0.95
        recent = rng.random((n, len(SHOCKS))) < 0.05
        before = sum(len(p[0]) for p in policy.parts) - sum(len(q) for _, q in policy.pilots)
        policy.month(600 + m, eligible, health, growth, arr, recent)
        after = sum(len(p[0]) for p in policy.parts) - sum(len(q) for _, q in policy.pilots)
        pool += eligible.sum() - (after - before)  # eligible, not the team's this month
    return cfg, policy, pool


def test_the_pilot_draws_with_the_chance_it_records():
    cfg, policy, pool = _policy_months(0.2)
    n, months = 20_000, 10
    capacity = n // cfg.plays.accounts_per_csm * cfg.plays.plays_per_csm_month
    rec = policy.record()
    reason, q = policy._pilot_columns(len(rec.account))
    pilot = reason == PILOT
    # The expected pilot plays per month are the configured share of the capacity.
    expected = 0.2 * capacity * months
    assert abs(pilot.sum() - expected) < 5 * np.sqrt(expected), (pilot.sum(), expected)
    assert (q[pilot] > 0).all() and (q[pilot] < 1).all() and np.isnan(q[~pilot]).all()
    # The team's plays shrink by the pilot's share (same CSMs): about 0.8 of the capacity.
    assert abs((~pilot).sum() / months - 0.8 * capacity) < 0.1 * capacity
    # Never the team's account of the same month.
    team = set(zip(rec.account[~pilot], rec.month[~pilot], strict=True))
    assert not team & set(zip(rec.account[pilot], rec.month[pilot], strict=True))
    # The recorded chances are the draw's: every account of the pool had a chance of every
    # play, so per play the sum of 1/q over the drawn counts the pool (Horvitz-Thompson).
    for play in cfg.plays.effects:
        drawn = q[pilot & (rec.play == play)]
        se = np.sqrt(((1 - drawn) / drawn**2).sum())
        assert abs((1 / drawn).sum() - pool) < 4 * se, (play, (1 / drawn).sum(), pool, se)
    frame = policy.actions(
        np.array([f"A{i}" for i in range(n)], dtype=object),
        np.full(n, "csm_001", dtype=object),
        np.full(n, np.datetime64("NaT"), "datetime64[D]"),
        np.datetime64("2030-01-01"),
    )
    started = frame[frame["action"] == "play_started"]
    assert (started["reason"] == PILOT).sum() == pilot.sum()
    assert started.loc[started["reason"] == PILOT, "propensity"].between(0, 1).all()


def test_without_a_pilot_nothing_changes():
    _, policy, _ = _policy_months(0.0, n=4000, months=3)
    assert not policy.pilots
    frame = policy.actions(
        np.array([f"A{i}" for i in range(4000)], dtype=object),
        np.full(4000, "csm_001", dtype=object),
        np.full(4000, np.datetime64("NaT"), "datetime64[D]"),
        np.datetime64("2030-01-01"),
    )
    assert "propensity" not in frame and frame["reason"].isna().all()


def _actions(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["account_id", "date", "action", "play", "reason", "propensity"]
    ).assign(outcome=None, owner="csm_001", cta_id=None, date=lambda d: pd.to_datetime(d["date"]))


def test_the_effect_table_carries_a_pilot_plays_chance_and_a_bad_one_is_refused():
    snaps = pd.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "as_of": pd.Timestamp("2025-01-31"),
            "churn_90d": [0, 1, 0],
        }
    )
    acts = _actions(
        [
            ("A", "2025-02-01", "play_started", "adoption_plan", PILOT, 0.02),
            ("B", "2025-02-01", "play_started", "value_review", None, np.nan),
        ]
    )
    table = effect_table(snaps, acts, EffectsConfig())
    assert table["treatment"].tolist() == ["adoption_plan", "value_review", NONE]
    assert table["pilot_propensity"].iloc[0] == 0.02
    assert table["pilot_propensity"].iloc[1:].isna().all()
    first, last = pd.Timestamp("2025-01-31"), pd.Timestamp("2025-12-31")
    check_actions(acts, first, last)
    bad = _actions([("A", "2025-02-01", "play_started", "adoption_plan", PILOT, np.nan)])
    with pytest.raises(EffectsError, match="row 0: a pilot play needs its chance"):
        check_actions(bad, first, last)


def test_the_pilot_lets_the_policy_score_see_an_effect_the_outcome_model_misses():
    """Rows where the team seldom plays (1-2.5%, under the switch); a play lowers churn by 0.1.

    The outcome model gives the play no effect (mu = the untreated risk), as LightGBM does on
    the synthetic world. Switch-DR then scores the play as doing nothing; with a pilot of
    known chance 2% its rows keep their correction and the score finds the true effect.
    """
    rng = np.random.default_rng(11)
    n = 120_000
    risky = rng.random(n) < 0.5
    p0 = np.where(risky, 0.4, 0.2)
    p1 = p0 - 0.1
    team = rng.random(n) < np.where(risky, 0.025, 0.01)  # confounded: the riskier more often
    q = 0.02
    pilot = ~team & (rng.random(n) < q)
    got = team | pilot
    y = (rng.random(n) < np.where(got, p1, p0)).astype(float)
    # econml's propensities and DR scores: mu + 1{T = a} (y - mu) / p.
    p_play = np.where(risky, 0.025, 0.01) + q * (1 - np.where(risky, 0.025, 0.01))
    mu = p0
    rows = pd.DataFrame(
        {
            "outcome": y,
            "treatment": np.where(got, "adoption_plan", NONE),
            "propensity_none": 1 - p_play,
            "propensity_adoption_plan": p_play,
            "gamma_none": np.where(got, mu, mu + (y - mu) / (1 - p_play)),
            "gamma_adoption_plan": np.where(got, mu + (y - mu) / p_play, mu),
        }
    )
    truth = p1.mean()
    plain = switch_scores(rows, 0.05)["adoption_plan"]
    assert plain.mean() == pytest.approx(p0.mean(), abs=1e-9)  # no effect seen at all
    with_pilot = rows.assign(pilot_propensity=np.where(pilot, q, np.nan))
    scores = switch_scores(with_pilot, 0.05)["adoption_plan"]
    se = scores.std() / np.sqrt(n)
    assert abs(scores.mean() - truth) < 4 * se, (scores.mean(), truth, se)
    assert scores.mean() < p0.mean() - 10 * se  # the effect, seen
    # Only the pilot's rows change; the team's rows below the switch keep the outcome model.
    changed = scores != plain
    assert (changed == pilot).all()
    # The untreated arm's score is untouched by the pilot.
    assert np.array_equal(switch_scores(with_pilot, 0.05)[NONE], switch_scores(rows, 0.05)[NONE])


def test_every_play_has_its_hours():
    assert set(EffectsConfig().play_hours) == set(PLAYS)


def test_a_pilot_without_plays_is_refused(tmp_path, capsys):
    import typer

    from radar.data import generate

    out = tmp_path / "g"
    with pytest.raises(typer.Exit) as stop:  # in-process: a fresh `radar` costs ~10 s here
        generate(out=out, accounts=5, pilot=0.2)
    assert stop.value.exit_code == 1
    assert "--pilot is a share of simulated plays: give --plays with it" in capsys.readouterr().err
    assert not out.exists()
