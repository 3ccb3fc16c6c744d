"""The scoring record's schema: the fields of one account's record and of the portfolio summary.

The same fields ``radar score`` writes, the service answers and the brief reads; the service's
request schemas and OpenAPI document build on them (:mod:`serving.schemas`).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from features.catalogue import (
    HEADLINE_HORIZON,
    HEALTH_FORECASTS,
    HORIZONS,
    RENEWAL_WINDOW_DAYS,
    SATISFACTION_HEADS,
    SATISFACTION_WINDOW_DAYS,
    horizon_days,
)
from features.words import SATISFACTION_WORDS

ACCOUNT_EXAMPLE = "A000042"


class Driver(BaseModel):
    """One reason behind a probability."""

    feature: str = Field(
        description="Feature name in the catalogue.", examples=["seat_utilisation"]
    )
    family: str = Field(description="usage, engagement, relationship, support or commercial.")
    value: str = Field(
        description="The account's value, as a person would write it.", examples=["31%"]
    )
    effect: float = Field(
        description="Effect on the probability (0.12 = 12 points); positive raises it.",
        examples=[0.12],
    )
    direction: Literal["raises", "lowers"]
    sentence: str = Field(
        description="The driver in plain words.",
        examples=[
            "Share of purchased seats active each week, over the last 4 complete weeks: 31%; "
            "this raises 90-day churn risk by 12 points."
        ],
    )


class Part(BaseModel):
    """A part of a probability that is context, not a reason: the calendar, the profile."""

    effect: float = Field(description="Effect on the probability (0.37 = 37 points).")
    sentence: str = Field(
        examples=[
            "Renewal on 10 Jan 2027 falls inside the next 90 days: +37 points on the 90-day "
            "churn risk."
        ]
    )


class Evidence(BaseModel):
    """One of the account's own signals behind a reason, against the typical value."""

    feature: str = Field(examples=["seat_utilisation"])
    value: str = Field(examples=["31%"])
    typical: str | None = Field(description="The training window's median.", examples=["62%"])
    effect: float
    sentence: str


class Reason(BaseModel):
    """One family of signals (usage, engagement, relationship, support, commercial)."""

    family: str = Field(examples=["usage"])
    title: str = Field(examples=["Product usage"])
    effect: float = Field(description="Sum of the family's effects (exact).")
    sentence: str
    evidence: list[Evidence] = Field(description="Its one or two strongest pieces of evidence.")


VERBS = {"churn": "churning", "expansion": "expanding"}


def _head_fields() -> dict[str, tuple[Any, FieldInfo]]:
    """``p_<head>`` of each churn and expansion horizon of the catalogue: null without the head."""
    out = {}
    for kind, verb in VERBS.items():
        for h in HORIZONS:
            below = f" (never above the {max(HORIZONS)}-day one)" if h < max(HORIZONS) else ""
            out[f"p_{kind}_{h}d"] = (
                float | None,
                Field(
                    None,
                    ge=0,
                    le=1,
                    description=f"Calibrated probability of {verb} within {h} days{below}; "
                    "none when the model has no such head.",
                ),
            )
    return out


def _arr_fields() -> dict[str, tuple[Any, FieldInfo]]:
    """The ARR at stake at each horizon of the catalogue (none without ARR or the head)."""
    out = {}
    for h in HORIZONS:
        what = f"{h}-day churn probability x ARR."
        out[f"arr_at_risk_{h}d"] = (float | None, Field(None, description=what))
    for h in HORIZONS:
        what = f"{h}-day expansion probability x ARR x the expected uplift."
        out[f"expected_expansion_arr_{h}d"] = (float | None, Field(None, description=what))
    return out


def _forecast_fields() -> dict[str, tuple[Any, FieldInfo]]:
    """The forecasts' fields (training/forecast.py): none when the model has no forecasts."""
    out = {}
    for name in HEALTH_FORECASTS:
        h = horizon_days(name)
        out[name] = (
            float | None,
            Field(None, description=f"Health score expected in {h} days, 0-100."),
        )
        for end, word in (("low", "Low"), ("high", "High")):
            out[f"{name}_{end}"] = (
                float | None,
                Field(
                    None,
                    description=f"{word} end of the {h}-day forecast's interval (split "
                    "conformal, the coverage set in training; measured coverage in the run).",
                ),
            )
    for name in SATISFACTION_HEADS:
        out[f"p_{name}"] = (
            float | None,
            Field(
                None,
                ge=0,
                le=1,
                description=f"Calibrated probability: {SATISFACTION_WORDS[name]}, within "
                f"{SATISFACTION_WINDOW_DAYS} days; none without the data.",
            ),
        )
    return out


