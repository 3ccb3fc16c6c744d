"""Request and response schemas of the scoring service, built from the feature catalogue.

They carry descriptions and examples into the OpenAPI document (``/docs.json``).
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Annotated, Any, Literal

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
from scoring.schema import (
    ACCOUNT_EXAMPLE,
    ACCOUNT_FIELDS,
    HEALTH_FIELDS,
    PER_HEAD,
    AccountScore,
)
from serving.strict_inputs import iso_date, not_bool

# Limits of a call, in one place (the service, its request checks and the OpenAPI document).
MAX_IDS = 100  # per call on the low-latency endpoints; the bulk endpoint takes more
MAX_BULK = 10_000
MAX_ID_LENGTH = 200
NDJSON = "application/x-ndjson"  # the bulk endpoint's answer, one item per line, on request


class AccountError(BaseModel):
    """Why one requested account could not be scored."""

    account_id: str
    error: str = Field(examples=["unknown account"])


class ScoreResponse(BaseModel):
    """Scores of the accounts that could be scored, and a reason for each that could not."""

    results: list[AccountScore]
    errors: list[AccountError] = Field(default_factory=list)


# The parts of a record a bulk call can ask for (``include``), each a group of AccountScore's
# fields; the fields of no part (who, when, which model, what-if) are always there.
PARTS: dict[str, tuple[str, ...]] = {
    "probabilities": (
        *(f for f in ACCOUNT_FIELDS if f.startswith("p_")),
        "churn_risk_top_decile",
    ),
    "health": (
        *HEALTH_FIELDS,
        "health_components",
        *(f for f in ACCOUNT_FIELDS if f.startswith("forecast_health_")),  # health ahead
        "disagreement",
    ),
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
    "signals": (
        "alerts",
        "triggers",
        "missing_inputs",
        # what this month's tickets say (scoring.alert_evidence)
        "read_tickets_30d",
        "negative_tickets_30d",
        "frustrated_topics",
        "text_evidence",
    ),
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
        None,
        description="Date of the values, YYYY-MM-DD (default: the served snapshot date, "
        "`snapshot_as_of` of GET /v1/model).",
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


def to_json(value: Any) -> bytes:
    """JSON of plain values (dates as ISO strings)."""
    return pydantic_core.to_json(value, inf_nan_mode="null")
