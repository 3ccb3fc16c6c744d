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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from effects.config import EffectsConfig
from effects.data import CAUSES, NONE
from effects.estimate import EffectsResult

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


def choose_plays(rows: pd.DataFrame, result: EffectsResult, cfg: EffectsConfig) -> pd.DataFrame:
    """Per row: the play chosen by evidence (else the rule play), its saved ARR and hours.

    ``rows`` carries ``cate_/high_/saved_arr_<play>`` (from the estimate or
    :func:`effects.estimate.predict`), ``rule_play`` and ``arr``.
    """
    plays = [p.play for p in result.plays]
    saved = np.column_stack([rows[f"saved_arr_{p}"].to_numpy() for p in plays])
    # Evidence: the account's own interval below zero AND that of its group (the play's
    # average effect on accounts of the same first cause, else overall). The row intervals
    # alone pick a null play now and then (one 90% interval per row: a winner's curse).
    group = _first_cause(rows)
    works = np.column_stack(
        [
            (rows[f"high_{p.play}"].to_numpy() < 0)
            & np.array([_group_high(p, g) < 0 for g in group])
            for p in result.plays
        ]
    )
    best = np.where(works, saved, -np.inf).argmax(axis=1)
    evidence = works.any(axis=1)
    play = np.where(evidence, np.asarray(plays, dtype=object)[best], rows["rule_play"].to_numpy())
    chosen_saved = np.where(evidence, saved[np.arange(len(rows)), best], np.nan)
    hours = np.array([cfg.play_hours.get(p, 5.0) for p in play])
    return pd.DataFrame(
        {
            "play": play,
            "basis": np.where(evidence, EVIDENCE, NO_EVIDENCE),
            "expected_saved_arr": chosen_saved,
            "hours": hours,
            "saved_arr_per_hour": chosen_saved / hours,
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

    Plays with evidence first, by saved ARR per hour; then, while hours remain, the rule play
    ("no evidence yet") as the team would run it: accounts with a cause first, larger first.
    """
    chosen = choose_plays(rows, result, cfg)
    ev = chosen["basis"].to_numpy() == EVIDENCE
    rank_ev = np.where(ev, chosen["saved_arr_per_hour"].fillna(-np.inf), -np.inf)
    troubled = _first_cause(rows) != "none"
    order = np.lexsort((-rows["arr"].to_numpy(float), ~troubled, -rank_ev, ~ev))
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
    is mu + 1{T = a} (y - mu) / p; for rows that got the arm, mu is recovered from it (p is
    the clipped propensity it used); elsewhere the score is mu itself.
    """
    y = rows["outcome"].to_numpy(float)
    t = rows["treatment"].to_numpy()
    out = {}
    for col in [c for c in rows if c.startswith("gamma_")]:
        arm = col[len("gamma_") :]
        g = rows[col].to_numpy(float)
        p = rows[f"propensity_{arm}"].to_numpy(float)
        got = t == arm
        mu = g.copy()
        mu[got] = (g[got] - y[got] / p[got]) / (1 - 1 / p[got])
        out[arm] = np.where(got & (p < threshold), mu, g)
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
    out = []
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
    return out
