"""Request and response schemas of the scoring service, built from the feature catalogue.

They carry descriptions and examples into the OpenAPI document (``/docs.json``).
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Annotated, Any, Literal

import numpy as np
import pydantic_core
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails

from features.catalogue import (
    FEATURE_BY_NAME,
    FEATURES,
    PRODUCT_FEATURE_PATTERNS,
    PRODUCT_FEATURE_PREFIX,
    plausible_range,
)
from serving.strict_inputs import iso_date, not_bool

ACCOUNT_EXAMPLE = "A000042"
# Limits of a call, in one place (the service, its request checks and the OpenAPI document).
MAX_IDS = 100  # per call on the low-latency endpoints; the bulk endpoint takes more
MAX_BULK = 10_000
MAX_ID_LENGTH = 200
NDJSON = "application/x-ndjson"  # the bulk endpoint's answer, one item per line, on request


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


def _p(what: str) -> Annotated:
    return Annotated[float, Field(ge=0, le=1, description=f"Calibrated probability {what}.")]


class AccountScore(BaseModel):
    """The full scoring record of one account (the same fields as ``radar score`` writes)."""

    model_config = ConfigDict(extra="ignore")

    account_id: str = Field(examples=[ACCOUNT_EXAMPLE])
    name: str | None = Field(None, description="Account name (from the accounts table).")
    csm_owner: str | None = Field(None, description="The account's CSM (none: tech touch).")
    industry: str | None = None
    region: str | None = None
    as_of: date = Field(description="Date of the snapshot scored.")
    p_churn_30d: _p("of churning within 30 days (never above the 90-day one)")
    p_churn_90d: _p("of churning within 90 days")
    p_expansion_30d: _p("of expanding within 30 days (never above the 90-day one)")
    p_expansion_90d: _p("of expanding within 90 days")
    p_renewal_likelihood: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Calibrated probability that the account renews at its next renewal "
        "decision (is still a customer after it); none when no renewal falls within 180 days.",
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
    arr: float | None = Field(description="Annual recurring revenue.")
    arr_at_risk_30d: float | None
    arr_at_risk_90d: float | None = Field(description="90-day churn probability x ARR.")
    expected_expansion_arr_30d: float | None
    expected_expansion_arr_90d: float | None
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
    segment: str | None
    plan_tier: str | None
    lifecycle_stage: str | None
    days_to_renewal: float | None
    renewal_date: date | None = Field(None, description="End of the current contract term.")
    renewal_stage: str | None = Field(examples=["t_minus_90"])
    renewal_risk: str | None
    alerts: list[str]
    triggers: list[str]
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


class AccountError(BaseModel):
    """Why one requested account could not be scored."""

    account_id: str
    error: str = Field(examples=["unknown account"])


class ScoreResponse(BaseModel):
    """Scores of the accounts that could be scored, and a reason for each that could not."""

    results: list[AccountScore]
    errors: list[AccountError] = Field(default_factory=list)


class PortfolioBlock(BaseModel):
    """The summary of a group of accounts (what ``radar score`` prints)."""

    accounts: int
    arr: float
    health_distribution: dict[str, int] = Field(
        description="Accounts per health band (`no score` without one).",
        examples=[{"green": 120, "yellow": 40, "red": 12}],
    )
    expected_churned_arr_30d: float
    expected_churned_arr_90d: float = Field(description="Sum of 90-day churn probability x ARR.")
    expected_expansion_arr_30d: float
    expected_expansion_arr_90d: float
    expected_grr_next_quarter: float | None = Field(
        description="1 - expected churned ARR (90 days) / ARR; none without ARR."
    )
    expected_nrr_next_quarter: float | None = Field(
        description="Expected GRR + expected expansion ARR (90 days) / ARR; contractions are "
        "not modelled."
    )


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
# The parts of a record a bulk call can ask for (``include``), each a group of AccountScore's
# fields; the fields of no part (who, when, which model, what-if) are always there.
PARTS: dict[str, tuple[str, ...]] = {
    "probabilities": (
        *(f for f in ACCOUNT_FIELDS if f.startswith("p_")),
        "churn_risk_top_decile",
    ),
    "health": (*HEALTH_FIELDS, "health_components", "disagreement"),
    "revenue": tuple(f for f in ACCOUNT_FIELDS if f == "arr" or "_arr_" in f),
    "drivers": PER_HEAD[:3],
    "reasons": PER_HEAD[3:],
    "segment": (
        "value_tier",
        "growth_tier",
        "value_growth_segment",
        "segment_strategy",
        "customer_type",
        "segment",
        "plan_tier",
        "lifecycle_stage",
    ),
    "renewal": ("days_to_renewal", "renewal_date", "renewal_stage", "renewal_risk"),
    "signals": ("alerts", "triggers", "missing_inputs"),
    "play": ("play", "play_title", "play_reason"),
}
ALWAYS = tuple(f for f in ACCOUNT_FIELDS if not any(f in part for part in PARTS.values()))
Part_ = Literal[tuple(PARTS)]  # type: ignore[valid-type]
Include = Annotated[
    list[Part_],  # type: ignore[valid-type]
    Field(
        min_length=1,
        description="The parts of each record to answer (default: all): "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in PARTS.items())
        + f". Always there: {', '.join(ALWAYS)}.",
        examples=[["probabilities", "health"]],
    ),
]


def _optional(name: str) -> tuple[Any, Any]:
    info = AccountScore.model_fields[name]
    if name in ALWAYS:
        return info.annotation, info
    what = next(k for k, v in PARTS.items() if name in v)
    described = f"{info.description or ''} Absent unless `include` has {what}.".strip()
    return info.annotation | None, FieldInfo.merge_field_infos(
        info, default=None, description=described
    )


PartialScore = create_model(
    "PartialScore",
    __config__=ConfigDict(extra="ignore"),
    __doc__="A record of a bulk call: AccountScore's fields, the parts not asked for left out.",
    **{name: _optional(name) for name in ACCOUNT_FIELDS},
)


class BulkItem(BaseModel):
    """One account of a bulk call: its record, or why there is none."""

    account_id: str
    result: PartialScore | None = None  # type: ignore[valid-type]
    error: str | None = None


def records_with(records: list[dict[str, Any]], include: list[str] | None) -> list[dict[str, Any]]:
    """``records`` with only the fields of the parts in ``include`` (None: all)."""
    if include is None or set(include) == set(PARTS):
        return records
    keep = set(ALWAYS).union(*(PARTS[p] for p in include))
    fields = [f for f in ACCOUNT_FIELDS if f in keep]
    return [{f: r[f] for f in fields} for r in records]


def _feature_field(f):
    if f.categorical:
        kind = Literal[f.levels]  # type: ignore[valid-type]
        return kind | None, Field(
            None, description=f"{f.description}: one of {', '.join(f.levels)}"
        )
    lo, hi = plausible_range(f)  # a what-if outside them is refused by name
    return (
        Annotated[float | None, BeforeValidator(not_bool)],  # true is no number
        Field(None, description=f"{f.description} ({f.unit})", allow_inf_nan=False, ge=lo, le=hi),
    )


@lru_cache(maxsize=64)
def _pattern_adapter(unit: str, lo: float | None, hi: float | None) -> TypeAdapter:
    return TypeAdapter(
        Annotated[  # type: ignore[misc]
            float, BeforeValidator(not_bool), Field(allow_inf_nan=False, ge=lo, le=hi)
        ]
        | None
    )


def _details(exc: ValidationError, prefix: tuple = ()) -> list[InitErrorDetails]:
    """The errors of ``exc`` as details to raise again, their locations under ``prefix``."""
    return [
        InitErrorDetails(
            type=e["type"],  # type: ignore[typeddict-item]
            loc=(*prefix, *e["loc"]),
            input=e["input"],
            ctx=e.get("ctx", {}),
        )
        for e in exc.errors()
    ]


class _PatternAware(BaseModel):
    """Catalogue fields, plus the columns of the catalogue's patterns (per product feature).

    Which product features a model has follows its training data, so their columns
    (``usage_<feature>_per_seat_30d``, ...) cannot be fields of a schema built at import:
    a name that fits a pattern is checked against the pattern's unit and range here, any
    other unknown name is refused as an extra input. Whether the served model has that
    column is the service's check (:meth:`serving.service.RenewalRadar.score_snapshots`).
    """

    # BentoML's OpenAPI objects have no patternProperties: the extra names are numbers or
    # null, and the pattern is in the description (PRODUCT_COLUMN_PATTERN).
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"additionalProperties": {"type": "number", "nullable": True}},
    )

    @model_validator(mode="wrap")
    @classmethod
    def _patterns(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        errors: list[InitErrorDetails] = []
        fields, extra = {}, {}
        for k, v in data.items():
            f = None if k in cls.model_fields else FEATURE_BY_NAME.get(k)
            if k in cls.model_fields:
                fields[k] = v
            elif f is None or f.name in _STATIC:
                errors.append(InitErrorDetails(type="extra_forbidden", loc=(k,), input=v))
            else:
                try:
                    extra[k] = _pattern_adapter(f.unit, *plausible_range(f)).validate_python(v)
                except ValidationError as exc:
                    errors.extend(_details(exc, (k,)))
        try:
            model = handler(fields)
        except ValidationError as exc:  # reported with the extras' errors: every field at once
            errors.extend(_details(exc))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        for k, v in extra.items():
            model.__pydantic_extra__[k] = v
        return model


_STATIC = frozenset(f.name for f in FEATURES)
PRODUCT_COLUMN_PATTERN = (
    "^"
    + re.escape(PRODUCT_FEATURE_PREFIX)
    + "[a-z0-9]+(_[a-z0-9]+)*("
    + "|".join(re.escape(p.suffix) for p in PRODUCT_FEATURE_PATTERNS)
    + ")$"
)

FeatureValues = create_model(
    "FeatureValues",
    __base__=_PatternAware,
    __doc__="Feature values of one account; any left out is missing, as in training. "
    "Besides the catalogue's fields, the model's per-product-feature usage columns "
    "(usage_<feature>_per_seat_30d, usage_<feature>_per_seat_90d, usage_<feature>_trend_30d, "
    f"names matching {PRODUCT_COLUMN_PATTERN}; GET /v1/model lists them); any other name "
    "is refused.",
    **{f.name: _feature_field(f) for f in FEATURES},
)


class Snapshot(BaseModel):
    """One account's features, sent by the caller (a what-if, or an account of its own)."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, examples=[ACCOUNT_EXAMPLE])
    as_of: Annotated[date | None, BeforeValidator(iso_date)] = Field(
        None, description="Date of the values, YYYY-MM-DD (default: today)."
    )
    features: FeatureValues = Field(  # type: ignore[valid-type]
        examples=[{"seat_utilisation": 0.31, "open_critical_tickets": 2, "plan_tier": "enterprise"}]
    )


class CatalogueEntry(BaseModel):
    """A feature of the model, as the catalogue describes it."""

    name: str
    family: str
    unit: str
    window_days: int | None
    description: str
    levels: list[str]


class ModelInfo(BaseModel):
    """What is being served."""

    model_uri: str
    model_name: str | None
    model_version: str | None
    training_run_id: str | None
    training_window: dict[str, str | int] = Field(
        description="Train, validation and test windows of as-of dates, and the gap in days."
    )
    test_metrics: dict[str, float] = Field(
        description="Test-window metrics of the served heads, `head/metric`."
    )
    snapshot_as_of: date = Field(description="As-of date of the snapshots served by id.")
    snapshot_dates: list[date] = Field(
        description="Every as-of date the service holds snapshots of (``as_of`` by id)."
    )
    accounts: int = Field(description="Accounts that can be scored by id.")
    features: list[CatalogueEntry]


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
    """Columns of :func:`serving.scoring.score_rows` as records: exactly AccountScore's fields.

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


def to_json(value: Any) -> bytes:
    """JSON of plain values (dates as ISO strings)."""
    return pydantic_core.to_json(value, inf_nan_mode="null")
