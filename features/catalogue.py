"""The feature catalogue: every model feature, registered once.

Features, training, explanations and serving import this module for feature names, their
family, unit, window and a plain-language description a customer-success manager can read.
Windows are counted in days and end at the as-of date T: "last 30 days" is (T - 30, T].
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from features.schema import (
    BILLING_TERMS,
    ENGAGEMENT_KINDS,
    MAX_ARR,
    MAX_DAILY_EVENTS,
    MAX_DAILY_USERS,
    MAX_SEATS,
    MAX_USERS_PER_SEAT,
    PLAN_TIERS,
    SEGMENTS,
    TEXT_TOPICS,
    UNKNOWN_SEGMENT,
)

FEATURE_VERSION = "1"

KEY_COLUMNS = ("account_id", "as_of")
HORIZONS = (30, 90)  # days ahead a churn or expansion head predicts: every head's horizon
# The horizon the portfolio, the pages and the prediction's headline speak of.
HEADLINE_HORIZON = max(HORIZONS)
WINDOWS = (30, 90)  # days a windowed feature looks back (usage, tickets)
# Renewal likelihood: whether the account renews at its next renewal decision, for snapshots
# whose next decision falls within this many days (the seeds' renewal timeline starts at T-180).
RENEWAL_LABEL = "renewal_likelihood"
RENEWAL_WINDOW_DAYS = 180
LABELS = (
    *(f"{kind}_{h}d" for kind in ("churn", "expansion") for h in HORIZONS),
    RENEWAL_LABEL,
)


# Forecasts (issue 31), a registry beside the heads (docs/training.md, "Forecasts"): the
# rule-based health score HORIZONS days ahead (a regression with an interval), and the
# chance that the account's next survey answer or ticket rating is poor (classification).
# They are kept out of LABELS so that every loop over the classification heads (promotion,
# backtest, drivers, the plays) stays as it is.
HEALTH_FORECASTS = tuple(f"forecast_health_{h}d" for h in HORIZONS)
SATISFACTION_HEADS = ("nps_detractor", "low_csat")
SATISFACTION_WINDOW_DAYS = 90  # the next answer or rating counted: within (T, T + 90]
DETRACTOR_MAX_SCORE = 6  # NPS 0-6: a detractor
LOW_CSAT_MAX = 2  # CSAT 1-2 of 5: a poor rating
# The tables each satisfaction head needs: without one, the head is skipped with one note.
SATISFACTION_SOURCE = {"nps_detractor": "nps_responses", "low_csat": "support_tickets"}
# The alert of a healthy account whose health is forecast to fall below healthy before its
# renewal (a CTA, as every alert: a disagreement between today's score and where it heads).
FORECAST_DROP_ALERT = "health_forecast_drop"
# Seed 001's "negative sentiment": most of this month's readable tickets read as frustrated.
NEGATIVE_SENTIMENT_ALERT = "negative_sentiment"


# The heads whose reasons the account page and the brief explain (those a bundle has), in order.
HEADLINE_HEADS = (f"churn_{HEADLINE_HORIZON}d", f"expansion_{HEADLINE_HORIZON}d", RENEWAL_LABEL)
CHURN_HEAD, EXPANSION_HEAD = HEADLINE_HEADS[:2]
ARR_AT_RISK = f"arr_at_risk_{HEADLINE_HORIZON}d"  # the record's headline ARR at stake
EXPANSION_ARR = f"expected_expansion_arr_{HEADLINE_HORIZON}d"  # the headline ARR to gain


def horizon_days(label: str, default: int = HEADLINE_HORIZON) -> int:
    """Label horizon in days from its name (``churn_30d`` -> 30, renewal likelihood -> 180)."""
    if label == RENEWAL_LABEL:
        return RENEWAL_WINDOW_DAYS
    for h in HORIZONS:
        if label.endswith(f"_{h}d"):
            return h
    return default


LIFECYCLE_STAGES = ("onboarding", "adoption", "value_realization", "renewal")
RENEWAL_STAGES = (
    "not_in_cycle",
    "t_minus_180",
    "t_minus_120",
    "t_minus_90",
    "t_minus_60",
    "t_minus_30",
    "t_plus_30",
    "monthly_rolling",
)


@dataclass(frozen=True)
class Feature:
    """One model feature.

    Attributes:
        name: Column name in the snapshot table.
        family: usage, engagement, relationship, support or commercial.
        unit: Unit of the value, for explanations ("share", "days", "count", ...).
        window: Window in days the value looks back over, or None for a state at T.
        description: What the value means, in words a CSM understands.
        levels: Allowed values of a categorical feature (empty for numeric ones).
        source: Raw tables the feature is computed from, the event log first. It is missing
            (NaN) when an optional one is absent, or when its window starts before that
            event log does.
        churn_effect: Known direction of the feature's effect on churn risk, from the
            playbooks: +1 when a higher value can only raise risk, -1 when it can only lower
            it; 0 for timing and context. Training turns it into a monotone constraint, so
            that, all else equal, more open critical tickets never lower the churn risk.
        role: timing, context, signal or unmodelled (see ``ROLES``).

    """

    name: str
    family: str
    unit: str
    window: int | None
    description: str
    levels: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    churn_effect: int = 0
    role: str = "signal"

    @property
    def categorical(self) -> bool:
        """Whether the feature is categorical."""
        return bool(self.levels)

    @property
    def modelled(self) -> bool:
        """Whether the model uses it."""
        return self.role != UNMODELLED

    def effect_on(self, label: str) -> int:
        """Known direction on head ``label``: churn's, or the opposite for other heads."""
        return self.churn_effect if label.startswith("churn") else -self.churn_effect


