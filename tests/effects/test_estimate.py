"""The effect estimate on confounded data: the naive difference is biased, the estimate is not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from effects.config import EffectsConfig
from effects.data import NONE, EffectsError
from effects.estimate import Interval, estimate_effects
from effects.policy import (
    EVIDENCE,
    NO_EVIDENCE,
    choose_plays,
    evaluate_policies,
    expected_effects,
    switch_scores,
    worklist,
)
from effects.program import program_savings


def _confounded(n: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, dict[str, float]]:
    """Riskier accounts (low NPS) get the play more often; it lowers churn where seats idle."""
    rng = np.random.default_rng(seed)
    nps = rng.normal(0, 1, n)
    util = np.clip(rng.normal(0.6, 0.2, n), 0, 1)
    adoption = util < 0.5
    z_play = -2.2 - 1.2 * nps + 1.0 * adoption
    play = rng.random(n) < 1 / (1 + np.exp(-z_play))
    second = rng.random(n) < 0.06  # a play given at random, with no effect
    base = -1.2 - 1.1 * nps + 0.8 * adoption
    effect = np.where(adoption, -1.2, -0.1)
    p0 = 1 / (1 + np.exp(-base))
    p1 = 1 / (1 + np.exp(-(base + effect)))
    treatment = np.where(play, "adoption_plan", np.where(second, "engagement_revival", NONE))
    y = rng.random(n) < np.where(play, p1, p0)
    df = pd.DataFrame(
        {
            "account_id": [f"A{i:06d}" for i in range(n)],
            "as_of": pd.Timestamp("2026-01-31"),
            "nps_latest": nps,
            "seat_utilisation": util,
            "tickets_90d": rng.poisson(2, n),
            "segment": rng.choice(["enterprise", "mid_market", "smb"], n),
            "arr": rng.lognormal(10, 1, n),
            "days_to_renewal": rng.integers(0, 365, n),
            "plays_before_180d": 0,
            "treatment": treatment,
            "outcome": y.astype(float),
            "cause_relationship": False,
            "cause_support": False,
            "cause_adoption": adoption,
        }
    )
    return df, {"adoption_plan": float((p1 - p0).mean()), "engagement_revival": 0.0}


@pytest.fixture(scope="module")
def fitted():
    df, truth = _confounded()
    return estimate_effects(df, EffectsConfig(n_estimators=80, min_treated=50)), truth


def test_naive_difference_is_biased_and_the_estimate_covers_the_truth(fitted):
    result, truth = fitted
    p = result.play("adoption_plan")
    true = truth["adoption_plan"]
    assert true < -0.05
    # Treated accounts churn MORE than untreated ones although the play lowers churn.
    assert p.naive_difference.low > 0 > true
    assert p.effect.low <= true <= p.effect.high, (p.effect, true)
    assert p.effect.high < 0  # and the estimate says the play works
    # Where the cause is present the effect is larger than elsewhere.
    assert p.by_cause["adoption"].estimate < p.by_cause["none"].estimate
    no_effect = result.play("engagement_revival")
    assert no_effect.effect.low <= 0 <= no_effect.effect.high
    assert "no unmeasured confounding" in result.statement


def test_per_row_effects_and_saved_arr(fitted):
    result, _ = fitted
    rows = result.rows
    assert (rows["low_adoption_plan"] <= rows["cate_adoption_plan"]).all()
    assert (rows["cate_adoption_plan"] <= rows["high_adoption_plan"]).all()
    saved = -rows["cate_adoption_plan"] * rows["arr"]
    assert np.allclose(rows["saved_arr_adoption_plan"], saved)
    cause = rows["cause_adoption"].to_numpy()
    assert (
        rows.loc[cause, "cate_adoption_plan"].mean() < rows.loc[~cause, "cate_adoption_plan"].mean()
    )
    assert {"gamma_none", "gamma_adoption_plan", "propensity_adoption_plan"} <= set(rows)


def test_rare_plays_are_named_not_estimated():
    df, _ = _confounded(3000, seed=1)
    df.loc[df.index[:20], "treatment"] = "executive_outreach"
    result = estimate_effects(df, EffectsConfig(n_estimators=40, min_treated=50))
    assert result.not_estimated == {"executive_outreach": 20}
    assert "executive_outreach" not in {p.play for p in result.plays}
    only_rare = df.assign(treatment=NONE)
    only_rare.loc[only_rare.index[:10], "treatment"] = "value_review"
    with pytest.raises(EffectsError, match="too few plays.*value_review \\(10\\)"):
        estimate_effects(only_rare, EffectsConfig())


def test_worklist_within_capacity_by_expected_saved_arr(fitted):
    result, _ = fitted
    cfg = EffectsConfig()
    rows = result.rows.assign(rule_play="value_review")  # a rule play with no estimate
    exp = expected_effects(rows, result)["adoption_plan"]
    # Each account's expected effect is its group's, spread by p (1 - p) at a renewal: on
    # the group's rows it averages to the group's estimate, and so do the interval's ends.
    adoption = rows["cause_adoption"].to_numpy()
    group = result.play("adoption_plan").by_cause["adoption"]
    assert exp["estimate"][adoption].mean() == pytest.approx(group.estimate)
    assert exp["high"][adoption].mean() == pytest.approx(group.high)
    renewal = rows["days_to_renewal"].to_numpy() <= 90
    assert (exp["estimate"][~renewal] == 0).all()  # no decision in the horizon: nothing moves
    capacity = 200.0
    wl = worklist(rows, result, cfg, capacity)
    assert wl["hours"].sum() <= capacity
    assert len(wl) == 200 // cfg.play_hours["adoption_plan"]
    # The play that works, where it works; never the null play (its group interval spans 0).
    assert (wl["play"] == "adoption_plan").all() and (wl["basis"] == EVIDENCE).all()
    assert rows.set_index("account_id").loc[wl["account_id"], "cause_adoption"].all()
    assert wl["saved_arr_per_hour"].is_monotonic_decreasing
    assert (wl["saved_low"] <= wl["expected_saved_arr"]).all()
    assert (wl["expected_saved_arr"] <= wl["saved_high"]).all()
    best = -(exp["estimate"] * rows["arr"]).to_numpy() / cfg.play_hours["adoption_plan"]
    assert wl["saved_arr_per_hour"].iloc[0] == pytest.approx(best.max())
    # A rule play with an estimate stays unless another saves more, with evidence.
    kept = choose_plays(rows.assign(rule_play="engagement_revival"), result, cfg)
    assert (kept.loc[adoption, "play"] == "adoption_plan").all()
    assert (kept.loc[~adoption, "play"] == "engagement_revival").all()
    assert (kept.loc[~adoption, "basis"] == NO_EVIDENCE).all()
    # Without evidence anywhere: the rule play, labelled so, troubled and larger first.
    vague = Interval(-0.01, -0.5, 0.5, 100)
    plays = [
        replace(p, effect=vague, by_cause=dict.fromkeys(p.by_cause, vague)) for p in result.plays
    ]
    wl = worklist(rows, replace(result, plays=plays), cfg, capacity)
    assert (wl["basis"] == NO_EVIDENCE).all() and (wl["play"] == "value_review").all()
    assert wl["hours"].sum() <= capacity
    picked = rows.set_index("account_id").loc[wl["account_id"]]
    assert picked["cause_adoption"].all() and picked["arr"].is_monotonic_decreasing


def test_policy_values_have_intervals(fitted):
    result, truth = fitted
    cfg = EffectsConfig(bootstrap=50)
    rows = result.rows.assign(rule_play="adoption_plan", risk=result.rows["arr"])
    rows["as_of"] = pd.Timestamp("2026-01-31") + pd.to_timedelta(np.arange(len(rows)) % 3, "D")
    values = {v.policy: v for v in evaluate_policies(rows, result, cfg, 300.0)}
    assert set(values) == {"worklist", "rule", "risk"}
    for v in values.values():
        assert v.low <= v.per_hour <= v.high
        assert v.hours <= 3 * 300.0
    lead = values["worklist"].lead  # paired: the same bootstrap draws for every policy
    assert set(lead) == {"rule", "risk"}
    for other, (est, lo, hi) in lead.items():
        assert est == pytest.approx(values["worklist"].per_hour - values[other].per_hour)
        assert lo <= est <= hi
    # Switch-DR: the DR score unchanged above the threshold; below it the outcome model mu,
    # from which the DR score is mu + (y - mu) / p on the rows that got the play.
    keep, model = switch_scores(rows, 0.0), switch_scores(rows, 1.0)
    assert np.allclose(keep["adoption_plan"], rows["gamma_adoption_plan"])
    got = (rows["treatment"] == "adoption_plan").to_numpy()
    mu, p, y = (
        model["adoption_plan"][got],
        rows["propensity_adoption_plan"][got],
        rows["outcome"][got],
    )
    assert np.allclose(mu + (y - mu) / p, rows["gamma_adoption_plan"][got])
    assert ((mu > -1e-6) & (mu < 1 + 1e-6)).all()  # a probability, unlike the DR score


def test_arr_saved_by_the_program_is_the_sum_of_the_rows_effects(fitted):
    result, _ = fitted
    saved = program_savings(result, EffectsConfig())
    rows = result.rows
    for play, s in saved["plays"].items():
        got = rows["treatment"] == play
        # The final stage is linear: the ARR-weighted sum of the rows' effects, exactly.
        total = -(rows.loc[got, f"cate_{play}"] * rows.loc[got, "arr"]).sum()
        assert s["estimate"] == pytest.approx(total, rel=1e-6)
        assert s["low"] < s["estimate"] < s["high"]
    assert saved["plays"]["adoption_plan"]["low"] > 0  # the play that works saved ARR
    t = saved["total"]
    assert t["estimate"] == pytest.approx(sum(s["estimate"] for s in saved["plays"].values()))
    widths = [s["high"] - s["low"] for s in saved["plays"].values()]
    assert max(widths) < t["high"] - t["low"] < sum(widths)  # variances add, not widths


def test_a_save_stopped_half_way_leaves_the_last_result_and_the_next_run_completes(
    fitted, tmp_path, monkeypatch
):
    """`radar effects --out DIR` stopped between its two files, then run again."""
    from pathlib import Path

    from effects.artefact import SUMMARY, write_artefact
    from effects.run import EffectsReport, account_effects
    from serving.pages import effects_views as views

    result, _ = fitted
    cfg = EffectsConfig()
    rows = result.rows.assign(rule_play="value_review")

    def report(part: pd.DataFrame) -> EffectsReport:
        return EffectsReport(result, 300.0, 4, accounts=account_effects(part, result, cfg))

    folder = tmp_path / "effects"
    monkeypatch.setenv(views.ENV, str(folder))
    write_artefact(report(rows.iloc[:40]), cfg, folder, "first")
    first = sorted(p.name for p in folder.iterdir())
    # Stopped (Ctrl-C) once the accounts file is in place, before the summary that names it.
    real = Path.write_text

    def stop(self, *args, **kwargs):
        if self.name.startswith(f".{SUMMARY}"):
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(Path, "write_text", stop)
        with pytest.raises(KeyboardInterrupt):
            write_artefact(report(rows.iloc[40:100]), cfg, folder, "second")
    (folder / f".{SUMMARY}.tmp-killed").write_text("{")  # what a hard kill leaves
    summary, accounts, _ = views.loaded()  # what the pages show: the first run, whole
    assert summary["source"] == "first"
    assert list(accounts.index) == list(rows["account_id"].iloc[:40])
    orphan = set(p.name for p in folder.glob("accounts-*.parquet")) - set(first)
    assert len(orphan) == 1  # the stopped run's file, named by no summary
    # Run again: it completes and cleans up; the pages read the new result.
    write_artefact(report(rows.iloc[40:100]), cfg, folder, "third")
    summary, accounts, _ = views.loaded()
    assert summary["source"] == "third"
    assert list(accounts.index) == list(rows["account_id"].iloc[40:100])
    left = sorted(p.name for p in folder.iterdir())
    assert not orphan & set(left) and not [n for n in left if ".tmp-" in n]
    # The new summary and the previous run's accounts file (for a reader mid-way), no more.
    assert left == sorted([SUMMARY, summary["accounts_file"], *[n for n in first if n != SUMMARY]])


def test_effects_and_intervals_match_econml(fitted):
    """The direct final-stage computation gives econml's own effect/interval/ATE numbers."""
    from effects.estimate import modifiers

    result, _ = fitted
    rows, est = result.rows, result.model
    X = modifiers(rows, result.outcome, rows["base_risk"]).to_numpy()
    alpha = 1 - result.confidence
    for p in result.plays:
        lo, hi = est.effect_interval(X, T0=NONE, T1=p.play, alpha=alpha)
        assert np.allclose(rows[f"cate_{p.play}"], np.ravel(est.effect(X, T0=NONE, T1=p.play)))
        assert np.allclose(rows[f"low_{p.play}"], np.ravel(lo))
        assert np.allclose(rows[f"high_{p.play}"], np.ravel(hi))
        cause = rows["cause_adoption"].to_numpy(bool)
        for got, mask in ((p.effect, np.ones(len(X), bool)), (p.by_cause["adoption"], cause)):
            inf = est.ate_inference(X=X[mask], T0=NONE, T1=p.play)
            low, high = inf.conf_int_mean(alpha=alpha)
            assert np.allclose([got.estimate, got.low, got.high], [inf.mean_point, low, high])


