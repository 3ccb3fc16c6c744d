"""Parameters and decision rules of the synthetic generating process.

The simulator and the oracle both call the functions here, so the probabilities the oracle
integrates are exactly the ones the simulator draws from. ``docs/synthetic-data.md``
describes the process in words.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.schema import BILLING_TERMS, PLAN_TIERS, SEGMENTS
from features.synthetic.intent import IntentParams
from features.synthetic.text import TextConfig
from features.words import PLAYS

# Index order used in every per-segment / per-term / per-tier array below.
SEG = {s: i for i, s in enumerate(SEGMENTS)}
TERM = {t: i for i, t in enumerate(BILLING_TERMS)}
TIER = {t: i for i, t in enumerate(PLAN_TIERS)}

# Product features (modules), in the order tiers unlock them.
PRODUCT_FEATURES = (
    "dashboards",
    "reports",
    "alerts",
    "integrations",  # starter
    "workflows",
    "api",
    "forecasting",  # professional adds
    "sso_admin",
    "audit_log",
    "sandbox",  # enterprise adds
)
TIER_FEATURE_COUNT = (4, 7, 10)  # starter, professional, enterprise
SHOCKS = ("champion_left", "sponsor_lost", "budget_cut", "product_incident", "growth_event")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatentParams(_Frozen):
    """Monthly latent health: x' = phi * x + sigma * eps + jumps; health = mu + x."""

    phi: float = 0.8
    sigma: float = 0.45
    mu_by_segment: tuple[float, float, float] = (0.35, 0.15, -0.05)
    mu_sd: float = 0.5
    existing_x_mean: float = -0.15
    existing_x_sd: float = 0.8
    onboarding_success: tuple[float, float, float] = (0.85, 0.8, 0.72)
    onboarding_success_x: tuple[float, float] = (0.4, 0.5)  # mean, sd
    onboarding_failure_x: tuple[float, float] = (-1.3, 0.5)
    # Monthly probability and size of each shock, in SHOCKS order.
    shock_rate: tuple[float, ...] = (0.015, 0.01, 0.008, 0.02, 0.015)
    shock_size: tuple[float, ...] = (-0.9, -0.8, -0.7, -0.6, 0.6)


class DecisionParams(_Frozen):
    """Logistic decision rules for churn, expansion and contraction."""

    # Churn logit at a renewal, by segment (rows) and billing term (columns).
    churn_renewal: tuple[tuple[float, float, float], ...] = (
        (-4.5, -2.1, -2.4),  # enterprise: monthly, annual, multi_year
        (-4.3, -2.2, -2.5),  # mid_market
        (-3.7, -1.0, -1.3),  # smb
    )
    churn_health: float = 1.3
    churn_tenure: float = 0.25  # per year of tenure, capped
    churn_tenure_cap_years: float = 4.0
    churn_midterm: float = -7.0  # logit at a monthly anniversary that is not a renewal
    churn_midterm_health: float = 0.8
    expansion: tuple[float, float, float] = (-3.2, -3.4, -4.1)
    expansion_health: float = 0.8
    expansion_growth: float = 0.5
    expansion_utilisation: float = 2.0
    expansion_renewal: float = 0.8
    contraction: float = -2.6
    contraction_health: float = 0.9


class ObservationParams(_Frozen):
    """How observed tables follow the latent state."""

    utilisation_base: float = 0.4
    utilisation_health: float = 0.9
    utilisation_growth: float = 0.3
    seats_median: tuple[float, float, float] = (500.0, 90.0, 12.0)
    seats_sd_log: float = 0.6
    price_per_seat: tuple[float, float, float] = (360.0, 720.0, 1200.0)  # by tier, per year
    tickets_per_month: tuple[float, float, float] = (2.5, 0.8, 0.25)
    nps_base: float = 7.0
    nps_health: float = 1.6
    nps_noise: float = 1.8


class ShiftParams(_Frozen):
    """A change of the world from ``month`` on, to test monitoring; off while ``month`` is None.

    ``churn_logit`` is added to the churn logit at renewals (a price change: more customers
    leave, nothing in their usage says so beforehand). ``utilisation_logit`` moves the observed
    seat use (a product incident wave: people use the product less) without changing the
    latent health that drives the decisions. The oracle follows both: it knows the world.
    """

    month: str | None = Field(None, description="First month changed, YYYY-MM.")
    churn_logit: float = 0.0
    utilisation_logit: float = 0.0

    @field_validator("month")
    @classmethod
    def _a_month(cls, value: str | None) -> str | None:
        if value is not None:
            date.fromisoformat(f"{value}-01")
        return value

    def active(self, month: int) -> bool:
        """Whether calendar month index ``month`` (months since 1970-01) is shifted."""
        if self.month is None:
            return False
        first = np.datetime64(f"{self.month}-01", "M").astype(np.int64)
        return bool(month >= first)


