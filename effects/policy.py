"""A worklist within CSM capacity, and what each policy saves per CSM hour (off-policy).

The worklist gives each account the play with the largest expected saved ARR whose interval
excludes zero (a play that lowers churn, with evidence), else the rule play labelled "no
evidence yet"; then fills the team's hours with the plays that save the most ARR per hour.
The off-policy evaluation scores a policy (which accounts get which play, within the same
hours) on history with the cross-fitted doubly robust scores of the estimate: ARR saved per
CSM hour = sum of ARR x (DR outcome with no play - DR outcome with the play) / hours, with a
bootstrap over accounts for the interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from effects.config import EffectsConfig
from effects.data import CAUSES, NONE
from effects.estimate import EffectsResult, modifiers
from effects.scores import outcome_model

NO_EVIDENCE = "no evidence yet"
EVIDENCE = "evidence"
POLICIES = ("worklist", "rule", "risk")


def team_size(cfg: EffectsConfig, actions: pd.DataFrame | None, accounts: int) -> int:
    """CSMs: configured, else the distinct owners of plays, else one per 80 accounts."""
    if cfg.csms:
        return cfg.csms
    if actions is not None and "owner" in actions and actions["owner"].notna().any():
        return int(actions["owner"].dropna().nunique())
    return max(1, accounts // 80)


def capacity_hours(cfg: EffectsConfig, csms: int) -> float:
    """CSM hours for plays in one decision window."""
    return csms * cfg.csm_hours_per_week * cfg.decision_window_days / 7.0


def _decision_weight(rows: pd.DataFrame, outcome: str) -> np.ndarray:
    """The untreated risk's p (1 - p) where a decision (renewal) is in the horizon, else 0.

    A play moves the churn logit at a decision, which moves the probability by about the
    logit change times p (1 - p); with no renewal in the horizon there is nothing to move.
    """
    risk = rows["base_risk"].to_numpy(float)
    renewal = modifiers(rows, outcome)["renewal_in_horizon"].to_numpy(float)
    return np.nan_to_num(risk * (1 - risk)) * renewal


def _group_masks(rows: pd.DataFrame, group: str) -> np.ndarray:
    """The rows of a group as the estimate's ``by_cause`` defines it (a cause, or none)."""
    if group in CAUSES:
        return rows[f"cause_{group}"].to_numpy(bool)
    return ~np.column_stack([rows[f"cause_{c}"].to_numpy(bool) for c in CAUSES]).any(axis=1)


def expected_effects(rows: pd.DataFrame, result: EffectsResult) -> dict[str, pd.DataFrame]:
    """Per play, each row's expected effect with its interval (``estimate``/``low``/``high``).

    The per-row effects of the linear final stage are far too noisy to rank accounts by (on
    the synthetic world their error is 3-15 times the true effects: docs/effects.md), so
    each account gets its group's average effect (the play's effect on accounts of its first
    cause, else overall), shrunk all the way to the group and spread over the group's
    accounts in proportion to their p (1 - p) at a decision (:func:`_decision_weight`,
    normalised to 1 on the group's rows the estimate learned from). The interval is the
    group's, scaled alike. ``rows`` needs ``base_risk`` and ``cause_*``.
    """
    train = result.rows
    w_train = _decision_weight(train, result.outcome)
    w = _decision_weight(rows, result.outcome)
    group = _first_cause(rows)
    out = {}
    for p in result.plays:
        est, low, high = (np.zeros(len(rows)) for _ in range(3))
        for g in np.unique(group):
            m = group == g
            iv = p.by_cause.get(g)
            fit = _group_masks(train, g) if iv is not None else np.ones(len(train), bool)
            iv = iv or p.effect
            scale = w[m] / max(float(w_train[fit].mean()), 1e-12)
            est[m], low[m], high[m] = iv.estimate * scale, iv.low * scale, iv.high * scale
        out[p.play] = pd.DataFrame({"estimate": est, "low": low, "high": high}, index=rows.index)
    return out


