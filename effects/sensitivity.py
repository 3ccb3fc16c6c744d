"""How strong an unseen confounder would have to be to erase a play's effect.

Without a randomised holdout the estimate assumes the recorded signals explain who got a
play. This measures how much that assumption carries: the omitted-variable bounds of
Chernozhukov, Cinelli, Newey, Sharma and Syrgkanis ("Long story short", 2022) for a doubly
robust average effect, computed with econml's own functions
(:func:`econml.validate.sensitivity_analysis.sensitivity_interval` and ``RV``).

A confounder of strength ``c`` explains a share ``c`` of what the signals leave unexplained
in the outcome (``c_y``) and in who gets the play (``c_t``). The **robustness value** is the
smallest such share, in both at once, that moves the interval (or the estimate) to zero: a
play whose effect vanishes at 0.1% rests on the assumption; one that needs 10% does not.

The three statistics (the effect ``theta``, the outcome's residual variance ``sigma`` and the
Riesz representer's second moment ``nu``) are econml's (``dr_sensitivity_values``, which
its learner computes on fit), recomputed here from the cross-fitted DR scores kept per row
so that their covariance is clustered by account, like every other interval of the estimate
(an account's monthly rows share one churn event; econml's covariance counts them as
independent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from effects.data import NONE
from effects.scores import outcome_model


@dataclass(frozen=True)
class SensitivityParams:
    """The effect and the two variances its omitted-variable bound is made of."""

    theta: float  # the average effect (the mean DR score difference)
    sigma: float  # E[(y - mu_t(x))^2] over the rows of this play and of no play
    nu: float  # E[alpha^2], alpha the Riesz representer 1[play]/e_play - 1[none]/e_none
    cov: np.ndarray  # 3 x 3 covariance of (theta, sigma, nu), clustered by account


@dataclass(frozen=True)
class Robustness:
    """A play's robustness values (shares in [0, 1]; 0: its interval already holds zero)."""

    interval: float  # the confounding that brings the interval to zero
    estimate: float  # the confounding that brings the estimate itself to zero


def params(rows: pd.DataFrame, play: str, groups: np.ndarray | None = None) -> SensitivityParams:
    """:class:`SensitivityParams` of ``play`` against no play, from an estimate's rows.

    ``rows``: :attr:`effects.estimate.EffectsResult.rows` (``gamma_<arm>``,
    ``propensity_<arm>``, ``treatment``, ``outcome``); ``groups``: the cluster of each row
    (default: ``account_id``).
    """
    y = rows["outcome"].to_numpy(float)
    t = rows["treatment"].to_numpy(object)
    mu0, mu1 = outcome_model(rows, NONE), outcome_model(rows, play)
    e0 = rows[f"propensity_{NONE}"].to_numpy(float)
    e1 = rows[f"propensity_{play}"].to_numpy(float)
    theta_s = rows[f"gamma_{play}"].to_numpy(float) - rows[f"gamma_{NONE}"].to_numpy(float)
    # The outcome's residual variance over the two arms compared (econml: other plays' rows
    # count as zero), and the representer's second moment in its debiased form.
    arm = (t == play) | (t == NONE)
    sigma_s = np.where(arm, (y - np.where(t == play, mu1, mu0)) ** 2, 0.0)
    alpha = (t == play) / e1 - (t == NONE) / e0
    nu_s = 2 * (1 / e1 + 1 / e0) - alpha**2
    scores = np.column_stack([theta_s, sigma_s, nu_s])
    means = scores.mean(axis=0)
    g = pd.factorize(rows["account_id"] if groups is None else groups)[0]
    summed = np.column_stack(
        [np.bincount(g, weights=scores[:, j] - means[j]) for j in range(scores.shape[1])]
    )
    cov = summed.T @ summed / len(scores) ** 2
    return SensitivityParams(float(means[0]), float(means[1]), float(means[2]), cov)


def bounds(
    p: SensitivityParams,
    c_y: float,
    c_t: float,
    confidence: float,
    kind: str = "ci",
) -> tuple[float, float]:
    """The effect's range if an unseen confounder has strengths ``c_y`` and ``c_t``.

    ``kind`` "ci": the interval at ``confidence`` widened by the worst bias of such a
    confounder; "theta": the estimate's range alone (no sampling error).
    """
    from econml.validate.sensitivity_analysis import sensitivity_interval  # heavy: econml

    lo, hi = sensitivity_interval(
        p.theta, p.sigma, p.nu, p.cov, 1 - confidence, c_y, c_t, 1.0, interval_type=kind
    )
    return float(lo), float(hi)


def robustness(p: SensitivityParams, confidence: float) -> Robustness | None:
    """The robustness values of the interval at ``confidence`` and of the estimate.

    None where the debiased second moment ``nu`` (or ``sigma``) came out at or below zero:
    extreme inverse propensities on a few rows, where no bound can be read (absent, shown as
    a dash; never a made-up value).
    """
    from econml.validate.sensitivity_analysis import RV  # heavy: econml

    if not (p.sigma > 0 and p.nu > 0):
        return None
    alpha = 1 - confidence
    return Robustness(
        float(RV(p.theta, p.sigma, p.nu, p.cov, alpha, interval_type="ci")),
        float(RV(p.theta, p.sigma, p.nu, p.cov, alpha, interval_type="theta")),
    )