# Causes a play can address, each a fact of the latent world at the play's start:
# relationship: a champion or sponsor left in the last three months (shocks);
# adoption: true seat utilisation below PlaysConfig.adoption_threshold;
# support: a product incident in the last three months (it raises critical tickets).
PLAY_CAUSES = ("relationship", "adoption", "support")


class PlayEffect(_Frozen):
    """True effect of one play on the churn and expansion logits at decision dates.

    ``cause`` names the problem the play addresses (see :data:`PLAY_CAUSES`); None means it
    acts the same on every account. ``churn_logit`` applies where the cause is present at the
    play's start, ``churn_logit_other`` elsewhere. Both are scaled by ``PlaysConfig.ramp``.
    """

    cause: str | None = Field(None, description="Cause addressed (None: every account).")
    churn_logit: float = Field(description="Churn logit change where the cause is present.")
    churn_logit_other: float = Field(0.0, description="Churn logit change elsewhere.")
    expansion_logit: float = Field(0.0, description="Expansion logit change (every account).")

    @field_validator("cause")
    @classmethod
    def _known_cause(cls, value: str | None) -> str | None:
        if value is not None and value not in PLAY_CAUSES:
            raise ValueError(f"unknown cause {value!r}; known: {', '.join(PLAY_CAUSES)}")
        return value


def _default_effects() -> dict[str, PlayEffect]:
    return {
        "executive_outreach": PlayEffect(
            cause="relationship", churn_logit=-1.2, churn_logit_other=-0.1
        ),
        "adoption_plan": PlayEffect(
            cause="adoption", churn_logit=-0.9, churn_logit_other=-0.1, expansion_logit=0.3
        ),
        "support_escalation": PlayEffect(cause="support", churn_logit=-1.0),
        "value_review": PlayEffect(churn_logit=-0.4, churn_logit_other=-0.4, expansion_logit=-0.6),
        "engagement_revival": PlayEffect(churn_logit=0.0),
    }


class PlaysConfig(_Frozen):
    """CSM plays in the synthetic world: who gets one (a confounded policy) and what it does.

    Off by default: plays change who churns, and so every figure measured on the default
    world (see docs/synthetic-data.md, "Plays").
    """

    enabled: bool = Field(False, description="Simulate plays and write csm_actions.")
    effects: dict[str, PlayEffect] = Field(
        default_factory=_default_effects, description="True effect of each simulated play."
    )
    ramp: tuple[float, ...] = Field(
        (0.5, 1.0, 1.0, 0.6, 0.3),
        description="Share of the effect at decisions 0, 1, 2... months after the start month "
        "(takes time, then fades; zero after the last).",
    )
    adoption_threshold: float = Field(0.5, description="Seat utilisation below it: adoption.")
    accounts_per_csm: int = Field(80, description="Book size; CSM count = accounts / this.")
    plays_per_csm_month: float = Field(3.0, description="Plays a CSM can start in a month.")
    cooldown_months: int = Field(3, description="No new play this soon after the last.")
    policy_base: float = Field(-3.0, description="Policy logit intercept.")
    policy_utilisation: float = Field(
        4.0, description="Policy logit per unit of (0.6 - utilisation): riskier, more often."
    )
    policy_arr: float = Field(0.5, description="Policy logit per log(ARR / median): larger.")
    policy_cause: float = Field(1.0, description="Policy logit per cause present.")
    rule_share: float = Field(
        0.6, description="Chance the CSM picks the rule play for the cause (else any play)."
    )
    holdout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Randomised share of chosen accounts kept as control."
    )
    play_days: int = Field(30, description="Days from play_started to play_done.")
    pilot: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of the CSMs' plays given as a randomised pilot (exploration): to "
        "accounts the team did not choose, drawn at random with a known chance recorded in "
        "csm_actions (reason pilot, column propensity), so the off-policy evaluation can see "
        "plays where the team seldom plays. Taken from the team's capacity.",
    )
    pilot_no_cause_weight: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="Pilot draw weight of an account with no cause, against 1 with one: explore "
        "mostly where a play has a problem to address, yet keep a chance everywhere.",
    )

    @field_validator("effects")
    @classmethod
    def _product_plays(cls, value: dict[str, PlayEffect]) -> dict[str, PlayEffect]:
        unknown = sorted(set(value) - set(PLAYS))
        if unknown:
            raise ValueError(f"unknown play codes {unknown}; known: {', '.join(PLAYS)}")
        return value


