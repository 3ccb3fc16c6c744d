"""ARR the program saved: each play's effect on the accounts it was run on, times their ARR.

The final stage of the estimate is linear in the effect modifiers x, so the ARR-weighted sum
of the per-row effects over the rows a play was run on is the total ARR times the effect at
the ARR-weighted mean of x: sum_i ARR_i (b0 + b x_i) = A (b0 + b x_w). Its interval is
therefore the learner's own interval at x_w, times A: exact under the model, no bootstrap.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy.stats import norm

from effects.config import EffectsConfig
from effects.estimate import (
    EffectsResult,
    base_risk_of,
    effect_and_stderr,
    final_model,
    modifiers,
)


def program_savings(
    result: EffectsResult, cfg: EffectsConfig, rows: pd.DataFrame | None = None
) -> dict:
    """Per play and in total: ARR saved (estimate, low, high) on the rows each play was run on.

    ``rows``: the plays' rows when they are more than the estimate's (it learned from a
    sample of the accounts, ``max_accounts``); by default the estimate's rows. The interval
    is the final stage's, clustered by account (:func:`effects.estimate.clustered_param_var`).
    The total's interval adds the plays' variances (their final stages are fitted
    separately; the shared control arm makes them slightly correlated, which it ignores).
    """
    rows = result.rows if rows is None else rows
    plays: dict[str, dict[str, float]] = {}
    if result.model is None or "arr" not in rows:
        return {"plays": plays, "total": None}
    if "base_risk" not in rows:  # rows the estimate did not learn from: its risk models
        rows = rows.assign(base_risk=base_risk_of(result, rows))
    alpha = 1 - result.confidence
    z = float(norm.ppf(1 - alpha / 2))
    X = modifiers(rows, result.outcome, rows.get("base_risk")).to_numpy()
    arr = rows["arr"].fillna(0).to_numpy(float)
    t = rows["treatment"].to_numpy()
    total, var = 0.0, 0.0
    for p in result.plays:
        got = t == p.play
        a = float(arr[got].sum())
        if a <= 0:
            continue
        xw = (X[got] * arr[got, None]).sum(axis=0, keepdims=True) / a
        final = final_model(result.model, p.play)
        effect, stderr = effect_and_stderr(final, xw, result.param_var[p.play])
        est, se = float(effect[0]), float(stderr[0])
        saved, s = -a * est, a * se
        plays[p.play] = {"estimate": saved, "low": saved - z * s, "high": saved + z * s}
        total, var = total + saved, var + s * s
    sd = math.sqrt(var)
    out = {"estimate": total, "low": total - z * sd, "high": total + z * sd} if plays else None
    return {"plays": plays, "total": out}