FAMILIES = ("usage", "engagement", "relationship", "support", "commercial")
_FAMILY_SOURCE = {
    "usage": ("usage",),
    "engagement": ("engagement",),
    "relationship": ("contacts",),
    "support": ("support_tickets",),
    "commercial": ("subscriptions",),
}


# What each feature is to a CSM reading an explanation (``Feature.role``):
TIMING = "timing"  # the contract calendar and the account's age: when, not why
CONTEXT = "context"  # who the account is (size, tier, segment): not something to act on
SIGNAL = "signal"  # the account's own behaviour: a reason, with a known direction
UNMODELLED = "unmodelled"  # computed (health score, docs) but left out of the model
ROLES = (TIMING, CONTEXT, SIGNAL, UNMODELLED)

_TIMING = (
    "days_to_renewal",
    "renewal_stage",
    "billing_term",
    "billing_term_months",
    "tenure_days",
    "lifecycle_stage",
)
_CONTEXT = ("arr", "seats", "plan_tier", "segment", "tickets_30d", "tickets_90d")
# Raw counts whose meaning flips with the account's size (3 events per user is a lot for a
# small team, little for a large one): the per-seat and trend forms carry the same signal.
_UNMODELLED = ("active_user_days_30d", "events_30d", "events_per_user_day_30d")
# The counts behind a share and the topics of frustrated tickets: evidence for the words
# ("3 of 5 tickets this month read as frustrated: billing, bugs"), the shares are modelled.
_UNMODELLED += ("negative_tickets_30d", "read_tickets_30d", "negative_topics_30d")

# What ticket and survey text can be about: TEXT_TOPICS (features.schema, the labels a team
# may give its tickets), and the tones a text is read as.
TEXT_TONES = ("frustrated", "neutral", "pleased")

