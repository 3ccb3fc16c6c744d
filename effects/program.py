"""ARR the program saved: each play's effect on the accounts it was run on, times their ARR.

The final stage of the estimate is linear in the effect modifiers x, so the ARR-weighted sum
of the per-row effects over the rows a play was run on is the total ARR times the effect at
the ARR-weighted mean of x: sum_i ARR_i (b0 + b x_i) = A (b0 + b x_w). Its interval is
therefore the learner's own interval at x_w, times A: exact under the model, no bootstrap.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from effects.config import EffectsConfig
from effects.estimate import EffectsResult, modifiers


def program_savings(result: EffectsResult, cfg: EffectsConfig) -> dict:
    """Per play and in total: ARR saved (estimate, low, high) on the rows each play was run on.

    The total's interval adds the plays' variances (their final stages are fitted
    separately; the shared control arm makes them slightly correlated, which it ignores).
    """
    rows = result.rows
    plays: dict[str, dict[str, float]] = {}
    if result.model is None or "arr" not in rows:
        return {"plays": plays, "total": None}
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
        inf = result.model.effect_inference(xw, T0="none", T1=p.play)
        est, se = float(np.ravel(inf.point_estimate)[0]), float(np.ravel(inf.stderr)[0])
        saved, s = -a * est, a * se
        plays[p.play] = {"estimate": saved, "low": saved - z * s, "high": saved + z * s}
        total, var = total + saved, var + s * s
    sd = math.sqrt(var)
    out = {"estimate": total, "low": total - z * sd, "high": total + z * sd} if plays else None
    return {"plays": plays, "total": out}