def _summary_fields() -> dict[str, tuple[Any, FieldInfo]]:
    """The portfolio's expected churned and expanded ARR at each horizon of the catalogue."""
    out = {}
    for h in HORIZONS:
        what = f"Sum of {h}-day churn probability x ARR; none without ARR or the head."
        out[f"expected_churned_arr_{h}d"] = (float | None, Field(description=what))
    for h in HORIZONS:
        what = f"Sum of {h}-day expected expansion ARR; none without ARR or the head."
        out[f"expected_expansion_arr_{h}d"] = (float | None, Field(description=what))
    return out


def _with_fields(model: type[BaseModel], after: dict[str, dict]) -> type[BaseModel]:
    """``model`` with the fields of ``after[name]`` inserted after its field ``name``.

    The horizon fields come from the catalogue (:data:`features.catalogue.HORIZONS`) and keep
    their place in the record, so a record reads who, when, the probabilities, health, ARR.
    """
    fields: dict[str, tuple[Any, Any]] = {}
    for name, info in model.model_fields.items():
        fields[name] = (info.annotation, info)
        fields |= after.get(name, {})
    return create_model(
        model.__name__, __config__=model.model_config, __doc__=model.__doc__, **fields
    )


class _AccountScore(BaseModel):
    """The full scoring record of one account (the same fields as ``radar score`` writes)."""

    model_config = ConfigDict(extra="ignore")

    account_id: str = Field(examples=[ACCOUNT_EXAMPLE])
    name: str | None = Field(None, description="Account name (from the accounts table).")
    csm_owner: str | None = Field(None, description="The account's CSM (none: tech touch).")
    industry: str | None = None
    region: str | None = None
    as_of: date = Field(description="Date of the snapshot scored.")
    p_renewal_likelihood: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Calibrated probability that the account renews at its next renewal "
        "decision (is still a customer after it); none when no renewal falls within "
        f"{RENEWAL_WINDOW_DAYS} days.",
    )
    health_score: float | None = Field(description="Rule-based health score, 0-100.")
    health_band: str | None = Field(description="Band of the health score (green, yellow, red).")
    health_coverage: float | None = Field(description="Share of the score's weight that had data.")
    health_change: float | None = Field(
        description="Change against the score a calendar month before (whatever the snapshot "
        "frequency)."
    )
    health_components: dict[str, float | None] = Field(
        description="Sub-score of each health component, 0-100."
    )
    disagreement: str | None = Field(
        description="Where the health score and the model disagree, in one sentence."
    )
    coherence_note: str | None = Field(
        None,
        description="Why renewal likelihood and the headline churn risk are more than the "
        "configured points apart for a renewal inside the churn horizon; none when they agree.",
    )
    arr: float | None = Field(description="Annual recurring revenue.")
    churn_risk_top_decile: bool
    drivers: dict[str, list[Driver]] = Field(description="Top drivers per head.")
    baseline: dict[str, float] = Field(
        description="Per head, the probability of the average account; baseline + drivers' "
        "effects + remainder = the probability."
    )
    remainder: dict[str, float] = Field(description="Per head, the effect of all other features.")
    timing: dict[str, Part] = Field(
        description="Per head, the contract calendar's part (days to renewal, renewal stage, "
        "billing term, tenure): when, not why."
    )
    context: dict[str, Part] = Field(description="Per head, the account profile's part.")
    reasons: dict[str, list[Reason]] = Field(
        description="Per head, the families of the account's own signals, most risk-raising "
        "first; baseline + timing + context + the families' effects = the probability."
    )
    value_tier: str
    growth_tier: str
    value_growth_segment: str = Field(examples=["Champions"])
    segment_strategy: str = Field(examples=["protect"])
    customer_type: str = Field(examples=["strategic"])
    growth_reason: str | None = Field(
        None,
        description="The figure that set the growth tier (none for medium growth).",
        examples=["ARR -23% over the last year"],
    )
    segment: str | None
    plan_tier: str | None
    lifecycle_stage: str | None
    days_to_renewal: float | None
    renewal_date: date | None = Field(None, description="End of the current contract term.")
    renewal_stage: str | None = Field(examples=["t_minus_90"])
    renewal_risk: str | None
    alerts: list[str]
    triggers: list[str]
    read_tickets_30d: float | None = Field(
        None,
        description="Tickets opened in the last 30 days with readable English text; none "
        "when the data has no ticket text.",
    )
    negative_tickets_30d: float | None = Field(
        None, description="Of those, the tickets whose text reads as frustrated."
    )
    frustrated_topics: list[str] | None = Field(
        None,
        description="Topics (billing, bugs, ...) of this month's frustrated tickets.",
        examples=[["billing", "bugs"]],
    )
    text_evidence: str | None = Field(
        None,
        description="What this month's tickets say, with the counts; none without a readable "
        "ticket this month (never '0 of 0').",
        examples=["3 of 5 tickets this month read as frustrated: billing, bugs"],
    )
    play: str = Field(examples=["usage_recovery"])
    play_title: str
    play_reason: str
    missing_inputs: list[str] = Field(
        description="Inputs the account has no data in; for sent feature values, the model's "
        "features that were not sent."
    )
    model_name: str | None = Field(
        description="Registered model name (none for a model not from the registry).",
        examples=["renewal-radar"],
    )
    model_version: str | None = Field(
        description="Registry version of the model (none for a model not from the registry).",
        examples=["3"],
    )
    training_run_id: str | None = Field(description="MLflow run that trained the model.")
    what_if: dict[str, float | str | None] | None = Field(
        None,
        description="The feature values that were changed for this record (a what-if), by "
        "feature name; none when the account was scored as it is.",
        examples=[{"seat_utilisation": 0.2}],
    )