def evidence(rows: pd.DataFrame, result: EffectsResult) -> dict[str, np.ndarray]:
    """Per play, the rows whose group's interval says the play lowers the outcome."""
    group = _first_cause(rows)
    return {
        p.play: np.array([_group_high(p, g) < 0 for g in group], dtype=bool) for p in result.plays
    }


def choose_plays(rows: pd.DataFrame, result: EffectsResult, cfg: EffectsConfig) -> pd.DataFrame:
    """Per row: the play chosen by evidence (else the rule play), its saved ARR and hours.

    The rule play stays unless another play has evidence (its group's interval below zero)
    AND evidence of saving more than the rule play (the interval of the difference of the
    two group effects below zero, their variances added). Choosing per account the play
    with the best estimate instead picked plays with no effect at all (a winner's curse).
    ``basis``: "evidence" where the chosen play's group interval lies below zero.
    ``rows``: ``rule_play``, ``arr``, ``base_risk``, ``cause_*`` and the signals.
    """
    z = float(norm.ppf(1 - (1 - result.confidence) / 2))
    plays = {p.play: p for p in result.plays}
    exp = expected_effects(rows, result)
    group = _first_cause(rows)
    rule = rows["rule_play"].to_numpy(object)
    arr = rows["arr"].fillna(0).to_numpy(float)
    play = rule.copy()
    best = np.zeros(len(rows))
    for code, p in plays.items():
        for g in np.unique(group):
            iv = p.by_cause.get(g) or p.effect
            m = (group == g) & (rule != code) & (iv.high < 0)
            for r in np.unique(rule[m]):
                rm = m & (rule == r)
                if r in plays:
                    ir = plays[r].by_cause.get(g) or plays[r].effect
                    se = np.hypot((iv.high - iv.low) / (2 * z), (ir.high - ir.low) / (2 * z))
                    if iv.estimate - ir.estimate + z * se >= 0:
                        continue
                    gain = ir.estimate - iv.estimate
                else:
                    gain = -iv.estimate
                take = rm & (gain > best)
                play[take], best[take] = code, gain
    ev = evidence(rows, result)
    idx = np.arange(len(rows))

    def pick(col: str) -> np.ndarray:
        out = np.full(len(rows), np.nan)
        for code in plays:
            m = play == code
            out[m] = exp[code][col].to_numpy()[m]
        return out

    saved, saved_low, saved_high = -pick("estimate") * arr, -pick("high") * arr, -pick("low") * arr
    basis = np.array([play[i] in ev and ev[play[i]][i] for i in idx])
    hours = np.array([cfg.play_hours.get(p, 5.0) for p in play])
    return pd.DataFrame(
        {
            "play": play,
            "basis": np.where(basis, EVIDENCE, NO_EVIDENCE),
            "expected_saved_arr": saved,
            "saved_low": saved_low,
            "saved_high": saved_high,
            "hours": hours,
            "saved_arr_per_hour": saved / hours,
        },
        index=rows.index,
    )


def _first_cause(rows: pd.DataFrame) -> np.ndarray:
    """Each row's first cause (in the rule's order), or "none"."""
    out = np.full(len(rows), "none", dtype=object)
    for cause in reversed(CAUSES):
        col = f"cause_{cause}"
        if col in rows:
            out[rows[col].to_numpy(bool)] = cause
    return out


def _group_high(p, group: str) -> float:
    """Upper end of the play's average effect on the group (overall where not estimated)."""
    return (p.by_cause.get(group) or p.effect).high


def _fill(order: np.ndarray, hours: np.ndarray, capacity: float) -> np.ndarray:
    """Rows taken in ``order`` while their hours fit in ``capacity`` (bool mask)."""
    take = np.zeros(len(hours), bool)
    used = 0.0
    for i in order:
        if used + hours[i] <= capacity:
            take[i] = True
            used += hours[i]
    return take


