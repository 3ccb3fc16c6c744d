"""Settings of the action loop, typed, from YAML with defaults (a reason beside each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.config import yaml_settings
from features.schema import SEVERITIES


class Rule(BaseModel):
    """One row of the severity table: every condition given must hold; the first match wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: str
    kind: str | None = None  # "alert" or "play"; None: either
    high_severity_alert: bool | None = None  # the cause is one of the scoring's severe alerts
    min_p_churn_90d: float | None = Field(None, ge=0, le=1)
    min_arr: float | None = Field(None, ge=0)  # an account without ARR never meets it

    @model_validator(mode="after")
    def _known(self) -> Rule:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r}: use one of {', '.join(SEVERITIES)}")
        if self.kind not in (None, "alert", "play"):
            raise ValueError(f"kind {self.kind!r}: use alert or play")
        return self


class Channel(BaseModel):
    """Where messages go: an apprise URL; ``{email}`` and ``{name}`` are the recipient's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str  # e.g. mailtos://user:pass@smtp.example.com?to={email}, or a Slack/Teams/json URL
    kinds: tuple[str, ...] = ("digest", "critical", "escalation")


class Person(BaseModel):
    """A member of a team in the people file: the name is the accounts' ``csm_owner``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    email: str | None = None


class TeamConfig(BaseModel):
    """A team: its CSMs, their manager, and the manager's executive (the escalation path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    manager: Person | None = None
    executive: Person | None = None
    csms: tuple[Person, ...] = ()


class ActionsConfig(BaseModel):
    """When a CTA opens, how severe it is, who must answer by when, and where messages go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Severity of a cause (seed 002 "churn_risk_alerts": low, medium, high, critical). A severe
    # alert on an account likely to leave is critical; a severe alert high; any other alert
    # medium; a play to run on an account that needs action low.
    rules: tuple[Rule, ...] = (
        Rule(severity="critical", high_severity_alert=True, min_p_churn_90d=0.5),
        Rule(severity="high", high_severity_alert=True),
        Rule(severity="medium", kind="alert"),
        Rule(severity="low"),
    )
    # Seed 002's response times: 24 h, 4 h, 1 h, immediate. "Immediate" is a message the moment
    # the CTA opens; its escalation waits this long all the same, so that a run minutes later
    # does not escalate what nobody could have seen yet.
    response_hours: dict[str, float] = {"low": 24, "medium": 4, "high": 1, "critical": 0}
    immediate_grace_minutes: float = Field(15, ge=0)
    # Seed 002's escalation path: CSM -> manager -> executive (the levels above the owner).
    max_level: int = Field(2, ge=0, le=2)
    # Accounts with an open CTA per CSM: nobody is handed 40% of a book at once. The rest stay
    # in the portfolio; the first ones by severity, then ARR at stake (ARR x 90-day churn risk).
    capacity_per_csm: int = Field(15, ge=1)
    # A cause gone from this many scoring dates in a row closes its CTA: "condition cleared".
    clear_after_runs: int = Field(2, ge=1)
    # A snoozed CTA wakes early when the 90-day churn risk rises this much (probability points).
    snooze_wake_margin: float = Field(0.10, gt=0, le=1)
    # Notifications: a failed send is retried after backoff x 2^attempts, at most max_attempts.
    retry_backoff_minutes: float = Field(5, gt=0)
    max_attempts: int = Field(8, ge=1)
    channels: tuple[Channel, ...] = ()
    teams: tuple[TeamConfig, ...] = ()
    # Where the daily run keeps its store; a PostgreSQL URL works the same.
    store_url: str = "sqlite:///radar-actions.db"
    lock_minutes: float = Field(120, gt=0)  # a crashed run's lock is taken over after this

    @model_validator(mode="after")
    def _complete(self) -> ActionsConfig:
        missing = [s for s in SEVERITIES if s not in self.response_hours]
        if missing:
            raise ValueError(f"response_hours: no response time for {', '.join(missing)}")
        if any(v < 0 for v in self.response_hours.values()):
            raise ValueError("response_hours: a response time cannot be negative")
        if not self.rules or self.rules[-1].model_dump(exclude={"severity"}, exclude_none=True):
            raise ValueError("rules: the last rule must have no condition (the default)")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, **overrides: Any) -> ActionsConfig:
        """Defaults, updated by the YAML file ``path``, then by non-None ``overrides``."""
        return cls.model_validate(yaml_settings(path, overrides))