# Direction of every signal on churn risk: +1 when a higher value can only raise it, -1 when
# it can only lower it (domain.md, early-warning signals; for the rest, the reading a CSM
# would give: more use, engagement, sponsorship and satisfaction never raise churn risk).
# Training turns them into monotone constraints, on the expansion heads with the opposite
# sign (expansion follows value), so no explanation reads "a healthier value raises risk".
_CHURN_EFFECT = {
    "seat_utilisation": -1,
    "active_days_30d": -1,
    "features_used_30d": -1,
    "feature_adoption": -1,
    "usage_trend_30d": -1,
    "usage_trend_90d": -1,
    "events_trend_30d": -1,
    "events_trend_90d": -1,
    "usage_decline_20": +1,
    "usage_decline_50": +1,
    "days_since_last_activity": +1,
    **{
        f"{kind}_{w}d": -1
        for kind in ("qbr", "training", "webinar", "community_post", "email_reply", "meeting")
        for w in (30, 90, 180)
    },
    "engagement_trend_90d": -1,
    "days_since_last_qbr": +1,
    "active_stakeholders": -1,
    "executive_sponsor_present": -1,
    "champion_present": -1,
    "executive_engagement": -1,
    "stakeholders_lost_90d": +1,
    "champion_lost_90d": +1,
    "sponsor_lost_90d": +1,
    "nps_latest": -1,
    "nps_180d": -1,
    "nps_trend_180d": -1,
    "nps_responses_per_contact_180d": -1,
    "ticket_spike_ratio": +1,
    "critical_tickets_90d": +1,
    "open_tickets": +1,
    "open_critical_tickets": +1,
    "escalations_90d": +1,
    "open_escalations": +1,
    "days_to_resolve_90d": +1,
    "csat_90d": -1,
    "payment_days_late_180d": +1,
    "overdue_invoices": +1,
    "expansions_365d": -1,
    "contractions_365d": +1,
    "arr_change_365d": -1,
    "milestones_achieved": -1,
    "milestones_overdue": +1,
    "milestones_on_time_rate": -1,
    "negative_ticket_share_30d": +1,
    "negative_ticket_share_90d": +1,
    "negative_ticket_trend_90d": +1,
    "positive_ticket_share_90d": -1,
    "competitor_mentions_90d": +1,
    "pricing_mentions_90d": +1,
    "negative_comment_share_180d": +1,
}


def _role(name: str) -> str:
    for role, names in ((TIMING, _TIMING), (CONTEXT, _CONTEXT), (UNMODELLED, _UNMODELLED)):
        if name in names:
            return role
    return SIGNAL


def _f(name, family, unit, window, description, levels=(), source=()):
    return Feature(
        name,
        family,
        unit,
        window,
        description,
        tuple(levels),
        tuple(source) or _FAMILY_SOURCE[family],
        _CHURN_EFFECT.get(name, 0),
        _role(name),
    )


_ENGAGEMENT_WORDS = {
    "qbr": "quarterly business reviews held",
    "training": "training sessions attended",
    "webinar": "webinars attended",
    "community_post": "community posts",
    "email_reply": "replies to CSM emails",
    "meeting": "meetings with the customer",
}

