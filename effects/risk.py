"""Risk if nothing is done: churn models beside the truth of the untreated world.

A model trained where CSMs act learns outcomes they changed. Three ways to predict the
outcome with no play, each trained on earlier as-of dates and scored on later ones:

- ``today``: the signals only, as the served model is trained (plays unknown);
- ``plays_as_inputs``: the signals plus the play started in the window (one-hot) and past
  plays, scored with the window's play set to none;
- ``ipw``: the signals only, trained on untreated rows weighted by 1 / P(no play | signals)
  (the estimate's cross-fitted propensity), so they stand for every row.

:func:`against_truth` compares each with the oracle's untreated probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from effects.config import EffectsConfig
from effects.data import NONE, POLICY_SHARE, policy_split
from effects.estimate import EffectsResult, covariates, design_matrix, lgbm

KINDS = ("today", "plays_as_inputs", "ipw")


def untreated_risk(
    result: EffectsResult, cfg: EffectsConfig, share: float = POLICY_SHARE
) -> tuple[pd.DataFrame, pd.Series]:
    """Predicted outcome probability with no play on the later rows, by each kind.

    Learned on the earlier dates, a horizon before the later ones (:func:`policy_split`).
    Returns the later rows of ``result.rows`` and a frame with one column per kind.
    """
    rows = result.rows
    cut, learn_end = policy_split(np.sort(rows["as_of"].unique()), cfg, share)
    early, late = rows[rows["as_of"] < learn_end], rows[rows["as_of"] >= cut]
    cols = covariates(rows)
    plays = [p.play for p in result.plays]

    def onehot(df: pd.DataFrame, none: bool) -> np.ndarray:
        t = np.full(len(df), NONE, dtype=object) if none else df["treatment"].to_numpy()
        return np.column_stack([(t == p).astype(float) for p in plays])

    y = early["outcome"].astype(int).to_numpy()
    Xe, Xl = design_matrix(early, cols), design_matrix(late, cols)
    out = {}
    out["today"] = lgbm(cfg, 11).fit(Xe, y).predict_proba(Xl)[:, 1]
    m = lgbm(cfg, 12).fit(np.hstack([Xe, onehot(early, False)]), y)
    out["plays_as_inputs"] = m.predict_proba(np.hstack([Xl, onehot(late, True)]))[:, 1]
    untreated = (early["treatment"] == NONE).to_numpy()
    w = 1.0 / np.clip(early[f"propensity_{NONE}"].to_numpy()[untreated], 0.05, 1.0)
    m = lgbm(cfg, 13).fit(Xe[untreated], y[untreated], sample_weight=w)
    out["ipw"] = m.predict_proba(Xl)[:, 1]
    return late, pd.DataFrame(out, index=late.index)


def ece(p: np.ndarray, target: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of ``p`` against ``target`` (outcomes or true probabilities)."""
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    err = 0.0
    for b in range(bins):
        s = which == b
        if s.any():
            err += s.mean() * abs(p[s].mean() - target[s].mean())
    return float(err)


def against_truth(late: pd.DataFrame, preds: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Each kind against the oracle's untreated 90-day churn probability.

    ECE overall and on treated rows, mean bias on treated rows, ROC-AUC against a draw of the
    untreated outcome, Spearman correlation with the untreated probability.
    """
    kind = "churn"
    t = truth.assign(as_of=truth["as_of"].astype("datetime64[s]"))
    key = late[["account_id", "as_of"]].assign(as_of=late["as_of"].astype("datetime64[s]"))
    p0 = key.merge(t[["account_id", "as_of", f"p_{kind}_none"]], how="left")[f"p_{kind}_none"]
    p0 = p0.to_numpy()
    ok = ~np.isnan(p0)
    treated = (late["treatment"] != NONE).to_numpy() & ok
    # The untreated outcome is never observed for treated rows: score the ranking against
    # the oracle by ROC-AUC of a fixed draw from its untreated probability.
    draw = np.random.default_rng(0).random(len(p0)) < np.nan_to_num(p0)
    rows = []
    for k in preds:
        p = preds[k].to_numpy()
        rows.append(
            {
                "model": k,
                "ece_vs_untreated_oracle": ece(p[ok], p0[ok]),
                "ece_treated_rows": ece(p[treated], p0[treated], bins=5),
                "bias_treated_rows": float(p[treated].mean() - p0[treated].mean()),
                "auc_vs_untreated_draw": float(roc_auc_score(draw[ok], p[ok])),
                "spearman_vs_untreated_oracle": float(
                    pd.Series(p[ok]).corr(pd.Series(p0[ok]), method="spearman")
                ),
            }
        )
    return pd.DataFrame(rows)
