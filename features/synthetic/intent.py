"""A latent intent to leave: a churn driver that only what customers write reveals.

Real accounts often decide to leave for reasons their usage does not show: a competitor's
offer, a price rise at renewal, a new executive who prefers another tool. They say so in
tickets and survey comments ("Procurement asked us to evaluate Northwind before the
renewal", "The renewal quote is above what finance approved") weeks before they go. This
module models that, off by default (``intent.enabled``):

* every renewal decision (the anniversary where the term ends) carries an **intent** with
  probability ``rate_by_term`` (by billing term), independent of health and of everything
  else, so no usage, support or NPS figure can see it;
* the intent **shows** from its **onset**, ``L`` months before the decision month (``L``
  uniform on 1..``lead_months``), until the month before the decision: in those months the
  account asks about leaving (``tickets_per_month`` extra tickets: renewal terms, a cheaper
  plan, exporting its data) and more of its tickets and NPS comments are about pricing and
  competitors, and sour (:mod:`features.synthetic.text`);
* at the decision it adds ``churn_logit`` to the renewal's churn logit (and a renewal without
  one gets ``churn_logit_without``, below zero: intents take over part of the churn that was
  noise; the portfolio still churns more than the default world, see docs/synthetic-data.md).

The oracle knows an intent from its onset on (it is the latent state); before the onset it
knows only the rate. :func:`intent_probability` gives, for a decision month and an as-of
month, the probability that the decision carries an intent given what the process knows
then; intents of different decisions are independent of each other and of health, so the
oracle mixes the two churn probabilities decision by decision.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field


class IntentParams(BaseModel):
    """A latent intent to leave, shown only in text (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False,
        description="Simulate intents to leave. Off by default: intents change who churns, "
        "so every figure of the default world would move.",
    )
    rate_by_term: tuple[float, float, float] = Field(
        (0.1, 0.35, 0.35),
        description="Chance that a renewal decision carries an intent, by billing term "
        "(monthly, annual, multi_year); monthly plans renew every month, hence the low rate.",
    )
    lead_months: int = Field(
        3, ge=1, le=6, description="The intent shows 1..lead_months months before the decision."
    )
    churn_logit: float = Field(
        3.0, description="Added to the churn logit at a renewal that carries an intent."
    )
    churn_logit_without: float = Field(
        -1.0,
        description="Added to the churn logit at a renewal without one: intents explain part "
        "of the churn that health does not (the portfolio still churns more than without).",
    )
    tickets_per_month: float = Field(
        0.8,
        ge=0,
        description="Extra tickets a month while the intent shows: questions about renewal "
        "terms, a cheaper plan, exporting the data (people ask before they leave).",
    )
    topic_share: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Share of an intending account's other tickets and comments about "
        "pricing or competitors (the rest keep the topic their health gives).",
    )
    tone_offset: float = Field(
        -1.0, description="Tone logit added to what an intending account writes (sour)."
    )


def draw_intent(
    rng: np.random.Generator,
    p: IntentParams,
    term: np.ndarray,
    term_months: np.ndarray,
    join_month: np.ndarray,
    first_month: int,
    n_months: int,
) -> np.ndarray:
    """Onset month of the intent of each (account, decision month), -1 where none.

    Column ``j`` is calendar month ``first_month + j``; there are ``n_months + lead_months``
    columns so that decisions just after the window, whose intent may show inside it, have
    theirs.
    """
    n, width = len(term), n_months + p.lead_months
    months = first_month + np.arange(width)
    k = months[None, :] - join_month[:, None]
    renewal = (k >= 1) & (k % term_months[:, None] == 0)
    has = renewal & (rng.random((n, width)) < np.asarray(p.rate_by_term)[term][:, None])
    lead = rng.integers(1, p.lead_months + 1, (n, width))
    return np.where(has, months[None, :] - lead, -1)


def showing(onset: np.ndarray, first_month: int, m: int) -> np.ndarray:
    """Whether each account's intent shows in calendar month ``m`` (onset <= m < decision)."""
    j = m - first_month
    cols = onset[:, j + 1 :]  # decisions after m
    return ((cols >= 0) & (cols <= m)).any(axis=1)


def intent_probability(
    p: IntentParams, onset: np.ndarray | None, first_month: int, term: np.ndarray, m: int, mT: int
) -> np.ndarray:
    """P(the decision in month ``m`` carries an intent | the latent state in month ``mT``).

    Known (1 or 0) where the onset is at or before ``mT``: every intent of a decision at or
    before ``mT + 1`` has shown by then (the lead is at least a month). Otherwise the rate,
    given that no onset has been seen yet: ``q P(L < d) / (1 - q P(L >= d))`` with ``d = m
    - mT`` months to the decision. Every account, decision month or not (the caller keeps
    renewals).
    """
    q = np.asarray(p.rate_by_term)[term]
    d = m - mT
    later = min(max((p.lead_months - d + 1) / p.lead_months, 0.0), 1.0)  # P(L >= d)
    unseen = q * (1 - later) / (1 - q * later)
    j = m - first_month
    if onset is None or not 0 <= j < onset.shape[1]:
        return unseen
    col = onset[:, j]
    seen = (col >= 0) & (col <= mT)
    return np.where(seen, 1.0, unseen)


def intent_frame(onset: np.ndarray, ids: np.ndarray, first_month: int) -> pd.DataFrame:
    """The ground truth of every intent: account, decision month, onset month."""
    rows, cols = np.nonzero(onset >= 0)
    month = (first_month + cols).astype("datetime64[M]").astype("datetime64[s]")
    return pd.DataFrame(
        {
            "account_id": ids[rows],
            "decision_month": month,
            "onset_month": onset[rows, cols].astype("datetime64[M]").astype("datetime64[s]"),
        }
    )


def onset_from_frame(
    df: pd.DataFrame, ids: pd.Series, first_month: int, width: int, n: int
) -> np.ndarray:
    """The onset array of :func:`draw_intent` back from :func:`intent_frame`'s table."""
    out = np.full((n, width), -1, dtype=np.int64)
    row = ids[df["account_id"]].to_numpy()
    dm = df["decision_month"].to_numpy().astype("datetime64[M]").astype(np.int64)
    om = df["onset_month"].to_numpy().astype("datetime64[M]").astype(np.int64)
    out[row, dm - first_month] = om
    return out