class SyntheticConfig(_Frozen):
    """Everything that defines a synthetic dataset, besides its size and seed."""

    start: str = Field("2024-11-01", description="First day of the data window (a 1st).")
    segment_mix: tuple[float, float, float] = (0.05, 0.22, 0.73)
    existing_share: float = 0.7  # accounts already customers at the window start
    latent: LatentParams = LatentParams()
    decisions: DecisionParams = DecisionParams()
    observation: ObservationParams = ObservationParams()
    shift: ShiftParams = ShiftParams()
    plays: PlaysConfig = PlaysConfig()
    text: TextConfig = TextConfig()
    intent: IntentParams = IntentParams()

    @field_validator("start")
    @classmethod
    def _first_of_month(cls, value: str) -> str:
        day = date.fromisoformat(value)
        if day.day != 1:
            raise ValueError(f"start must be the first day of a month, got {value}")
        return value

    @classmethod
    def from_yaml(cls, path: str | Path | None, **overrides: object) -> SyntheticConfig:
        """Load from YAML (or defaults when ``path`` is None), then apply overrides."""
        data = yaml.safe_load(Path(path).read_text()) if path else {}
        data = {**(data or {}), **{k: v for k, v in overrides.items() if v is not None}}
        return cls.model_validate(data)


def _coef(values: object, like: np.ndarray) -> np.ndarray:
    """Coefficients as an array of ``like``'s float type (the oracle works in float32)."""
    return np.asarray(
        values, dtype=np.asarray(like).dtype if np.asarray(like).dtype.kind == "f" else float
    )


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-z))


def seat_utilisation(p: SyntheticConfig, health: np.ndarray, growth: np.ndarray) -> np.ndarray:
    """True share of purchased seats in weekly use."""
    o = p.observation
    return sigmoid(
        o.utilisation_base + o.utilisation_health * health + o.utilisation_growth * growth
    )


def observed_utilisation(p: SyntheticConfig, util: np.ndarray, month: int) -> np.ndarray:
    """Seat use as the usage logs show it in calendar month ``month`` (see :class:`ShiftParams`)."""
    if not p.shift.active(month) or p.shift.utilisation_logit == 0:
        return util
    u = np.clip(util, 1e-6, 1 - 1e-6)
    return sigmoid(np.log(u / (1 - u)) + p.shift.utilisation_logit)


def churn_probability(
    p: SyntheticConfig,
    health: np.ndarray,
    segment: np.ndarray,
    term: np.ndarray,
    tenure_years: np.ndarray,
    is_renewal: np.ndarray,
    month: int | None = None,
    offset: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Probability the account leaves at a monthly anniversary in calendar month ``month``.

    At a renewal (every anniversary for monthly plans, the term end otherwise) churn depends
    on health, segment, billing term and tenure; between renewals only a small hazard
    (bankruptcy, termination) remains. ``month`` matters only with a :class:`ShiftParams`.
    ``offset`` is added to the logit (the effect of plays in progress).
    """
    d = p.decisions
    base = _coef(d.churn_renewal, health)[segment, term]
    tenure = np.minimum(_coef(tenure_years, health), d.churn_tenure_cap_years)
    renewal = base - d.churn_health * health - d.churn_tenure * tenure
    if month is not None and p.shift.active(month):
        renewal = renewal + p.shift.churn_logit
    midterm = d.churn_midterm - d.churn_midterm_health * health
    return sigmoid(np.where(is_renewal, renewal, midterm) + offset)


def expansion_probability(
    p: SyntheticConfig,
    health: np.ndarray,
    growth: np.ndarray,
    segment: np.ndarray,
    is_renewal: np.ndarray,
    offset: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Probability of an expansion at a monthly anniversary, for an account that stays.

    ``offset`` is added to the logit (the effect of plays in progress).
    """
    d = p.decisions
    growth = _coef(growth, health)
    util = seat_utilisation(p, health, growth)
    z = (
        _coef(d.expansion, health)[segment]
        + d.expansion_health * health
        + d.expansion_growth * growth
        + d.expansion_utilisation * (util - 0.5)
        + d.expansion_renewal * is_renewal
        + offset
    )
    return sigmoid(z)


def contraction_probability(p: SyntheticConfig, health: np.ndarray) -> np.ndarray:
    """Probability of a contraction at a renewal, for an account that neither churns nor expands."""
    d = p.decisions
    return sigmoid(d.contraction - d.contraction_health * health)
