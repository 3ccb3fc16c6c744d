"""The oracle: true probabilities of churn, expansion and renewal under the generating process.

Given everything the process knows at an as-of date T (the account's latent health this
month, its static traits and its contract schedule), the probability that it churns, or
expands, in (T, T + H] is an expectation over the future latent path. Decisions fall on
monthly anniversaries and use that month's latent health, which moves month to month as an
AR(1) with Gaussian shocks plus Bernoulli jumps. We discretise the latent deviation on a
fine grid and run a backward recursion through the (at most five) decision months in the
window: a few small matrix products per month, vectorised over accounts. The first step
starts from the exact current state, not a grid node. A Monte Carlo test checks the result.
Renewal likelihood is the same survival recursion over a window that ends at each account's
next renewal decision (at most seven months ahead) instead of at T + H.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
from scipy.special import ndtr

from features.catalogue import HORIZONS, RENEWAL_LABEL, RENEWAL_WINDOW_DAYS
from features.synthetic.calendar import anniversary, month_index
from features.synthetic.intent import intent_probability
from features.synthetic.plays import causes, effects, offsets, recent_shocks
from features.synthetic.process import (
    SyntheticConfig,
    churn_probability,
    expansion_probability,
)

GRID = np.linspace(-5.0, 5.0, 161)
STEP = GRID[1] - GRID[0]
MAX_JUMPS = 2  # months with 3+ shocks (probability below 3e-5 in all) are left out


def _jump_distribution(cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    """Sizes and probabilities of the total monthly jump (independent Bernoulli shocks)."""
    rates, sizes = np.asarray(cfg.latent.shock_rate), np.asarray(cfg.latent.shock_size)
    totals, probs = [], []
    for hits in product((0, 1), repeat=len(rates)):
        hit = np.asarray(hits, dtype=bool)
        p = np.prod(np.where(hit, rates, 1 - rates))
        if hit.sum() <= MAX_JUMPS:
            totals.append(sizes[hit].sum())
            probs.append(p)
    probs = np.asarray(probs)
    return np.asarray(totals), probs / probs.sum()


def _cells(mean: np.ndarray, sigma: float) -> np.ndarray:
    """Probability that mean + sigma * eps falls in each grid cell (outer cells unbounded)."""
    edges = np.concatenate([[-np.inf], (GRID[1:] + GRID[:-1]) / 2, [np.inf]])
    return np.diff(ndtr((edges[None, :] - np.asarray(mean)[:, None]) / sigma), axis=1)


def transition_matrix(cfg: SyntheticConfig) -> np.ndarray:
    """P[a, b]: probability that next month's deviation is in cell b, from grid node a."""
    totals, probs = _jump_distribution(cfg)
    lat = cfg.latent
    return sum(
        p * _cells(lat.phi * GRID + t, lat.sigma) for t, p in zip(totals, probs, strict=True)
    )