def worklist(
    rows: pd.DataFrame, result: EffectsResult, cfg: EffectsConfig, capacity: float
) -> pd.DataFrame:
    """The accounts and plays to work in the next window, within ``capacity`` hours.

    By expected saved ARR per hour of the chosen play, evidence or not (putting the
    evidence plays first saved less: docs/effects.md); plays without an estimate last, as
    the team would run them: accounts with a cause first, larger first.
    """
    chosen = choose_plays(rows, result, cfg)
    per_hour = chosen["saved_arr_per_hour"].to_numpy(float)
    known = ~np.isnan(per_hour)
    troubled = _first_cause(rows) != "none"
    order = np.lexsort(
        (-rows["arr"].fillna(0).to_numpy(float), ~troubled, -np.nan_to_num(per_hour), ~known)
    )
    take = _fill(order, chosen["hours"].to_numpy(), capacity)
    out = pd.concat([rows[["account_id", "as_of", "arr"]], chosen], axis=1)[take]
    return out.loc[[i for i in rows.index[order] if i in out.index]].reset_index(drop=True)


def _policy_rows(
    rows: pd.DataFrame, result: EffectsResult, cfg: EffectsConfig, capacity: float, kind: str
) -> pd.DataFrame:
    """(row, play) pairs a policy works in each as-of date's window, within capacity."""
    parts = []
    for _, g in rows.groupby("as_of", sort=True):
        if kind == "worklist":
            w = worklist(g, result, cfg, capacity)
            idx = g.index[g["account_id"].isin(w["account_id"])]
            play = w.set_index("account_id").loc[g.loc[idx, "account_id"], "play"].to_numpy()
        else:
            if kind == "rule":  # accounts with a cause first (the rule fires), larger first
                troubled = g[[c for c in g if c.startswith("cause_")]].any(axis=1).to_numpy()
                order = np.lexsort((-g["arr"].to_numpy(), ~troubled))
            else:  # risk ranking: the highest churn risk first, each with its rule play
                order = np.argsort(-g["risk"].to_numpy(), kind="stable")
            hours = np.array([cfg.play_hours.get(p, 5.0) for p in g["rule_play"]])
            take = _fill(order, hours, capacity)
            idx, play = g.index[take], g["rule_play"].to_numpy()[take]
        parts.append(pd.DataFrame({"row": idx, "play": play}))
    return pd.concat(parts, ignore_index=True)


def switch_scores(rows: pd.DataFrame, threshold: float) -> dict[str, np.ndarray]:
    """Per arm: the DR score, or the outcome model alone below ``threshold`` (switch-DR).

    The DR score is kept where the row's propensity is at least ``threshold``. econml's score
    is mu + 1{T = a} (y - mu) / p; for rows that got the arm, mu is recovered from it
    (:func:`effects.scores.outcome_model`; p is the clipped propensity it used); elsewhere
    the score is mu itself.

    Below ``threshold``, a play given at random (a pilot, ``pilot_propensity`` recorded) keeps
    its correction, weighted by its known chance instead of the estimated one: q x P(no team
    play), as the pilot draws among the accounts the team did not choose; the team's own
    plays there are dropped (their chance is guessed, their weight would be huge). Where a
    pilot reached, the score is then unbiased; elsewhere it is the outcome model's, as before.
    """
    y = rows["outcome"].to_numpy(float)
    t = rows["treatment"].to_numpy()
    q = rows["pilot_propensity"].to_numpy(float) if "pilot_propensity" in rows else None
    out = {}
    for col in [c for c in rows if c.startswith("gamma_")]:
        arm = col[len("gamma_") :]
        g = rows[col].to_numpy(float)
        p = rows[f"propensity_{arm}"].to_numpy(float)
        got = t == arm
        mu = outcome_model(rows, arm)
        out[arm] = np.where(got & (p < threshold), mu, g)
        if q is not None and arm != NONE:
            pilot = got & (p < threshold) & (q > 0)
            team_none = rows[f"propensity_{NONE}"].to_numpy(float)[pilot]
            # P(pilot gives this play) = q x P(the team gave none) ~ q x P(none) estimated.
            out[arm][pilot] = mu[pilot] + (y[pilot] - mu[pilot]) / (q[pilot] * team_none)
    return out


