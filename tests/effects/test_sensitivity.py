"""Robustness to unseen confounding: a hidden factor of known strength, and econml's figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from effects.config import EffectsConfig
from effects.data import NONE
from effects.estimate import estimate_effects
from effects.evaluate import strength_needed
from effects.sensitivity import bounds, params, robustness

PLAY = "adoption_plan"


def _hidden(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    """A play with no effect, given more often where a factor raises churn.

    The factor is the column ``usage_hidden`` (a usage column: the estimate adjusts for it);
    dropping the column hides it.
    """
    rng = np.random.default_rng(seed)
    nps, hidden = rng.normal(0, 1, n), rng.normal(0, 1, n)
    util = np.clip(rng.normal(0.6, 0.2, n), 0, 1)
    play = rng.random(n) < 1 / (1 + np.exp(-(-2.0 - 0.8 * nps + hidden)))
    churn = rng.random(n) < 1 / (1 + np.exp(-(-1.5 - 0.8 * nps + hidden)))  # the play: none
    return pd.DataFrame(
        {
            "account_id": [f"A{i:06d}" for i in range(n)],
            "as_of": pd.Timestamp("2026-01-31"),
            "nps_latest": nps,
            "seat_utilisation": util,
            "usage_hidden": hidden,
            "segment": rng.choice(["enterprise", "mid_market", "smb"], n),
            "arr": rng.lognormal(10, 1, n),
            "days_to_renewal": rng.integers(0, 365, n),
            "plays_before_180d": 0,
            "treatment": np.where(play, PLAY, NONE),
            "outcome": churn.astype(float),
            "cause_relationship": False,
            "cause_support": False,
            "cause_adoption": util < 0.5,
        }
    )


@pytest.fixture(scope="module")
def seen_and_hidden():
    df, cfg = _hidden(), EffectsConfig(n_estimators=80, min_treated=50)
    return estimate_effects(df, cfg), estimate_effects(df.drop(columns="usage_hidden"), cfg)


def test_a_hidden_factor_lies_within_the_bound_of_its_own_strength(seen_and_hidden):
    seen, hidden = seen_and_hidden
    true = 0.0
    with_factor, without = seen.play(PLAY).effect, hidden.play(PLAY).effect
    assert with_factor.low <= true <= with_factor.high
    assert without.low > 0.05  # hidden, the factor makes a play that does nothing look harmful
    # The factor's strength, as the bound defines it: the share of the outcome's residual
    # variance it explains, and of the representer's (who gets the play).
    long, short = params(seen.rows, PLAY), params(hidden.rows, PLAY)
    c_y, c_t = 1 - long.sigma / short.sigma, 1 - short.nu / long.nu
    assert 0.02 < c_y < 0.5 and 0.02 < c_t < 0.8
    lo, hi = bounds(short, c_y, c_t, hidden.confidence)
    assert lo <= true <= hi and lo <= with_factor.estimate <= hi
    # The effect the hidden factor made up is erased by a weaker one than itself: fragile.
    rv = hidden.play(PLAY).robustness
    assert 0 < rv.interval < rv.estimate < c_y
    assert robustness(short, hidden.confidence) == rv
    lo, hi = bounds(short, rv.interval, rv.interval, hidden.confidence)
    assert lo == pytest.approx(0, abs=1e-4)  # at its robustness value the interval reaches zero
    # Judged against a truth of zero, the strength needed to hold it is the robustness value.
    assert strength_needed(short, true, hidden.confidence) == pytest.approx(rv.interval, abs=1e-4)
    assert strength_needed(long, true, seen.confidence) == 0
    # With the factor seen, the interval already holds zero: nothing to erase.
    assert seen.play(PLAY).robustness.interval == 0


def test_the_bound_is_around_the_estimate_and_grows_with_the_strength(seen_and_hidden):
    _, hidden = seen_and_hidden
    p, effect = params(hidden.rows, PLAY), hidden.play(PLAY).effect
    assert p.theta == pytest.approx(effect.estimate, abs=1e-12)  # the same average effect
    lo, hi = bounds(p, 0, 0, hidden.confidence)
    assert (lo, hi) == pytest.approx((effect.low, effect.high), rel=0.05)  # the Wald interval
    assert bounds(p, 0, 0, hidden.confidence, "theta") == pytest.approx((p.theta, p.theta))
    widths = [np.subtract(*bounds(p, c, c, hidden.confidence)[::-1]) for c in (0.01, 0.05, 0.2)]
    assert widths[0] < widths[1] < widths[2]


def test_with_one_row_per_account_the_figures_are_econmls(seen_and_hidden):
    """econml computes the same statistics on fit (row-wise); with singletons, equal."""
    seen, _ = seen_and_hidden
    own = params(seen.rows, PLAY)
    ref = seen.model._ortho_learner_model_final.sensitivity_params
    k = list(seen.model.transformer.categories_[0]).index(PLAY) - 1
    assert [own.theta, own.sigma, own.nu] == pytest.approx(
        [ref.theta[k], ref.sigma[k], ref.nu[k]], rel=1e-9
    )
    assert np.allclose(own.cov, ref.cov[k], rtol=1e-9, atol=1e-15)


def test_an_accounts_months_count_once():
    """Three months of the same accounts: the clustered covariance is three months' worth."""
    df = _hidden(2000, seed=2)
    months = pd.concat(
        [df.assign(as_of=pd.Timestamp("2026-01-31") + pd.DateOffset(months=k)) for k in range(3)],
        ignore_index=True,
    )
    result = estimate_effects(months, EffectsConfig(n_estimators=40, min_treated=50))
    clustered = params(result.rows, PLAY)
    rowwise = params(result.rows, PLAY, groups=np.arange(len(result.rows)))
    assert clustered.theta == rowwise.theta
    assert clustered.cov[0, 0] > 2 * rowwise.cov[0, 0]  # about 3: the rows repeat


def test_the_leader_page_names_fragile_plays_and_says_absent_values_once():
    from features import words as w
    from serving.pages.effects_views import fragile

    def play(code: str, rv: float | None) -> dict:
        return {"play": code, "robustness": None if rv is None else {"interval": rv}}

    titles = {p: w.play_name(p) for p in ("adoption_plan", "value_review", "support_escalation")}
    summary = {
        "fragile_below": 0.01,
        "plays": [
            play("adoption_plan", 0.004),
            play("value_review", 0.0),
            play("support_escalation", 0.2),
        ],
    }
    said = fragile(summary, titles)
    assert said.startswith(
        "Fragile (robust to unseen confounding under 1%): Adoption plan (0.40%)."
    )
    assert "Value / ROI review" not in said and "Support escalation" not in said  # 0: holds 0
    assert "bring its interval to zero: the effect rests" in said
    summary["plays"].append(play("value_review", 0.002))
    said = fragile(summary, titles)
    assert "under 1%): Adoption plan (0.40%), Value / ROI review (0.20%). " in said
    assert "each one’s interval" in said and "the effects rest" in said
    # A result saved before robustness values: no sentence, and a dash in the table.
    assert fragile({"plays": [{"play": "adoption_plan"}]}, titles) is None
    assert fragile({"fragile_below": 0.01, "plays": [play("adoption_plan", None)]}, titles) is None
    assert w.robustness_words(None) == w.DASH
    assert w.no_bound_sentence([]) is None
    assert w.no_bound_sentence(["Engagement revival"]).startswith(
        "No robustness value for Engagement revival: the chances of getting that play"
    )
    assert w.robustness_words(0.0) == "none: the interval holds zero"
    assert w.robustness_words(0.00271) == "0.27%" and w.robustness_words(0.0532) == "5.3%"
