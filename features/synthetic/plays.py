"""CSM plays in the synthetic world: a confounded assignment policy and the plays' true effects.

A play started in calendar month ``s`` on an account changes the churn and expansion logits
at that account's decisions in months ``s, s + 1, ...`` by its effect times ``ramp[m - s]``
(it takes time, then fades). The effect depends on the cause the play addresses and is fixed
at the start from the state the CSM saw: last month's latent health and shocks. The policy is
a real team's: riskier (low seat use), larger and troubled accounts more often, bounded by
the CSMs' capacity; an optional randomised holdout keeps a share of the chosen accounts as
control, and an optional randomised pilot gives a share of the plays to accounts drawn at
random with a recorded chance (exploration). The simulator and the oracle share
:func:`causes`, :func:`effects` and :func:`offsets`, so the oracle's "with play P"
probabilities are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.synthetic.calendar import month_start
from features.synthetic.process import (
    PLAY_CAUSES,
    SHOCKS,
    PlaysConfig,
    SyntheticConfig,
    seat_utilisation,
    sigmoid,
)

# The rule a CSM follows: the play for the first cause present (in this order), else the last.
RULE_PLAY = {
    "relationship": "executive_outreach",
    "support": "support_escalation",
    "adoption": "adoption_plan",
    None: "value_review",
}
_CAUSE_SHOCKS = {
    "relationship": ("champion_left", "sponsor_lost"),
    "support": ("product_incident",),
}
_LOOKBACK = 3  # months of shocks a cause looks back over


def causes(
    cfg: SyntheticConfig, health: np.ndarray, growth: np.ndarray, recent_shocks: np.ndarray
) -> dict[str, np.ndarray]:
    """Which causes are present per account (bool arrays keyed as :data:`PLAY_CAUSES`).

    Args:
        cfg: The process.
        health: Latent health this month.
        growth: Static growth trait.
        recent_shocks: (n, len(SHOCKS)) bool, any shock in the last ``_LOOKBACK`` months.

    """
    out = {
        cause: recent_shocks[:, [SHOCKS.index(s) for s in names]].any(axis=1)
        for cause, names in _CAUSE_SHOCKS.items()
    }
    out["adoption"] = seat_utilisation(cfg, health, growth) < cfg.plays.adoption_threshold
    return {c: out[c] for c in PLAY_CAUSES}


def effects(
    plays: PlaysConfig, play: str, present: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Full-strength churn and expansion logit changes of ``play`` per account."""
    e = plays.effects[play]
    n = len(next(iter(present.values())))
    hit = present[e.cause] if e.cause else np.ones(n, bool)
    return np.where(hit, e.churn_logit, e.churn_logit_other), np.full(n, e.expansion_logit)


def recent_shocks(shocks: np.ndarray, j: int) -> np.ndarray:
    """Any shock in months ``j - _LOOKBACK + 1 .. j`` of the simulation (n, len(SHOCKS))."""
    return shocks[:, max(0, j - _LOOKBACK + 1) : j + 1].any(axis=1)