@dataclass
class PolicyValue:
    """ARR saved per CSM hour of one policy, with its interval; the truth where known."""

    policy: str
    per_hour: float
    low: float
    high: float
    plays: int
    hours: float
    true_per_hour: float | None = None
    # The worklist's: its lead over each other policy [estimate, low, high] (paired bootstrap).
    lead: dict[str, list[float]] = field(default_factory=dict)


def evaluate_policies(
    rows: pd.DataFrame,
    result: EffectsResult,
    cfg: EffectsConfig,
    capacity: float,
    truth: pd.DataFrame | None = None,
) -> list[PolicyValue]:
    """Doubly robust ARR saved per CSM hour of the worklist, the rule policy and risk ranking.

    ``rows``: evaluation rows with ``gamma_<arm>`` (the cross-fitted DR scores of an estimate
    fitted on these rows), ``cate_/high_/saved_arr_<play>`` from an estimate fitted on
    *earlier* rows (so the worklist is not scored on the data that chose it), ``risk``,
    ``rule_play`` and ``arr``. ``truth``: the oracle's per-row effects (``true_<play>``).
    A play without a DR score (not estimated) counts its hours and saves nothing.
    """
    rng = np.random.default_rng(cfg.seed)
    arr = rows["arr"].to_numpy(float)
    accounts = rows["account_id"].to_numpy()
    ids, inverse = np.unique(accounts, return_inverse=True)
    draws = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), size=cfg.bootstrap)
    scores = switch_scores(rows, cfg.switch_propensity)
    out, boots = [], {}
    for kind in POLICIES:
        pr = _policy_rows(rows, result, cfg, capacity, kind)
        r, play = pr["row"].to_numpy(), pr["play"].to_numpy()
        pos = rows.index.get_indexer(r)
        none = scores[NONE][pos]
        g = np.array(
            [
                scores[p][i] if p in scores else none[k]
                for k, (p, i) in enumerate(zip(play, pos, strict=True))
            ]
        )
        saved = arr[pos] * (none - g)
        hours = np.array([cfg.play_hours.get(p, 5.0) for p in play])
        w = draws[:, inverse[pos]]  # times each worked row's account is drawn
        boot = (w * saved).sum(axis=1) / np.maximum((w * hours).sum(axis=1), 1e-9)
        true = None
        if truth is not None:
            t = np.array(
                [
                    truth[f"true_{p}"].to_numpy()[i] if f"true_{p}" in truth else 0.0
                    for p, i in zip(play, pos, strict=True)
                ]
            )
            true = float(np.nansum(-t * arr[pos]) / max(hours.sum(), 1e-9))
        boots[kind] = boot
        lo, hi = np.quantile(boot, [(1 - cfg.confidence) / 2, (1 + cfg.confidence) / 2])
        out.append(
            PolicyValue(
                kind,
                float(saved.sum() / max(hours.sum(), 1e-9)),
                float(lo),
                float(hi),
                len(pr),
                float(hours.sum()),
                true,
            )
        )
    # The same bootstrap draws for every policy: the interval of the worklist's lead is
    # paired, narrower than two overlapping intervals suggest.
    q = [(1 - cfg.confidence) / 2, (1 + cfg.confidence) / 2]
    for other in out[1:]:
        diff = boots[out[0].policy] - boots[other.policy]
        lo, hi = np.quantile(diff, q)
        out[0].lead[other.policy] = [out[0].per_hour - other.per_hour, float(lo), float(hi)]
    return out
