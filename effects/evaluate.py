"""The estimate against the synthetic world's truth: effects, coverage, Qini.

The truth is ``ground_truth/play_effects.parquet`` (:mod:`features.synthetic`): per account
and month end, the outcome probability with no new play and with each play.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from effects.estimate import EffectsResult
from effects.policy import expected_effects
from effects.sensitivity import SensitivityParams, bounds, params

TRUTH_FILE = "play_effects.parquet"


def true_effects(result: EffectsResult, truth: pd.DataFrame) -> pd.DataFrame:
    """The result's rows with ``true_<play>`` (probability change, play - none) per play."""
    kind = "churn" if result.outcome.startswith("churn") else "expansion"
    t = truth.assign(as_of=truth["as_of"].astype("datetime64[s]"))
    rows = result.rows.assign(as_of=result.rows["as_of"].astype("datetime64[s]"))
    cols = {p.play: f"p_{kind}_{p.play}" for p in result.plays}
    keep = ["account_id", "as_of", f"p_{kind}_none", *cols.values()]
    merged = rows.merge(t[keep], on=["account_id", "as_of"], how="left")
    for play, col in cols.items():
        merged[f"true_{play}"] = merged[col] - merged[f"p_{kind}_none"]
    return merged


def qini(uplift: np.ndarray, score: np.ndarray) -> float:
    """Normalised Qini coefficient of ``score`` as a ranking of the true ``uplift``.

    The area between the cumulative true-uplift curve of the ranking and the random line,
    over the same area for the ranking by the true uplift itself: 1 is perfect, 0 random.
    """
    n = len(uplift)
    if n == 0:
        return float("nan")
    x = np.arange(1, n + 1) / n
    random = x * uplift.sum()

    def area(order: np.ndarray) -> float:
        return float(np.mean(np.cumsum(uplift[order]) - random))

    best = area(np.argsort(-uplift, kind="stable"))
    return area(np.argsort(-score, kind="stable")) / best if best > 0 else float("nan")


def strength_needed(p: SensitivityParams, true: float, confidence: float) -> float:
    """The weakest unseen confounding (same in both) whose widened interval holds ``true``.

    0 where the interval holds it already; NaN where no bound can be read (nu or sigma not
    positive) or none under 1 does.
    """
    if not (p.sigma > 0 and p.nu > 0):
        return float("nan")
    lo, hi = bounds(p, 0, 0, confidence)
    if lo <= true <= hi:
        return 0.0
    low, high = 0.0, 0.999
    lo, hi = bounds(p, high, high, confidence)
    if not lo <= true <= hi:
        return float("nan")
    for _ in range(50):  # the interval widens with the strength: bisect
        mid = (low + high) / 2
        lo, hi = bounds(p, mid, mid, confidence)
        low, high = (low, mid) if lo <= true <= hi else (mid, high)
    return high


def evaluate(result: EffectsResult, truth: pd.DataFrame) -> pd.DataFrame:
    """Per play: estimated and true average effect, error, coverage, Qini, naive answers.

    ``covered``: the true average effect over the rows lies in the estimate's interval.
    ``cate_coverage``: share of rows whose true effect lies in their own interval.
    ``qini``: the estimated reduction of the outcome ranking the rows against the true one;
    ``qini_expected``: the same for the expected effects the worklist ranks by.
    ``robustness``: the play's robustness value; ``strength_needed``: the unseen confounding
    whose widened interval would hold the truth (0: the interval does).
    """
    m = true_effects(result, truth)
    expected = expected_effects(result.rows, result)
    out = []
    for p in result.plays:
        ok = m[f"true_{p.play}"].notna().to_numpy()
        true = m[f"true_{p.play}"].to_numpy()[ok]
        cate = m[f"cate_{p.play}"].to_numpy()[ok]
        lo, hi = m[f"low_{p.play}"].to_numpy()[ok], m[f"high_{p.play}"].to_numpy()[ok]
        ate = float(true.mean())
        out.append(
            {
                "play": p.play,
                "treated": p.treated,
                "estimate": p.effect.estimate,
                "low": p.effect.low,
                "high": p.effect.high,
                "true": ate,
                "error": p.effect.estimate - ate,
                "covered": bool(p.effect.low <= ate <= p.effect.high),
                "naive_difference": p.naive_difference.estimate,
                "naive_error": p.naive_difference.estimate - ate,
                "success_rate": p.success_rate,
                "pehe": float(np.sqrt(np.mean((cate - true) ** 2))),
                "cate_coverage": float(np.mean((lo <= true) & (true <= hi))),
                "qini": qini(-true, -cate),
                # the ranking the worklist uses: the group's effect spread by p (1 - p)
                "qini_expected": qini(-true, -expected[p.play]["estimate"].to_numpy()[ok]),
                "robustness": p.robustness.interval if p.robustness else float("nan"),
                # the unseen confounding that would have to be allowed for to hold the truth
                "strength_needed": strength_needed(
                    params(result.rows, p.play), ate, result.confidence
                ),
            }
        )
    return pd.DataFrame(out)