FEATURES: tuple[Feature, ...] = (
    # ---- usage
    _f(
        "seat_utilisation",
        "usage",
        "share",
        28,
        "share of purchased seats active each week, over the last 4 complete weeks",
        source=("weekly_active_users", "subscriptions"),
    ),
    _f(
        "active_user_days_30d",
        "usage",
        "user-days",
        30,
        "daily active users added up over the last 30 days (all features)",
    ),
    _f("events_30d", "usage", "events", 30, "product events recorded in the last 30 days"),
    _f(
        "active_days_30d", "usage", "days", 30, "days with any product activity in the last 30 days"
    ),
    _f(
        "features_used_30d",
        "usage",
        "features",
        30,
        "distinct product features used in the last 30 days",
    ),
    _f(
        "feature_adoption",
        "usage",
        "share",
        30,
        "share of the plan tier's features used in the last 30 days",
        source=("usage", "subscriptions"),
    ),
    _f(
        "events_per_user_day_30d",
        "usage",
        "events",
        30,
        "events per active user per day over the last 30 days (depth of use)",
    ),
    _f(
        "usage_trend_30d",
        "usage",
        "change",
        60,
        "change in active user-days, last 30 days against the 30 before",
    ),
    _f(
        "usage_trend_90d",
        "usage",
        "change",
        180,
        "change in active user-days, last 90 days against the 90 before",
    ),
    _f(
        "events_trend_30d",
        "usage",
        "change",
        60,
        "change in product events, last 30 days against the 30 before",
    ),
    _f(
        "events_trend_90d",
        "usage",
        "change",
        180,
        "change in product events, last 90 days against the 90 before",
    ),
    _f(
        "usage_decline_20",
        "usage",
        "flag",
        60,
        "active user-days fell more than 20% against the previous 30 days",
    ),
    _f(
        "usage_decline_50",
        "usage",
        "flag",
        60,
        "active user-days fell more than 50% against the previous 30 days",
    ),
    _f(
        "days_since_last_activity", "usage", "days", None, "days since anyone last used the product"
    ),
    # ---- engagement
    *(
        _f(
            f"{kind}_{w}d",
            "engagement",
            "count",
            w,
            f"{_ENGAGEMENT_WORDS[kind]} in the last {w} days",
        )
        for kind in ENGAGEMENT_KINDS
        for w in (30, 90, 180)
    ),
    _f(
        "engagement_trend_90d",
        "engagement",
        "change",
        180,
        "change in engagement touchpoints, last 90 days against the 90 before",
    ),
    _f(
        "days_since_last_qbr",
        "engagement",
        "days",
        None,
        "days since the last quarterly business review",
    ),
    # ---- relationship
    _f(
        "active_stakeholders",
        "relationship",
        "contacts",
        None,
        "stakeholders currently in their role at the customer",
    ),
    _f(
        "executive_sponsor_present",
        "relationship",
        "flag",
        None,
        "an executive sponsor is currently in place",
    ),
    _f("champion_present", "relationship", "flag", None, "a champion is currently in place"),
    _f(
        "executive_engagement",
        "relationship",
        "level",
        180,
        "executive sponsorship: 2 = sponsor in place and a QBR in the last 180 days, "
        "1 = sponsor in place only, 0 = no sponsor",
        source=("contacts", "engagement"),
    ),
    _f(
        "stakeholders_lost_90d",
        "relationship",
        "contacts",
        90,
        "stakeholders who left their role in the last 90 days",
    ),
    _f(
        "champion_lost_90d",
        "relationship",
        "contacts",
        90,
        "champions who left in the last 90 days",
    ),
    _f(
        "sponsor_lost_90d",
        "relationship",
        "contacts",
        90,
        "executive sponsors who left in the last 90 days",
    ),
    _f(
        "nps_latest",
        "relationship",
        "score 0-10",
        None,
        "most recent NPS answer (0-10)",
        source=("nps_responses",),
    ),
    _f(
        "nps_180d",
        "relationship",
        "NPS -100..100",
        180,
        "Net Promoter Score from answers in the last 180 days (promoters minus detractors)",
        source=("nps_responses",),
    ),
    _f(
        "nps_trend_180d",
        "relationship",
        "NPS points",
        360,
        "change in Net Promoter Score, last 180 days against the 180 before",
        source=("nps_responses",),
    ),
    _f(
        "nps_responses_per_contact_180d",
        "relationship",
        "responses",
        180,
        "NPS answers in the last 180 days per current stakeholder (survey responsiveness)",
        source=("nps_responses", "contacts"),
    ),
    # ---- support
    _f("tickets_30d", "support", "tickets", 30, "support tickets opened in the last 30 days"),
    _f("tickets_90d", "support", "tickets", 90, "support tickets opened in the last 90 days"),
    _f(
        "ticket_spike_ratio",
        "support",
        "ratio",
        180,
        "tickets in the last 30 days against the account's own monthly average over the 150 "
        "days before (2 = twice as many as usual)",
    ),
    _f(
        "critical_tickets_90d",
        "support",
        "tickets",
        90,
        "critical tickets opened in the last 90 days",
    ),
    _f("open_tickets", "support", "tickets", None, "support tickets still open"),
    _f("open_critical_tickets", "support", "tickets", None, "critical tickets still open"),
    _f("escalations_90d", "support", "tickets", 90, "tickets escalated in the last 90 days"),
    _f("open_escalations", "support", "tickets", None, "escalated tickets still open"),
    _f(
        "days_to_resolve_90d",
        "support",
        "days",
        90,
        "average days to resolve the tickets closed in the last 90 days",
    ),
    _f(
        "csat_90d",
        "support",
        "score 1-5",
        90,
        "average satisfaction rating of tickets closed in the last 90 days",
    ),
    # ---- commercial and lifecycle
    _f("arr", "commercial", "currency", None, "annual recurring revenue"),
    _f("seats", "commercial", "seats", None, "seats purchased"),
    _f("plan_tier", "commercial", "tier", None, "plan tier", PLAN_TIERS),
    _f(
        "segment",
        "commercial",
        "segment",
        None,
        "customer segment",
        (*SEGMENTS, UNKNOWN_SEGMENT),
        source=("accounts",),
    ),
    _f("billing_term", "commercial", "term", None, "billing term of the contract", BILLING_TERMS),
    _f(
        "billing_term_months",
        "commercial",
        "months",
        None,
        "length of the contract's billing term in months (any length: 1, 3, 6, 12, 24 ...)",
    ),
    _f(
        "tenure_days",
        "commercial",
        "days",
        None,
        "days since the customer signed",
        source=("accounts",),
    ),
    _f(
        "lifecycle_stage",
        "commercial",
        "stage",
        None,
        "lifecycle stage: onboarding (first 90 days), adoption (to 1 year), value realization, "
        "or renewal (contract ends within 90 days)",
        LIFECYCLE_STAGES,
    ),
    _f(
        "days_to_renewal",
        "commercial",
        "days",
        None,
        "days until the contract term ends (next monthly renewal for monthly plans)",
    ),
    _f(
        "renewal_stage",
        "commercial",
        "stage",
        None,
        "stage of the renewal timeline (T-180 planning ... T+30 post-renewal)",
        RENEWAL_STAGES,
    ),
    _f(
        "payment_days_late_180d",
        "commercial",
        "days",
        180,
        "average days late of the invoices settled in the last 180 days (paid early: on time)",
        source=("invoices",),
    ),
    _f(
        "overdue_invoices",
        "commercial",
        "invoices",
        None,
        "invoices past due and still unpaid",
        source=("invoices",),
    ),
    *(
        _f(
            f"spend_{w}d",
            "commercial",
            "currency",
            w,
            f"amount invoiced (spend) in the last {w} days",
            source=("invoices",),
        )
        for w in (30, 90, 365)
    ),
    _f(
        "spend_trend_90d",
        "commercial",
        "change",
        180,
        "change in spend, last 90 days against the 90 days before",
        source=("invoices",),
    ),
    _f(
        "days_since_first_invoice",
        "commercial",
        "days",
        None,
        "days since the account's first invoice (first purchase)",
        source=("invoices",),
    ),
    _f(
        "days_since_last_invoice",
        "commercial",
        "days",
        None,
        "days since the account's latest invoice (latest purchase)",
        source=("invoices",),
    ),
    _f(
        "invoices_per_month",
        "commercial",
        "ratio",
        None,
        "invoices (purchases) per month since the first one",
        source=("invoices",),
    ),
    _f("expansions_365d", "commercial", "count", 365, "expansions in the last 365 days"),
    _f("contractions_365d", "commercial", "count", 365, "contractions in the last 365 days"),
    _f("arr_change_365d", "commercial", "change", 365, "change in ARR over the last 365 days"),
    _f(
        "milestones_achieved",
        "commercial",
        "milestones",
        None,
        "value milestones achieved so far",
        source=("milestones",),
    ),
    _f(
        "milestones_overdue",
        "commercial",
        "milestones",
        None,
        "value milestones past their target date and not achieved",
        source=("milestones",),
    ),
    _f(
        "milestones_on_time_rate",
        "commercial",
        "share",
        None,
        "share of milestones due so far that were achieved on time",
        source=("milestones",),
    ),
    # ---- what tickets and survey comments say (features.text; missing without text)
    *(
        _f(
            f"negative_ticket_share_{w}d",
            "support",
            "share",
            w,
            f"share of the tickets opened in the last {w} days whose text reads as frustrated "
            "(of those with readable English text)",
        )
        for w in WINDOWS
    ),
    _f(
        "negative_ticket_trend_90d",
        "support",
        "share change",
        180,
        "change in the share of tickets read as frustrated, last 90 days against the 90 before",
    ),
    _f(
        "positive_ticket_share_90d",
        "support",
        "share",
        90,
        "share of the tickets opened in the last 90 days whose text reads as pleased",
    ),
    _f(
        "negative_tickets_30d",
        "support",
        "tickets",
        30,
        "tickets opened in the last 30 days whose text reads as frustrated",
    ),
    _f(
        "read_tickets_30d",
        "support",
        "tickets",
        30,
        "tickets opened in the last 30 days with readable English text",
    ),
    _f(
        "negative_topics_30d",
        "support",
        "topics",
        30,
        "topics of the tickets read as frustrated in the last 30 days (one bit per topic)",
    ),
    _f(
        "topics_mentioned_90d",
        "support",
        "topics",
        90,
        "distinct topics (billing, bugs, pricing, ...) of the tickets and comments of the last "
        "90 days",
        source=("support_tickets", "nps_responses"),
    ),
    _f(
        "competitor_mentions_90d",
        "support",
        "mentions",
        90,
        "tickets and survey comments of the last 90 days that mention a competitor",
        source=("support_tickets", "nps_responses"),
    ),
    _f(
        "pricing_mentions_90d",
        "support",
        "mentions",
        90,
        "tickets and survey comments of the last 90 days about price, cost or renewal terms",
        source=("support_tickets", "nps_responses"),
    ),
    _f(
        "negative_comment_share_180d",
        "relationship",
        "share",
        180,
        "share of the NPS comments of the last 180 days that read as frustrated",
        source=("nps_responses",),
    ),
)
TEXT_FEATURES: tuple[str, ...] = tuple(
    f.name for f in FEATURES if f.name.startswith(("negative_", "positive_", "read_tickets"))
) + ("topics_mentioned_90d", "competitor_mentions_90d", "pricing_mentions_90d")


