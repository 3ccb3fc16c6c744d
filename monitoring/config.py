"""Thresholds of ``radar monitor``, typed, from YAML with defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from features.config import yaml_settings


class MonitorConfig(BaseModel):
    """When the monitor says watch or retrain.

    Population stability index (PSI) per feature and for the served scores, between the
    champion's training window and the latest snapshot: the usual reading is < 0.1 stable,
    0.1-0.25 a moderate shift, > 0.25 a large one. Calibration: observed events against the
    sum of predicted probabilities over the latest matured as-of dates; a gap counts when it is
    both significant (``calibration_z``) and material (ratio off by the given share).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi_bins: int = Field(10, ge=2)
    psi_watch: float = Field(0.1, gt=0)
    psi_drift: float = Field(0.25, gt=0)  # a large shift: the feature is named in the verdict
    drift_top_features: int = Field(15, ge=1)  # drift counts for the model's top features
    # Features that move by construction as time passes (a customer base only gets older):
    # reported, never a reason.
    drift_ignore: tuple[str, ...] = ("tenure_days",)
    missing_watch: float = Field(0.2, gt=0, le=1)  # rise in a feature's share of missing values
    calibration_months: int = Field(3, ge=1)  # latest matured as-of dates judged for the verdict
    calibration_z: float = Field(3.0, gt=0)
    calibration_watch: float = Field(0.15, gt=0)  # |predicted / observed - 1|
    calibration_retrain: float = Field(0.3, gt=0)
    min_events: int = Field(20, ge=1)  # fewer observed events: too few to judge calibration
    forecast_target: float = Field(0.95, gt=0, le=1)  # seed 003: quarterly forecast accuracy

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, **overrides: Any) -> MonitorConfig:
        """Defaults, updated by the YAML file ``path``, then by non-None ``overrides``."""
        return cls.model_validate(yaml_settings(path, overrides))
