"""The cross-fitted DR scores an estimate keeps per row, read back.

:func:`effects.estimate.estimate_effects` keeps, per row and arm, econml's doubly robust score
``gamma_<arm>`` = mu_arm(x) + 1[T = arm] (y - mu_arm(x)) / e_arm(x) and the (clipped)
propensity ``propensity_<arm>`` it used. The off-policy evaluation and the sensitivity bounds
need the outcome model mu_arm(x) itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def outcome_model(rows: pd.DataFrame, arm: str) -> np.ndarray:
    """mu_arm(x) per row: the score itself off the arm's rows, undone on them.

    On a row that got the arm, gamma = mu + (y - mu) / e, so mu = (gamma - y / e) / (1 - 1 / e).
    """
    y = rows["outcome"].to_numpy(float)
    gamma = rows[f"gamma_{arm}"].to_numpy(float)
    e = rows[f"propensity_{arm}"].to_numpy(float)
    mu = gamma.copy()
    got = rows["treatment"].to_numpy() == arm
    mu[got] = (gamma[got] - y[got] / e[got]) / (1 - 1 / e[got])
    return mu
