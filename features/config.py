"""Typed configuration of the feature pipeline and of the rule-based health score."""

from __future__ import annotations

import functools
import operator
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.catalogue import FEATURE_BY_NAME
from features.text import TextConfig

# Seed 001 health bands: green from 70, red below 40 (whatever a scheme calls its bands).
HEALTHY_SCORE = 70.0
POOR_SCORE = 40.0

OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def yaml_settings(path: str | Path | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The settings of the YAML file ``path`` (none: {}), updated by the non-None ``overrides``.

    Every configuration's ``from_yaml`` reads its file through here, so a file that is not a
    mapping of settings gets the same message everywhere.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
    return data | {k: v for k, v in overrides.items() if v is not None}


class Condition(_Model):
    """``feature op value``, e.g. ``seat_utilisation > 0.7``."""

    feature: str
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    value: float

    @field_validator("feature")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in FEATURE_BY_NAME:
            raise ValueError(f"unknown feature {name!r}")
        return name


class Metric(_Model):
    """A health metric scored red, yellow or green.

    Red when all ``red`` conditions hold, else green when all ``green`` conditions hold, else
    yellow.
    """

    name: str
    description: str = ""
    green: tuple[Condition, ...]
    red: tuple[Condition, ...]


class Component(_Model):
    """A weighted group of metrics; its score is the mean of its metrics' scores."""

    weight: float
    metrics: tuple[Metric, ...]


class Band(_Model):
    """A named score band starting at ``min`` (inclusive)."""

    name: str
    min: float


class HealthScheme(_Model):
    """A rule-based health score: weighted components, metric rules and bands."""

    name: str
    components: dict[str, Component]
    bands: tuple[Band, ...]
    metric_scores: tuple[float, float, float] = (0.0, 50.0, 100.0)  # red, yellow, green

    @model_validator(mode="after")
    def _check(self) -> HealthScheme:
        mins = [b.min for b in self.bands]
        if mins != sorted(mins) or not mins or mins[0] != 0:
            raise ValueError("bands must start at 0 and be in increasing order of min")
        if sum(c.weight for c in self.components.values()) <= 0:
            raise ValueError("component weights must add up to more than 0")
        return self

    @classmethod
    def load(cls, name_or_path: str | Path) -> HealthScheme:
        """Load a built-in scheme (``seed001``, ``seed002``) or a YAML file."""
        path = Path(name_or_path)
        if path.suffix in (".yaml", ".yml"):
            text = path.read_text()
        else:
            text = (
                resources.files("features.health_schemes")
                .joinpath(f"{name_or_path}.yaml")
                .read_text()
            )
        return _parsed_scheme(text)


class AlertThresholds(_Model):
    """Early-warning thresholds (seed 002 ``RetentionAlertSystem`` and seed 001 cadence)."""

    usage_decline: float = 0.30  # usage down 30% against the previous 30 days
    usage_collapse: float = 0.50  # high-risk signal: down more than 50% in 30 days
    engagement_drop: float = 0.40
    support_spike: float = 2.0
    satisfaction_drop_points: float = 20.0  # NPS points, last 180 days against the 180 before
    health_change_points: float = 10.0  # seed 001: alert on a change of more than 10 points
    # seed 001's "negative sentiment": at least this many tickets with readable text in 30
    # days (fewer say little), and at least this share of them read as frustrated
    negative_sentiment_min_tickets: int = 3
    negative_sentiment_share: float = 0.5


@functools.lru_cache(maxsize=16)
def _parsed_scheme(text: str) -> HealthScheme:
    """A scheme's YAML parsed and validated, once per text (frozen, so safe to share).

    Parsing took ~100 ms, paid by every what-if answer of the service (the rules are
    recomputed per call); keyed by the text, a file edited since is read afresh.
    """
    return HealthScheme.model_validate(yaml.safe_load(text))


class FeatureConfig(_Model):
    """Settings of ``radar features``.

    Attributes:
        freq: Snapshot frequency: month ends or Sundays.
        start: First as-of date (default: the first period end at least 90 days after the
            usage log starts, so 90-day windows are full).
        end: Last as-of date (default: the data end).
        data_end: Last day the data covers; labels whose window reaches past it are null
            (default: the latest activity date in usage, engagement or tickets).
        tier_features: Number of product features in each plan tier, for feature adoption.
        plan_tiers: Plan names of the billing system mapped to tiers (``Basic: starter``);
            names that are tiers need no entry.
        health: Built-in health scheme name or path to a YAML scheme.
        engine: Where the features are computed: ``duckdb`` (in this process) or ``spark``.
        spark_master: With ``engine: spark``, the Spark master URL (``local[2]``,
            ``spark://host:7077``, ``yarn``, ...).
        spark_conf: With ``engine: spark``, Spark settings (``spark.executor.memory``, ...)
            applied when the session starts.
        activity_churn_days: For accounts without contract rows (no ``subscriptions`` row):
            churn is this many days without any activity, expansion a rise in activity or
            spend (:mod:`features.activity`). None: only contracts give labels.
        product_feature_columns: How many product features (the most used in the data, by
            events up to the last as-of date; ties by name) get their own usage columns
            (``usage_<feature>_per_seat_30d``, ``..._per_seat_90d``, ``..._trend_30d``);
            0: none.
        product_features: The product features given columns, most used first. None: chosen
            from the data when the snapshot table is built; the store's manifest and the model
            bundle record the choice, so scoring builds the same columns.
        spend_features: Spend over 30/90/365 days, its trend, days since the first and latest
            invoice and invoices per month. None: on with ``activity_churn_days``; off: the
            columns are missing (the build records which).
        text_features: Text features (share of tickets read as frustrated, topics,
            competitor mentions). None: on when the data has ticket or survey text.
        text: How text is read: sentiment cut-offs, the topic taxonomy's keywords, competitor
            names, the negative-sentiment alert's thresholds.
        text_cache: Keep each text's reading in the data directory (``.radar/``) so later
            builds read only new texts (features.text_cache); False: read every text.
        activity_expansion_rise: With ``activity_churn_days``: the rise over the previous
            window that counts as expansion (0.5: half as much again; spend where the account
            is invoiced, else active user-days).

    """

    freq: Literal["monthly", "weekly"] = "monthly"
    start: date | None = None
    end: date | None = None
    data_end: date | None = None
    tier_features: dict[str, int] = {"starter": 4, "professional": 7, "enterprise": 10}
    plan_tiers: dict[str, Literal["starter", "professional", "enterprise"]] = {}
    history_start: date | None = None
    health: str = "seed001"
    alerts: AlertThresholds = AlertThresholds()
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[2]"
    spark_conf: dict[str, str] = {}
    activity_churn_days: int | None = Field(default=None, ge=1)
    activity_expansion_rise: float = Field(default=0.5, gt=0)
    product_feature_columns: int = Field(default=10, ge=0)
    product_features: tuple[str, ...] | None = None
    # Spend and purchase frequency from invoices (features.engine.SPEND): a purchase log's
    # first features. None: on when labels come from activity (a log without contracts); with
    # contracts, ARR and the contract say what spend says, and in the built-in world spend "so
    # far" moved served scores as the customer base aged (the monitor called it drift).
    spend_features: bool | None = None
    # Sentiment, topics and competitor mentions from ticket and survey text (features.text).
    # None: on when any ticket or NPS comment has text; off: the columns are missing.
    text_features: bool | None = None
    text: TextConfig = TextConfig()
    # Keep each text's reading (sentiment, topics) in the data directory's .radar folder so
    # a later build or scoring reads only texts it has not read (features.text_cache); off:
    # every build reads every text (a read-only or shared data folder, or to time reading).
    text_cache: bool = True

    @classmethod
    def from_yaml(cls, path: str | Path | None, **overrides: object) -> FeatureConfig:
        """Load from YAML (defaults when ``path`` is None), then apply non-None overrides."""
        return cls.model_validate(yaml_settings(path, overrides))

    def health_scheme(self) -> HealthScheme:
        """The configured health scheme."""
        return HealthScheme.load(self.health)
