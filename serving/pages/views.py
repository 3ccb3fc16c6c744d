"""What the CSM pages show, computed from the service's state (no HTTP, no templates here)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd

from actions.config import ActionsConfig
from features.catalogue import (
    ARR_AT_RISK,
    CHURN_HEAD,
    EXPANSION_HEAD,
    FEATURE_BY_NAME,
    HEADLINE_HEADS,
    RENEWAL_LABEL,
)
from features.health import with_rules
from features.store import ACCOUNT_INFO
from features.words import evidence_phrase, signed_points
from scoring.outlook import shown_forecasts
from scoring.plays import ScoringConfig, needs_action, within_capacity
from scoring.records import Rows, portfolio_summary, renewal_within_window, score_rows
from scoring.schema import AccountScore, api_records
from serving.pages.outlook_columns import with_forecast_columns
from serving.state import DATES_KEPT, DateRows, State
from training.explain import SHOWN
from training.registry import ScoringModel


def score(state: State, cfg: ScoringConfig, rows: Rows, missing: list[list[str]]) -> dict:
    """Scoring records of ``rows`` of the state, column by column."""
    return score_rows(
        rows, state.model, cfg, missing=missing, uplift=state.uplift, risk_cut=state.risk_cut
    )


def score_positions(state: State, cfg: ScoringConfig, positions: list[int]) -> dict:
    """Scoring records of the latest snapshots at ``positions``."""
    return score(state, cfg, state.rows.take(positions), [state.missing[i] for i in positions])


def what_if_rows(
    at: DateRows, positions: list[int], changes: dict[str, dict[str, Any]], state: State
) -> tuple[Rows, list[list[str]]]:
    """The snapshot rows at ``positions`` with ``changes`` (account id -> feature -> value).

    The health score, its components, alerts and triggers are recomputed from the changed
    values with the rules of the model's training data (the store's, unchanged, give the
    same); a feature set to null is missing.
    """
    part = at.rows.take(positions)
    frame = pd.DataFrame({c: part.col(c) for c in part.names()})
    for row, account in enumerate(frame["account_id"]):
        for name, value in changes[account].items():
            numeric = not FEATURE_BY_NAME[name].categorical
            frame.loc[row, name] = (np.nan if value is None else float(value)) if numeric else value
    full = with_rules(frame, state.feature_cfg)
    return Rows.from_frame(full, state.model.bundle), [at.missing[i] for i in positions]


def portfolio_of(
    records: pd.DataFrame, as_of: pd.Timestamp, segment: str | None, model: ScoringModel
) -> dict[str, Any]:
    """The portfolio summary of ``records``, in the shape of :class:`serving.schemas.Portfolio`.

    The figures are :func:`scoring.records.portfolio_summary`'s, as ``radar score`` prints.
    """
    summary = portfolio_summary(records)
    plays, disagreements = summary.pop("plays"), summary.pop("disagreements")
    everyone = summary.pop("all")
    return {
        "as_of": as_of.date(),
        "segment": segment,
        "model_name": model.name,
        "model_version": model.version,
        "training_run_id": model.run_id,
        "all": everyone,
        "segments": summary,
        "plays": plays,
        "disagreements": disagreements,
    }


def leading_reason(reasons: list[dict]) -> str | None:
    """The most risk-raising family with its strongest evidence, in a few words."""
    if not reasons or reasons[0]["effect"] < SHOWN:
        return None
    r = reasons[0]
    text = f"{r['title']} {signed_points(r['effect'])}"
    if r["evidence"]:
        e = r["evidence"][0]
        text += f": {evidence_phrase(e['feature'], e['value'], e['typical'])}"
    return text


def expansion_opportunity(df: pd.DataFrame, cfg: ScoringConfig) -> pd.Series:
    """The accounts of the pages' expansion view: a likely expansion or an expansion trigger.

    Likely: the headline expansion chance at ``high_growth_expansion_p90`` or more, the
    threshold the value/growth segment already uses (no second threshold).
    """
    p = df.get(f"p_{EXPANSION_HEAD}", pd.Series(np.nan, index=df.index)).astype("float64")
    triggers = df.get("triggers", pd.Series([[]] * len(df), index=df.index))
    return (p >= cfg.high_growth_expansion_p90) | triggers.map(lambda t: len(t) > 0)


def worklist_capacity() -> int:
    """Accounts per CSM on the week's worklist: the calls to action's capacity.

    The service runs on the default actions configuration, as its calls to action do, so the
    pages and the CTAs bound a CSM's week by the same number.
    """
    return ActionsConfig().capacity_per_csm


class Views:
    """The portfolio (scored once, on first use) and the account page of a state."""

    def __init__(self, state: State, cfg: ScoringConfig) -> None:
        self.state, self.cfg = state, cfg
        self._portfolio: pd.DataFrame | None = None
        self._earlier: OrderedDict[pd.Timestamp, pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def portfolio(self) -> pd.DataFrame:
        """Every account of the latest date scored, with its top churn driver in words.

        Computed on first use (the CSM pages), then kept: the snapshots and model are fixed.
        """
        with self._lock:
            if self._portfolio is None:
                s = self.state
                df = pd.DataFrame(score(s, self.cfg, s.rows, s.missing))
                reasons = df.get(f"reasons_{CHURN_HEAD}", pd.Series([[]] * len(df)))
                df["leading_reason"] = [leading_reason(r) for r in reasons]
                df["needs_action"] = needs_action(df, self.cfg)
                for h in HEADLINE_HEADS:  # a head the model lacks: a missing column, not a 500
                    if f"p_{h}" not in df:
                        df[f"p_{h}"] = np.nan
                df["expansion_opportunity"] = expansion_opportunity(df, self.cfg)
                # Health now -> expected, its band (empty for a model without forecasts).
                df = with_forecast_columns(df, s.feature_cfg.health_scheme().bands)
                df["on_worklist"] = within_capacity(
                    df, df["needs_action"], worklist_capacity(), ARR_AT_RISK
                )
                self._portfolio = df
            return self._portfolio

    def portfolio_at(self, at: DateRows) -> pd.DataFrame:
        """Every account of snapshot date ``at`` scored (the latest: :meth:`portfolio`)."""
        if at.as_of == self.state.as_of:
            return self.portfolio()
        with self._lock:
            if at.as_of not in self._earlier:
                s = self.state
                self._earlier[at.as_of] = pd.DataFrame(
                    score_rows(
                        at.rows,
                        s.model,
                        self.cfg,
                        missing=at.missing,
                        uplift=at.uplift,
                        risk_cut=at.risk_cut,
                    )
                )
                while len(self._earlier) > DATES_KEPT:
                    self._earlier.popitem(last=False)
            self._earlier.move_to_end(at.as_of)
            return self._earlier[at.as_of]

    def account(self, account_id: str) -> dict[str, Any] | None:
        """What the account page shows: record, identity, trends; None if not served."""
        s = self.state
        if account_id not in s.position:
            return None
        pos = s.position[account_id]
        columns = score_positions(s, self.cfg, [pos])
        record = AccountScore.model_validate(api_records(columns, list(s.model.bundle.heads))[0])
        past = s.history.iloc[s.history_rows.get(account_id, np.array([], int))]
        probs = s.model.bundle.predict(past) if len(past) else pd.DataFrame()
        if f"p_{RENEWAL_LABEL}" in probs:  # as in the records: none without a renewal near
            near = renewal_within_window(past["days_to_renewal"])
            probs[f"p_{RENEWAL_LABEL}"] = probs[f"p_{RENEWAL_LABEL}"].where(near)
        trends = {c: probs[c].tolist() for c in probs.columns}
        for c in (c for c in past.columns if c.startswith("health_")):
            if c != "health_band":
                trends[c] = past[c].astype("float64").tolist()
        seats = s.rows.col("seats", numeric=True)[pos]
        # A head without a probability now (renewal likelihood far from a renewal) has no why.
        why = [
            h
            for h in HEADLINE_HEADS
            if h in record.reasons and getattr(record, f"p_{h}", None) is not None
        ]
        # One scale for every bar of the page: a 0.2-point effect never draws full width.
        effects = [abs(r.effect) for h in why for r in record.reasons[h]]
        effects += [abs(record.timing[h].effect) for h in why]
        return {
            "why_heads": why,
            "scale": max([*effects, SHOWN]),
            "shown": SHOWN,
            "score": record,
            "info": {c: getattr(record, c) for c in ACCOUNT_INFO},
            "seats": None if np.isnan(seats) else float(seats),
            "renewal_date": record.renewal_date,
            "trends": trends,
            "trend_points": len(past),
            "trend_from": past["as_of"].min().date() if len(past) else s.as_of.date(),
            "forecasts": shown_forecasts(record),  # health ahead, satisfaction (those it has)
        }