AccountScore = _with_fields(
    _AccountScore,
    {"as_of": _head_fields(), "health_change": _forecast_fields(), "arr": _arr_fields()},
)


class _PortfolioBlock(BaseModel):
    """The summary of a group of accounts (what ``radar score`` prints)."""

    accounts: int
    arr: float | None = Field(description="Total ARR; none when no account has ARR (never $0).")
    health_distribution: dict[str, int] = Field(
        description="Accounts per health band (`no score` without one).",
        examples=[{"green": 120, "yellow": 40, "red": 12}],
    )
    expected_grr_next_quarter: float | None = Field(
        description=f"1 - expected churned ARR ({HEADLINE_HORIZON} days) / ARR; none without ARR."
    )
    expected_nrr_next_quarter: float | None = Field(
        description=f"Expected GRR + expected expansion ARR ({HEADLINE_HORIZON} days) / ARR; "
        "contractions are not modelled."
    )


PortfolioBlock = _with_fields(_PortfolioBlock, {"health_distribution": _summary_fields()})


class Portfolio(BaseModel):
    """The portfolio summary at one date: all accounts, by segment, plays, disagreements."""

    as_of: date
    segment: str | None = Field(description="The segment the summary was restricted to.")
    model_name: str | None
    model_version: str | None
    training_run_id: str | None
    all: PortfolioBlock
    segments: dict[str, PortfolioBlock] = Field(description="The same, per segment.")
    plays: dict[str, int] = Field(description="Accounts per recommended play.")
    disagreements: int = Field(description="Accounts where health score and model disagree.")


ACCOUNT_FIELDS = tuple(AccountScore.model_fields)
# Health columns of the record that are not components of the score.
HEALTH_FIELDS = ("health_score", "health_band", "health_coverage", "health_change")
PER_HEAD = ("drivers", "baseline", "remainder", "timing", "context", "reasons")


def _plain(values: np.ndarray | list) -> list:
    """A column as plain Python values: NaN and NaT as None, dates as dates."""
    if not isinstance(values, np.ndarray):
        return values
    if values.dtype.kind == "M":
        return [None if v is None else v for v in values.astype("datetime64[D]").tolist()]
    if values.dtype.kind == "f" and np.isnan(values).any():
        out = values.astype(object)
        out[np.isnan(values)] = None
        return out.tolist()
    return values.tolist()


def api_records(columns: dict[str, np.ndarray | list], heads: list[str]) -> list[dict[str, Any]]:
    """Columns of :func:`scoring.records.score_rows` as records: exactly AccountScore's fields.

    Plain values, built column by column: the service answers without validating its own
    output (a test holds every record to the schema).
    """
    n = len(columns["account_id"])

    def rows_of(parts: dict[str, list]) -> list[dict]:
        rows = [dict(zip(parts, v, strict=True)) for v in zip(*parts.values(), strict=True)]
        return rows or [{} for _ in range(n)]

    components = {
        c.removeprefix("health_"): _plain(columns[c])
        for c in columns
        if c.startswith("health_") and c not in HEALTH_FIELDS
    }
    fields: dict[str, list] = {}
    for k in ACCOUNT_FIELDS:
        if k == "health_components":
            fields[k] = rows_of(components)
        elif k in PER_HEAD:
            fields[k] = rows_of({h: columns[f"{k}_{h}"] for h in heads})
        else:
            fields[k] = _plain(columns[k]) if k in columns else [None] * n
    return [dict(zip(fields, v, strict=True)) for v in zip(*fields.values(), strict=True)]
