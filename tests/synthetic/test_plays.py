"""Plays in the synthetic world: off by default, and their true effect shows in outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import validate_dataset
from features.synthetic.dataset import generate_dataset, load_world
from features.synthetic.oracle import Oracle
from features.synthetic.process import PlaysConfig, SyntheticConfig


def test_plays_off_by_default(small_dataset):
    assert not SyntheticConfig().plays.enabled
    assert not (small_dataset / "csm_actions.parquet").exists()
    assert not (small_dataset / "ground_truth" / "play_effects.parquet").exists()


pytestmark = pytest.mark.slow  # one 2,000-account world with plays: about 40 s


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A randomised experiment: half the chosen accounts held out, the rule play for the rest."""
    effects = {k: v.model_dump() for k, v in PlaysConfig().effects.items()}
    effects["adoption_plan"]["churn_logit"] = -2.0  # large, so 2,000 accounts measure it
    plays = {
        "enabled": True,
        "holdout": 0.5,
        "rule_share": 1.0,
        "plays_per_csm_month": 40,
        "effects": effects,
    }
    cfg = SyntheticConfig.from_yaml(None, plays=plays)
    out = tmp_path_factory.mktemp("plays") / "data"
    generate_dataset(out, 2000, 12, 3, cfg)
    return out, cfg


def _arms(out) -> pd.DataFrame:
    """Chosen accounts at the month end before the start: treated or held out, with truth."""
    acts = pd.read_parquet(out / "csm_actions.parquet")
    chosen = acts[acts["action"].isin(["play_started", "opened"])].copy()
    chosen["as_of"] = (chosen["date"] - pd.Timedelta(days=1)).astype("datetime64[s]")
    truth = pd.read_parquet(out / "ground_truth" / "play_effects.parquet")
    gt = pd.read_parquet(out / "ground_truth" / "accounts.parquet")
    df = chosen.merge(truth, on=["account_id", "as_of"]).merge(
        gt[["account_id", "churn_date"]], on="account_id"
    )
    end = gt["churn_date"].max()  # the simulated window closes after the last churn
    df = df[df["as_of"] + pd.Timedelta(days=90) <= end]
    df["churned"] = (df["churn_date"] > df["as_of"]) & (
        df["churn_date"] <= df["as_of"] + pd.Timedelta(days=90)
    )
    return df


def test_a_play_on_accounts_of_its_cause_changes_churn_by_the_configured_amount(experiment):
    out, cfg = experiment
    df = _arms(out)
    only_adoption = df["cause_adoption"] & ~df["cause_relationship"] & ~df["cause_support"]
    arm = df[only_adoption]
    treated = arm[arm["play"] == "adoption_plan"]
    control = arm[arm["action"] == "opened"]
    assert len(treated) > 300 and len(control) > 300
    observed = treated["churned"].mean() - control["churned"].mean()
    # What the configured logit change implies for these accounts (the oracle applies it).
    implied = (arm["p_churn_adoption_plan"] - arm["p_churn_none"]).mean()
    assert implied < -0.03
    p0 = control["churned"].mean()
    se = np.sqrt(p0 * (1 - p0) * (1 / len(treated) + 1 / len(control)))
    assert abs(observed - implied) < 3 * se, (observed, implied, se)
    assert observed < -2 * se  # a real, measurable effect
    # The untreated oracle probability matches the control arm's realised churn.
    assert abs(control["churned"].mean() - control["p_churn_none"].mean()) < 3 * se


def test_a_play_elsewhere_does_little_and_value_review_costs_expansion(experiment):
    out, _ = experiment
    truth = pd.read_parquet(out / "ground_truth" / "play_effects.parquet")
    no_cause = ~truth[["cause_relationship", "cause_adoption", "cause_support"]].any(axis=1)
    t = truth[no_cause]
    outreach = (t["p_churn_executive_outreach"] - t["p_churn_none"]).mean()
    review = (t["p_churn_value_review"] - t["p_churn_none"]).mean()
    assert -0.01 < outreach <= 0
    assert review < outreach
    assert (truth["p_expansion_value_review"] < truth["p_expansion_none"]).all()
    assert np.allclose(truth["p_churn_engagement_revival"], truth["p_churn_none"])


def test_csm_actions_are_valid_contract_rows(experiment):
    out, cfg = experiment
    report = validate_dataset(out)
    assert report.ok, report.summary()
    assert report.missing_optional == []
    acts = pd.read_parquet(out / "csm_actions.parquet")
    started = acts[acts["action"] == "play_started"]
    done = acts[acts["action"] == "play_done"]
    assert set(started["play"]) <= set(cfg.plays.effects)
    assert set(done["outcome"]) <= {"success", "churned"}
    assert started["cta_id"].is_unique and set(done["cta_id"]) <= set(started["cta_id"])
    assert set(acts.loc[acts["action"] == "opened", "reason"]) == {"holdout"}


def test_reloaded_world_gives_the_same_play_effects(experiment):
    out, _ = experiment
    truth = pd.read_parquet(out / "ground_truth" / "play_effects.parquet")
    T = truth["as_of"].sort_values().unique()[6]
    again = Oracle(load_world(out)).play_probabilities(np.datetime64(T, "D"))
    saved = truth[truth["as_of"] == T].reset_index(drop=True)
    assert len(again) == len(saved)
    for col in ("p_churn_none", "p_churn_adoption_plan", "p_expansion_value_review"):
        assert np.allclose(again[col], saved[col])