def test_intervals_count_an_accounts_months_once():
    """Rows of one account are not independent: the interval is clustered by account.

    The same accounts three times (three months, one outcome each): econml's row-wise
    interval is about sqrt(3) too narrow; the clustered one is as wide as one month's.
    """
    from effects.estimate import modifiers

    df, _ = _confounded(n=3000, seed=3)
    months = pd.concat(
        [df.assign(as_of=pd.Timestamp("2026-01-31") + pd.DateOffset(months=k)) for k in range(3)],
        ignore_index=True,
    )
    cfg = EffectsConfig(n_estimators=40, min_treated=50)
    once = estimate_effects(df, cfg).play("adoption_plan").effect
    result = estimate_effects(months, cfg)
    thrice = result.play("adoption_plan").effect
    X = modifiers(result.rows, result.outcome, result.rows["base_risk"]).to_numpy()
    inf = result.model.ate_inference(X=X, T0=NONE, T1="adoption_plan")
    low, high = inf.conf_int_mean(alpha=1 - result.confidence)
    rowwise, clustered, single = high - low, thrice.high - thrice.low, once.high - once.low
    assert clustered > 1.5 * rowwise
    assert 0.75 < clustered / single < 1.33


def test_clustered_covariance_with_one_row_per_account_is_econmls(fitted):
    from effects.estimate import clustered_param_var, final_model, modifiers

    result, _ = fitted
    rows = result.rows
    X = modifiers(rows, result.outcome, rows["base_risk"]).to_numpy()
    for p in result.plays:
        final = final_model(result.model, p.play)
        pseudo = rows[f"gamma_{p.play}"] - rows[f"gamma_{NONE}"]
        var = clustered_param_var(X, pseudo - np.ravel(final.predict(X)), rows["account_id"])
        assert np.allclose(var, np.squeeze(final._param_var), rtol=1e-9, atol=1e-15)


def test_a_nuisance_model_fits_on_at_most_its_row_cap():
    from sklearn.base import clone
    from sklearn.dummy import DummyClassifier

    from effects.estimate import RowCap

    X = np.arange(1000.0).reshape(-1, 1)
    y = (np.arange(1000) < 300).astype(int)  # 30% positive
    w = np.where(y == 1, 1.0, 0.0)  # weights that keep only the positives
    capped = clone(RowCap(DummyClassifier(strategy="prior"), max_rows=100, seed=1))
    capped.fit(X, y, sample_weight=w)
    assert capped.model_.class_prior_[1] == 1.0  # the weights were drawn with their rows
    capped.fit(X, y)
    assert capped.predict_proba(X).shape == (1000, 2)  # it predicts every row
    assert 0.15 < capped.model_.class_prior_[1] < 0.45 and capped.model_.n_features_in_ == 1
    labelled = pd.Series(y, index=np.arange(1000) * 3)  # a frame's labels, not positions
    assert capped.fit(pd.DataFrame(X, index=labelled.index), labelled).model_.n_features_in_ == 1
    whole = RowCap(DummyClassifier(strategy="prior"), max_rows=5000).fit(X, y)
    assert whole.model_.class_prior_[1] == 0.3