@dataclass
class PlayRecord:
    """Plays started in the simulation, one row each (arrays of equal length)."""

    account: np.ndarray  # account index
    month: np.ndarray  # calendar month index of the start
    play: np.ndarray  # play code (object)
    churn_logit: np.ndarray  # full-strength effects fixed at the start
    expansion_logit: np.ndarray

    @classmethod
    def empty(cls) -> PlayRecord:
        """No plays."""
        return cls(
            np.array([], np.int64),
            np.array([], np.int64),
            np.array([], object),
            np.array([], float),
            np.array([], float),
        )

    def frame(self) -> pd.DataFrame:
        """As a DataFrame (ground truth)."""
        return pd.DataFrame(
            {
                "account_index": self.account,
                "month": self.month,
                "play": self.play,
                "churn_logit": self.churn_logit,
                "expansion_logit": self.expansion_logit,
            }
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> PlayRecord:
        """Back from :meth:`frame`."""
        return cls(
            df["account_index"].to_numpy(np.int64),
            df["month"].to_numpy(np.int64),
            df["play"].to_numpy(object),
            df["churn_logit"].to_numpy(float),
            df["expansion_logit"].to_numpy(float),
        )


def offsets(
    plays: PlaysConfig, record: PlayRecord, n: int, m: int, started_by: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Churn and expansion logit offsets per account at month ``m`` from recorded plays.

    Only plays started in months up to ``started_by`` count (default: up to ``m``).
    """
    ramp = np.asarray(plays.ramp)
    k = m - record.month
    live = (k >= 0) & (k < len(ramp)) & (record.month <= (m if started_by is None else started_by))
    oc, oe = np.zeros(n), np.zeros(n)
    np.add.at(oc, record.account[live], record.churn_logit[live] * ramp[k[live]])
    np.add.at(oe, record.account[live], record.expansion_logit[live] * ramp[k[live]])
    return oc, oe


class PlayPolicy:
    """Chooses, each month, which accounts get which play (the simulator's CSM team)."""

    def __init__(self, cfg: SyntheticConfig, n: int, rng: np.random.Generator):
        self.cfg, self.p, self.n, self.rng = cfg, cfg.plays, n, rng
        self.codes = np.asarray(list(self.p.effects), dtype=object)
        self.last = np.full(n, -10_000)
        self.parts: list[tuple] = []
        self.holdouts: list[tuple[np.ndarray, int]] = []
        self.pilots: list[tuple[int, np.ndarray]] = []  # (index into parts, propensities)

    def month(
        self,
        m: int,
        eligible: np.ndarray,
        health: np.ndarray,
        growth: np.ndarray,
        arr: np.ndarray,
        recent: np.ndarray,
    ) -> None:
        """Start this month's plays from last month's state (``health``, ``recent`` shocks)."""
        p, rng = self.p, self.rng
        present = causes(self.cfg, health, growth, recent)
        n_causes = sum(v.astype(int) for v in present.values())
        util = seat_utilisation(self.cfg, health, growth)
        med = np.median(arr[eligible]) if eligible.any() else 1.0
        z = (
            p.policy_base
            + p.policy_utilisation * (0.6 - util)
            + p.policy_arr * np.log(np.maximum(arr, 1.0) / med)
            + p.policy_cause * n_causes
        )
        ok = eligible & (m - self.last >= p.cooldown_months)
        s = np.where(ok, sigmoid(z), 0.0)
        capacity = max(1, self.n // p.accounts_per_csm) * p.plays_per_csm_month
        pilot = capacity * p.pilot  # the pilot's plays come out of the same CSMs' months
        capacity = capacity - pilot
        # Capacity scales every chance down alike, so each account keeps a chance (overlap).
        prob = s * min(1.0, capacity / max(s.sum(), 1e-9))
        u = rng.random((self.n, 3))
        chosen = u[:, 0] < prob
        held = chosen & (u[:, 1] < p.holdout)
        treat = chosen & ~held
        first = np.full(self.n, None, dtype=object)
        for cause in reversed(PLAY_CAUSES):  # the first cause in order wins
            first[present[cause]] = cause
        rule = np.array([RULE_PLAY[c] for c in first], dtype=object)
        rule = np.where(np.isin(rule, self.codes), rule, self.codes[0])
        other = self.codes[rng.integers(0, len(self.codes), self.n)]
        play = np.where(u[:, 2] < p.rule_share, rule, other)
        self._apply(np.flatnonzero(treat), play, m, present)
        self.last[chosen] = m
        if held.any():
            self.holdouts.append((np.flatnonzero(held), m))
        if pilot > 0:  # drawn only with a pilot: the default world's draws stay as they were
            self._pilot(m, eligible & ~chosen, pilot, n_causes > 0, rule, present)

    def _pilot(
        self,
        m: int,
        pool: np.ndarray,
        plays: float,
        troubled: np.ndarray,
        rule: np.ndarray,
        present: dict[str, np.ndarray],
    ) -> None:
        """Randomised plays on accounts the team did not choose, each with a known chance.

        An account of the pool is drawn with a chance in proportion to its weight (1 with a
        cause, ``pilot_no_cause_weight`` without), ``plays`` expected in all; a drawn account
        gets its rule play with chance ``rule_share``, else any play at random. The chance of
        the play it got (draw x play) is recorded with it: the randomisation's propensity.
        """
        p, rng = self.p, self.rng
        w = np.where(pool, np.where(troubled, 1.0, p.pilot_no_cause_weight), 0.0)
        q = np.minimum(1.0, plays * w / max(w.sum(), 1e-9))
        u = rng.random((self.n, 2))
        drawn = u[:, 0] < q
        other = self.codes[rng.integers(0, len(self.codes), self.n)]
        play = np.where(u[:, 1] < p.rule_share, rule, other)
        share = (1 - p.rule_share) / len(self.codes) + p.rule_share * (play == rule)
        for k in self._apply(np.flatnonzero(drawn), play, m, present):
            rows = self.parts[k][0]
            self.pilots.append((k, q[rows] * share[rows]))
        self.last[drawn] = m

    def _apply(
        self, idx: np.ndarray, play: np.ndarray, m: int, present: dict[str, np.ndarray]
    ) -> list[int]:
        """Start ``play`` on the accounts ``idx`` in month ``m``: one part per play code.

        Each part carries the true effects on churn and expansion for the causes the
        accounts have; returns the parts' positions in ``self.parts``.
        """
        added = []
        for code in self.codes:
            rows = idx[play[idx] == code]
            if len(rows) == 0:
                continue
            sub = {c: v[rows] for c, v in present.items()}
            ec, ee = effects(self.p, code, sub)
            self.parts.append((rows, np.full(len(rows), m), play[rows], ec, ee))
            added.append(len(self.parts) - 1)
        return added

    def record(self) -> PlayRecord:
        """Every play started so far."""
        if not self.parts:
            return PlayRecord.empty()
        cols = [np.concatenate([part[i] for part in self.parts]) for i in range(5)]
        return PlayRecord(cols[0], cols[1].astype(np.int64), cols[2], cols[3], cols[4])

    def _pilot_columns(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Per recorded play (as :meth:`record` orders them): reason and pilot propensity."""
        reason = np.full(rows, None, dtype=object)
        propensity = np.full(rows, np.nan)
        starts = np.cumsum([0] + [len(part[0]) for part in self.parts])
        for k, q in self.pilots:
            reason[starts[k] : starts[k + 1]] = "pilot"
            propensity[starts[k] : starts[k + 1]] = q
        return reason, propensity

    def actions(
        self, ids: np.ndarray, owner: np.ndarray, churn: np.ndarray, window_end: np.datetime64
    ) -> pd.DataFrame:
        """The ``csm_actions`` rows: play_started / play_done per play, opened for holdouts.

        A play starts on the first day of its month (the monthly planning) and is done
        ``play_days`` later: ``success`` if the account is still a customer then, ``churned``
        otherwise (what a CRM's close reason records). Nothing after the window end.
        """
        rec = self.record()
        start = month_start(rec.month).astype("datetime64[D]")
        done = start + np.timedelta64(self.p.play_days, "D")
        left = ~np.isnat(churn[rec.account]) & (churn[rec.account] <= done)
        cta = np.array([f"P{i:07d}" for i in range(1, len(rec.account) + 1)], dtype=object)
        who = owner[rec.account]
        reason, propensity = self._pilot_columns(len(rec.account))
        frames = [
            pd.DataFrame(
                {
                    "account_id": ids[rec.account],
                    "date": start,
                    "action": "play_started",
                    "play": rec.play,
                    "outcome": None,
                    "owner": who,
                    "reason": reason,
                    "cta_id": cta,
                    **({"propensity": propensity} if self.pilots else {}),
                }
            ),
            pd.DataFrame(
                {
                    "account_id": ids[rec.account],
                    "date": np.where(left, churn[rec.account], done),
                    "action": "play_done",
                    "play": rec.play,
                    "outcome": np.where(left, "churned", "success"),
                    "owner": who,
                    "reason": None,
                    "cta_id": cta,
                }
            ),
        ]
        for k, (acct, m) in enumerate(self.holdouts):
            frames.append(
                pd.DataFrame(
                    {
                        "account_id": ids[acct],
                        "date": month_start(np.full(len(acct), m)).astype("datetime64[D]"),
                        "action": "opened",
                        "play": None,
                        "outcome": None,
                        "owner": owner[acct],
                        "reason": "holdout",
                        "cta_id": [f"H{k:03d}{i:06d}" for i in range(len(acct))],
                    }
                )
            )
        out = pd.concat(frames, ignore_index=True)
        out = out[out["date"].to_numpy().astype("datetime64[D]") <= window_end]
        return out.sort_values(["date", "account_id", "action"]).reset_index(drop=True)