class Oracle:
    """True probabilities for one simulated world, at any as-of date inside its window."""

    def __init__(self, world):
        self.world = world
        cfg = world.cfg
        self.P_T = transition_matrix(cfg).T.astype(np.float32)
        # Gaussian smoothing on the grid: (f @ S_T)[a] = E f(GRID[a] + sigma * eps).
        self.S_T = _cells(GRID, cfg.latent.sigma).T.astype(np.float32)
        self.jump_totals, self.jump_probs = _jump_distribution(cfg)
        since = world.customer_since.astype("datetime64[D]")
        self.join = month_index(since)
        self.anchor = (since - since.astype("datetime64[M]").astype("datetime64[D]")).astype(
            np.int64
        ) + 1
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Plays: those started up to the as-of month count (they run on after T); a
        # hypothetical play (``_extra``) starts the month after T. Both change the grid
        # probabilities, so the cache holds one (as-of, play) state at a time.
        self.plays = world.plays if world.plays is not None and len(world.plays.account) else None
        self._state: tuple | None = None
        self._upto: int | None = None
        self._extra: tuple[np.ndarray, np.ndarray, int] | None = None
        # Intents to leave: what the process knows of them depends on the as-of month, so
        # the grid probabilities are cached for one as-of month at a time.
        self.intent = world.cfg.intent if world.intent_onset is not None else None
        self._intent_as_of: int | None = None

    def _intent_state(self, mT: int) -> None:
        if self.intent is not None and self._intent_as_of != mT:
            self._cache.clear()
            self._intent_as_of = mT

    def _churn(self, m, health, segment, term, tenure, is_renewal, oc, rows=None):
        """Churn probability at month m's anniversary, mixed over the intent to leave.

        Without intents, :func:`churn_probability`. With them, the chance ``q`` that the
        decision carries one (given the latent state at the as-of month) mixes the
        probabilities with and without its logit, at renewals only; intents are independent
        of health and of each other, so the mixture goes inside the recursion's step.
        """
        w = self.world
        if self.intent is None:
            return churn_probability(w.cfg, health, segment, term, tenure, is_renewal, m, oc)
        without = oc + np.where(is_renewal, self.intent.churn_logit_without, 0.0)
        pc = churn_probability(w.cfg, health, segment, term, tenure, is_renewal, m, without)
        q = intent_probability(
            self.intent, w.intent_onset, w.first_month, w.term, m, self._intent_as_of
        )
        q = q if rows is None else q[rows]
        q = q.astype(pc.dtype)[:, None] if pc.ndim == 2 else q
        with_intent = churn_probability(
            w.cfg, health, segment, term, tenure, is_renewal, m, oc + self.intent.churn_logit
        )
        return np.where(is_renewal, (1 - q) * pc + q * with_intent, pc)

    def _set_state(self, mT: int, play: str | None) -> None:
        if self.plays is None and play is None:
            return
        if self._state != (mT, play):
            self._cache.clear()
            self._state = (mT, play)

    def _offsets(self, m: int) -> tuple[np.ndarray | float, np.ndarray | float]:
        """Logit offsets per account at month m: recorded plays, plus the hypothetical one."""
        n = self.world.n
        oc: np.ndarray | float = 0.0
        oe: np.ndarray | float = 0.0
        cfg = self.world.cfg.plays
        if self.plays is not None:
            oc, oe = offsets(cfg, self.plays, n, m, started_by=self._upto)
        if self._extra is not None:
            ec, ee, start = self._extra
            k = m - start
            if 0 <= k < len(cfg.ramp):
                oc, oe = oc + ec * cfg.ramp[k], oe + ee * cfg.ramp[k]
        return oc, oe

    def _month(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Churn and expansion probabilities on the grid at month m's anniversary."""
        if m not in self._cache:
            w = self.world
            k = m - self.join
            is_renewal = ((k % w.term_months) == 0)[:, None]
            health = (w.mu[:, None] + GRID[None, :]).astype(np.float32)
            oc, oe = self._offsets(m)
            oc = np.asarray(oc, np.float32)[..., None]
            oe = np.asarray(oe, np.float32)[..., None]
            pc = self._churn(
                m, health, w.segment[:, None], w.term[:, None], (k / 12.0)[:, None], is_renewal, oc
            )
            pe = expansion_probability(
                w.cfg, health, w.growth[:, None], w.segment[:, None], is_renewal, oe
            )
            self._cache[m] = (pc, pe)
        return self._cache[m]

    def _in_window(self, m: int, idx: np.ndarray, T: np.datetime64, ends: np.ndarray) -> np.ndarray:
        date = anniversary(np.full(len(idx), m), self.anchor[idx])
        return (m - self.join[idx] >= 1) & (date > T) & (date <= ends)

    def probabilities(self, as_of: np.datetime64 | str) -> pd.DataFrame:
        """True 30/90-day churn and expansion probabilities of every customer at ``as_of``.

        Returns:
            One row per account that is a customer at T: ``account_index`` and
            ``p_churn_{H}d``, ``p_expansion_{H}d`` for each horizon; the window of horizon H
            is (T, T + H]. ``p_renewal_likelihood``: the probability that the account is still
            a customer after its next renewal decision D, i.e. survives every anniversary in
            (T, D]; NaN when D is more than ``RENEWAL_WINDOW_DAYS`` after T.

        """
        w = self.world
        T = np.datetime64(as_of, "D")
        mT = int(month_index(T))
        j0 = mT - w.first_month
        if not 0 <= j0 < w.n_months:
            raise ValueError(f"as-of date {T} is outside the simulated window")
        self._upto, self._extra = mT, None
        self._set_state(mT, None)
        self._intent_state(mT)
        for m in [m for m in self._cache if m <= mT]:
            del self._cache[m]
        alive = (w.customer_since <= T) & (np.isnat(w.churn_date) | (w.churn_date > T))
        idx = np.flatnonzero(alive & ~np.isnan(w.x[:, j0]))
        x_now = w.x[idx, j0]
        out = {"account_index": idx}
        for H in HORIZONS:
            ends = np.full(len(idx), T + np.timedelta64(H, "D"))
            s_now, e_now = self._window(idx, x_now, T, ends)
            out[f"p_churn_{H}d"] = 1.0 - s_now.astype(np.float64)
            out[f"p_expansion_{H}d"] = e_now.astype(np.float64)
        decision = next_renewal(w, idx, T)
        near = decision <= T + np.timedelta64(RENEWAL_WINDOW_DAYS, "D")
        renew = np.full(len(idx), np.nan)
        # By the month of the decision: a monthly plan's window holds one month, not seven.
        months = month_index(decision)
        for m in np.unique(months[near]):
            rows = near & (months == m)
            renew[rows] = self._window(idx[rows], x_now[rows], T, decision[rows])[0]
        out[f"p_{RENEWAL_LABEL}"] = renew
        return pd.DataFrame(out)

    def _window(
        self, idx: np.ndarray, x_now: np.ndarray, T: np.datetime64, ends: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """P(no churn) and P(expansion) over the anniversaries in (T, ends] of accounts ``idx``.

        ``x_now`` is their latent deviation this month, ``ends`` one window end per account.
        """
        w = self.world
        mT = int(month_index(T))
        last = int(month_index(ends.max())) if len(idx) else mT
        surv = np.ones((len(idx), len(GRID)), np.float32)
        expd = np.zeros((len(idx), len(GRID)), np.float32)
        for m in range(last, mT, -1):  # months after T's month, backwards, on the grid
            if m < last:
                surv, expd = surv @ self.P_T, expd @ self.P_T
            pc, pe = self._month(m)
            surv, expd = _decide(self._in_window(m, idx, T, ends), pc[idx], pe[idx], surv, expd)
        s_now = self._expect_from(x_now, surv) if last > mT else np.ones(len(idx))
        e_now = self._expect_from(x_now, expd) if last > mT else np.zeros(len(idx))
        # This month's own anniversary, if still ahead, uses the exact current health.
        k = mT - self.join[idx]
        health = w.mu[idx] + x_now
        is_renewal = (k % w.term_months[idx]) == 0
        oc, oe = self._offsets(mT)
        oc = oc[idx] if isinstance(oc, np.ndarray) else oc
        oe = oe[idx] if isinstance(oe, np.ndarray) else oe
        pc = self._churn(
            mT, health, w.segment[idx], w.term[idx], k / 12.0, is_renewal, oc, rows=idx
        )
        pe = expansion_probability(w.cfg, health, w.growth[idx], w.segment[idx], is_renewal, oe)
        return _decide(self._in_window(mT, idx, T, ends), pc, pe, s_now, e_now)

    def play_probabilities(self, as_of: np.datetime64 | str, horizon: int = 90) -> pd.DataFrame:
        """Churn and expansion probability in (T, T + horizon] with no new play and with each.

        "No play": no play starts after T (plays already running go on). "With P": P starts
        in the month after T (the decision window), its effect fixed by the causes present at
        T. One row per customer at T: ``account_index``, the causes (bool), and
        ``p_churn_none``, ``p_expansion_none``, ``p_churn_<play>``, ``p_expansion_<play>``.
        """
        w = self.world
        T = np.datetime64(as_of, "D")
        mT = int(month_index(T))
        j0 = mT - w.first_month
        if not 0 <= j0 < w.n_months:
            raise ValueError(f"as-of date {T} is outside the simulated window")
        alive = (w.customer_since <= T) & (np.isnat(w.churn_date) | (w.churn_date > T))
        idx = np.flatnonzero(alive & ~np.isnan(w.x[:, j0]))
        x_now = w.x[idx, j0]
        ends = np.full(len(idx), T + np.timedelta64(horizon, "D"))
        health = w.mu + np.nan_to_num(w.x[:, j0])
        present = causes(w.cfg, health, w.growth, recent_shocks(w.shocks, j0))
        out: dict[str, np.ndarray] = {"account_index": idx}
        out.update({f"cause_{c}": v[idx] for c, v in present.items()})
        self._upto = mT
        self._intent_state(mT)
        for play in (None, *w.cfg.plays.effects):
            if play is None:
                self._extra = None
            else:
                ec, ee = effects(w.cfg.plays, play, present)
                self._extra = (ec, ee, mT + 1)
            self._cache.clear()
            self._state = (mT, play)
            s_now, e_now = self._window(idx, x_now, T, ends)
            name = play or "none"
            out[f"p_churn_{name}"] = 1.0 - s_now.astype(np.float64)
            out[f"p_expansion_{name}"] = e_now.astype(np.float64)
        self._extra = None
        self._cache.clear()
        self._state = None
        return pd.DataFrame(out)

    def _expect_from(self, x: np.ndarray, f: np.ndarray) -> np.ndarray:
        """E f(x') for next month's deviation x' from the exact current deviation ``x``.

        Smooth f with the Gaussian shock on the grid, then read the smoothed function at
        phi * x + jump by linear interpolation, for each jump combination.
        """
        smooth = f @ self.S_T
        phi = self.world.cfg.latent.phi
        pos = (phi * x[:, None] + self.jump_totals[None, :] - GRID[0]) / STEP  # (n, jumps)
        pos = np.clip(pos, 0, len(GRID) - 1 - 1e-9)
        i = pos.astype(np.int64)
        frac = pos - i
        rows = np.arange(len(x))[:, None]
        values = smooth[rows, i] * (1 - frac) + smooth[rows, i + 1] * frac
        return values @ self.jump_probs


def next_renewal(world, idx: np.ndarray, T: np.datetime64) -> np.ndarray:
    """Date of each account's next renewal decision after T.

    That is the first anniversary after T (k >= 1 months after joining) with k a multiple of
    the term: every month for monthly plans, the term end otherwise.
    """
    since = world.customer_since[idx].astype("datetime64[D]")
    join = month_index(since)
    anchor = (since - since.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    mT = int(month_index(T))
    this = anniversary(np.full(len(idx), mT), anchor)
    k = np.maximum(mT - join + (this <= T), 1)  # first anniversary after T, k months in
    term = world.term_months[idx]
    k = -(-k // term) * term  # up to the next multiple of the term
    return anniversary(join + k, anchor)


def _decide(in_window, pc, pe, surv, expd):
    """Apply an anniversary decision to continuation values where it falls in the window.

    Churn is decided first; an account that stays may then expand.
    """
    w = in_window[:, None] if surv.ndim == 2 else in_window
    new_surv = (1 - pc) * surv
    new_expd = (1 - pc) * (pe + (1 - pe) * expd)
    return np.where(w, new_surv, surv), np.where(w, new_expd, expd)