# ---- per-product-feature usage (pattern entries)
# The product features with columns are chosen from the data when the snapshot table is
# built (the most used ones, ``FeatureConfig.product_feature_columns``), so these are
# patterns: ``usage_<slug><suffix>``, resolved to concrete features by name.
PRODUCT_FEATURE_PREFIX = "usage_"


@dataclass(frozen=True)
class Pattern:
    """A family of features, one per product feature: ``usage_<slug><suffix>``."""

    suffix: str
    unit: str
    window: int
    description: str  # ``{name}``: the product feature's name, in words
    source: tuple[str, ...]
    churn_effect: int  # as the overall usage features': more use never raises churn risk


PRODUCT_FEATURE_PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "_per_seat_30d",
        "events per seat",
        30,
        "use of {name} per seat, last 30 days (events per purchased seat; per account "
        "where no seats are sold)",
        ("usage", "subscriptions"),
        -1,
    ),
    Pattern(
        "_per_seat_90d",
        "events per seat",
        90,
        "use of {name} per seat, last 90 days (events per purchased seat; per account "
        "where no seats are sold)",
        ("usage", "subscriptions"),
        -1,
    ),
    Pattern(
        "_trend_30d",
        "change",
        60,
        "change in use of {name}, last 30 days against the 30 before (events)",
        ("usage",),
        -1,
    ),
)
_SLUG = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")


