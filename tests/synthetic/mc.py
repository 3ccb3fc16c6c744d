"""Brute-force Monte Carlo of the generating process, to check the oracle against."""

from __future__ import annotations

import numpy as np

from features.synthetic.calendar import anniversary, month_index
from features.synthetic.process import churn_probability, expansion_probability


def monte_carlo(world, i: int, as_of: str, horizon: int, draws: int, seed: int = 0):
    """P(churn), P(expansion) in (T, T + horizon] for account ``i`` by simulation.

    With intents to leave (``world.intent_onset``), each renewal's intent and lead are drawn
    afresh and the futures that contradict what is known at T (an onset seen by then, or
    none) are thrown away: rejection, not the oracle's formula.
    """
    rng = np.random.default_rng(seed)
    cfg, lat = world.cfg, world.cfg.latent
    T = np.datetime64(as_of, "D")
    mT = int(month_index(T))
    x = np.full(draws, world.x[i, mT - world.first_month])
    since = world.customer_since[i]
    join = int(month_index(since))
    anchor = int((since - since.astype("datetime64[M]").astype("datetime64[D]")).astype(int)) + 1
    keep = np.ones(draws, bool)  # futures consistent with the intents seen by T
    alive = np.ones(draws, bool)
    churned = np.zeros(draws, bool)
    expanded = np.zeros(draws, bool)
    last = int(month_index(T + np.timedelta64(horizon, "D")))
    for m in range(mT, last + 1):
        if m > mT:
            jumps = rng.random((draws, len(lat.shock_rate))) < np.asarray(lat.shock_rate)
            x = (
                lat.phi * x
                + lat.sigma * rng.standard_normal(draws)
                + jumps @ np.asarray(lat.shock_size)
            )
        k = m - join
        date = anniversary(np.array([m]), np.array([anchor]))[0]
        if k < 1 or not (T < date <= T + np.timedelta64(horizon, "D")):
            continue
        h = world.mu[i] + x
        renewal = k % world.term_months[i] == 0
        offset = np.zeros(draws)
        if world.intent_onset is not None and renewal:
            p = cfg.intent
            has = rng.random(draws) < p.rate_by_term[world.term[i]]
            onset = m - rng.integers(1, p.lead_months + 1, draws)
            j = m - world.first_month
            known = world.intent_onset[i, j] if j < world.intent_onset.shape[1] else -1
            keep &= (has & (onset <= mT)) == (0 <= known <= mT)
            offset = np.where(has, p.churn_logit, p.churn_logit_without)
        pc = churn_probability(
            cfg, h, world.segment[i], world.term[i], k / 12.0, renewal, m, offset
        )
        pe = expansion_probability(cfg, h, world.growth[i], world.segment[i], renewal)
        c = alive & (rng.random(draws) < pc)
        churned |= c
        alive &= ~c
        expanded |= alive & (rng.random(draws) < pe)
    return churned[keep].mean(), expanded[keep].mean()
