"""Settings of the effect estimates, the worklist and the off-policy evaluation."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.catalogue import LABELS
from features.config import yaml_settings

CHURN_LABELS = tuple(label for label in LABELS if label.startswith("churn_"))


class EffectsConfig(BaseModel):
    """Every setting with the reason for its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_window_days: int = Field(
        30, ge=1, description="Treated at T: a play started in (T, T + this]; one planning month."
    )
    outcome: str = Field(
        "churn_90d",
        description="Snapshot label whose change a play should make: a churn label (the "
        "evidence, the worklist and ARR saved read a lower outcome as better).",
    )
    min_treated: int = Field(
        50, ge=5, description="Plays started fewer times are named, not estimated."
    )
    folds: int = Field(3, ge=2, description="Cross-fitting folds of the nuisance models.")
    confidence: float = Field(0.90, gt=0, lt=1, description="Interval level (the issue's 90%).")
    min_propensity: float = Field(
        0.005, gt=0, lt=0.5, description="Propensities are clipped here (overlap guard)."
    )
    n_estimators: int = Field(150, ge=10, description="LightGBM trees per nuisance model.")
    propensity_estimators: int = Field(
        75,
        ge=10,
        description="LightGBM trees of the propensity model (one tree per play and round): "
        "held-out log loss is lower at 75 than at 150 at 3,000 and 10,000 accounts (it "
        "overfits; docs/effects.md), and 150 took a third of the analysis time.",
    )
    nuisance_max_rows: int = Field(
        400_000,
        ge=1_000,
        description="Rows a nuisance model is fitted on at most (drawn at random; it still "
        "predicts every row): fitting time grows with the rows, the models' accuracy does not "
        "past this (docs/effects.md); 100,000 accounts have about 1.5 million rows.",
    )
    max_accounts: int = Field(
        60_000,
        ge=100,
        description="Accounts the estimate and the policy evaluation learn from at most (a "
        "random sample, seeded; the worklist still covers every account): time grows with "
        "the rows, precision only with their square root; at 60,000 the plays' intervals are "
        "about +-0.003 already, and 100,000 accounts then take 8.4 minutes on 2 cores with "
        "n_jobs 2 (docs/effects.md).",
    )
    num_leaves: int = Field(15, ge=2, description="LightGBM leaves: small, the arms are small.")
    n_jobs: int = Field(
        1,
        ge=1,
        description="LightGBM threads: 1 avoids oversubscription on shared cores; on a "
        "machine of its own, its core count (2 threads: 100,000 accounts in 8.4 minutes).",
    )
    seed: int = Field(0, description="Seed of the folds and the bootstrap.")
    adoption_threshold: float = Field(
        0.5, description="Seat utilisation below it counts as an adoption problem (cause)."
    )
    csm_hours_per_week: float = Field(
        6.0, gt=0, description="Hours a CSM gives plays in a week (the rest is run-the-business)."
    )
    csms: int | None = Field(
        None, ge=1, description="CSMs (default: distinct owners in csm_actions, else accounts/80)."
    )
    play_hours: dict[str, float] = Field(
        default_factory=lambda: {
            "executive_outreach": 6.0,
            "adoption_plan": 8.0,
            "support_escalation": 4.0,
            "value_review": 5.0,
            "engagement_revival": 6.0,
            "usage_recovery": 5.0,
            "expansion_conversation": 3.0,
            "advocacy_ask": 1.0,
            "renewal_launch": 3.0,
            "negotiation_prep": 4.0,
            # Seed 001's 90-day onboarding: a kickoff, the week-4 value checkpoint, the day-60
            # check-in and the day-90 review, each with its preparation: as long as an
            # adoption plan.
            "onboarding_plan": 8.0,
            # An expansion conversation (3 h) plus pricing the add-ons or the multi-year term
            # with the account executive: one hour more.
            "expansion_addons": 4.0,
        },
        description="CSM hours one play takes, by play code (every play of features.words.PLAYS).",
    )
    fragile_below: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Robustness value (effects.sensitivity) below which a play's effect is "
        "called fragile on the pages and the CLI: an unseen factor as strong as one group of "
        "the recorded signals could erase it. Measured on the synthetic world "
        "(benchmarks/confounder_strength.py, 5,000 accounts, seed 1; docs/effects.md): seat "
        "use with every usage column, hidden, explains 0.6-0.7% of the outcome's residual "
        "variance and 0.5-13% of the representer's, by play, the same bound as 0.6-3.2% in "
        "both; one signal alone adds nothing the others do not carry.",
    )
    switch_propensity: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Policy value: below this propensity a row's DR correction (weight 1/p, "
        "times ARR) is dropped for the outcome model alone (switch-DR): less variance.",
    )
    bootstrap: int = Field(200, ge=20, description="Bootstrap draws of the policy values.")
    csm_hour_cost: float = Field(
        100.0,
        ge=0,
        description="Loaded cost of one CSM hour (salary and overhead, in ARR's currency): "
        "the cost side of each play's ROI, with play_hours.",
    )

    @field_validator("outcome")
    @classmethod
    def _churn_label(cls, value: str) -> str:
        # Expansion would need the opposite sign everywhere (a play should raise it): not
        # estimated rather than shown with churn's words and a wrong "saved ARR".
        if value not in CHURN_LABELS:
            raise ValueError(f"effects are estimated on a churn label ({', '.join(CHURN_LABELS)})")
        return value

    @classmethod
    def from_yaml(cls, path: str | Path | None, **overrides: object) -> EffectsConfig:
        """Load from YAML (defaults when ``path`` is None), then apply overrides."""
        return cls.model_validate(yaml_settings(path, overrides))