def product_feature_slugs(names: Sequence[str]) -> dict[str, str]:
    """Product feature name to the slug its columns carry, in the order given.

    Lower case, every run of other characters than letters and digits one ``_``; a slug
    taken already (``Reports`` and ``reports``) gets ``_2``, ``_3``, ...
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "feature"
        slug, k = base, 1
        while slug in taken:
            k += 1
            slug = f"{base}_{k}"
        taken.add(slug)
        out[name] = slug
    return out


def product_feature_columns(names: Sequence[str]) -> tuple[Feature, ...]:
    """The concrete features of the product features ``names`` (rank order, patterns inside)."""
    return tuple(
        _pattern_feature(f"{PRODUCT_FEATURE_PREFIX}{slug}{p.suffix}")  # type: ignore[misc]
        for slug in product_feature_slugs(names).values()
        for p in PRODUCT_FEATURE_PATTERNS
    )


def features_for(product_features: Sequence[str] | None) -> tuple[Feature, ...]:
    """Every feature of a snapshot table: the catalogue's, then the product features' columns."""
    return FEATURES + product_feature_columns(product_features or ())


@lru_cache(maxsize=4096)
def _pattern_feature(name: str) -> Feature | None:
    """The feature a pattern name stands for (None when ``name`` matches no pattern)."""
    if not name.startswith(PRODUCT_FEATURE_PREFIX):
        return None
    for p in PRODUCT_FEATURE_PATTERNS:
        slug = name.removeprefix(PRODUCT_FEATURE_PREFIX).removesuffix(p.suffix)
        if name.endswith(p.suffix) and _SLUG.match(slug):
            return Feature(
                name,
                "usage",
                p.unit,
                p.window,
                p.description.format(name=slug.replace("_", " ")),
                source=p.source,
                churn_effect=p.churn_effect,
                role=SIGNAL,
            )
    return None


class _Registry(dict):
    """The catalogue by name; a name that fits a pattern resolves to its concrete feature."""

    def __missing__(self, name: str) -> Feature:
        f = _pattern_feature(name) if isinstance(name, str) else None
        if f is None:
            raise KeyError(name)
        return f

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or (
            isinstance(name, str) and _pattern_feature(name) is not None
        )

    def get(self, name, default=None):  # type: ignore[override]
        """The feature named ``name`` (static or a pattern's), else ``default``."""
        try:
            return self[name]
        except KeyError:
            return default


FEATURE_BY_NAME: dict[str, Feature] = _Registry({f.name: f for f in FEATURES})

# Plausible values of a numeric feature, by unit (low, high; None: open on that side): a
# what-if sent to the service outside them is refused by name (negative seats, utilisation
# 5.0 and negative ARR used to score as "health 100, green"). The raw contract's ranges
# (features.schema) keep computed snapshots inside them.
_COUNT = (0.0, 1e6)
UNIT_RANGES: dict[str, tuple[float | None, float | None]] = {
    "share": (0.0, 1.0),
    "flag": (0.0, 1.0),
    "count": _COUNT,
    "tickets": _COUNT,
    "contacts": _COUNT,
    "milestones": _COUNT,
    "invoices": _COUNT,
    "responses": _COUNT,
    "features": _COUNT,
    "user-days": (0.0, 31.0 * MAX_DAILY_USERS),
    "events": (0.0, 31.0 * MAX_DAILY_EVENTS),
    "days": (0.0, 36_600.0),
    "change": (-1.0, 1e6),  # relative change: -100% at least
    "ratio": (0.0, 1e6),
    "level": (0.0, 10.0),
    "score 0-10": (0.0, 10.0),
    "score 1-5": (1.0, 5.0),
    "NPS -100..100": (-100.0, 100.0),
    "NPS points": (-200.0, 200.0),
    "events per seat": (0.0, 92.0 * MAX_DAILY_EVENTS),
    "currency": (0.0, MAX_ARR),
    "seats": (0.0, float(MAX_SEATS)),
    "share change": (-1.0, 1.0),
    "topics": (0.0, 2.0 ** len(TEXT_TOPICS)),
    "mentions": _COUNT,
}
FEATURE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "seat_utilisation": (0.0, float(MAX_USERS_PER_SEAT)),
    "days_to_renewal": (-3_660.0, 3_660.0),  # up to ten years either side
    "events_per_user_day_30d": (0.0, MAX_DAILY_EVENTS),
}


def plausible_range(feature: Feature) -> tuple[float | None, float | None]:
    """The values a numeric feature can plausibly take (see ``UNIT_RANGES``)."""
    return FEATURE_RANGES.get(feature.name) or UNIT_RANGES.get(feature.unit, (None, None))


FEATURE_NAMES: tuple[str, ...] = tuple(FEATURE_BY_NAME)
CATEGORICAL: dict[str, tuple[str, ...]] = {f.name: f.levels for f in FEATURES if f.categorical}
NUMERIC: tuple[str, ...] = tuple(f.name for f in FEATURES if not f.categorical)


def catalogue_markdown() -> str:
    """Render the feature table of ``docs/features.md`` from this module."""
    lines = [
        "| feature | family | role | churn risk | unit | window (days) | meaning | needs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    arrows = {1: "higher raises", -1: "higher lowers", 0: "-"}
    for f in FEATURES:
        meaning = f.description + (f" ({', '.join(f.levels)})" if f.levels else "")
        lines.append(
            f"| `{f.name}` | {f.family} | {f.role} | {arrows[f.churn_effect]} | {f.unit} | "
            f"{f.window or '-'} | {meaning} | {', '.join(f.source)} |"
        )
    for p in PRODUCT_FEATURE_PATTERNS:  # one row per pattern: the columns follow the data
        lines.append(
            f"| `{PRODUCT_FEATURE_PREFIX}<feature>{p.suffix}` | usage | {SIGNAL} | "
            f"{arrows[p.churn_effect]} | {p.unit} | {p.window} | "
            f"{p.description.format(name='<feature>')} | {', '.join(p.source)} |"
        )
    return "\n".join(lines) + "\n"
