"""The forecasts a bundle serves beside its heads: health ahead with an interval, satisfaction.

Trained by :mod:`training.forecast`; stored in the model bundle's folder as
``forecast-<name>.lgb.txt`` files and ``forecasts.json`` (under the bundle's checksums) and
read back by :func:`with_forecasts`. A bundle trained without them has none: no forecast
columns, nothing in their place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.health import PREVIOUS_HEALTH
from training import artifacts
from training.data import FeatureSpec
from training.model import SMALL_BATCH, Calibrator, ModelBundle

FORECASTS_FILE = "forecasts.json"
MODEL_FILE = "forecast-{name}.lgb.txt"
HEALTH = "health_score"
EXTRA = (HEALTH, PREVIOUS_HEALTH)  # inputs of the health forecast beside the features


@dataclass
class HealthForecast:
    """One horizon's regression of the change in health, and its conformal half-width."""

    name: str
    horizon: int
    booster: lgb.Booster
    half_width: float  # the interval is the forecast +- this (clipped to 0-100)
    coverage: float  # the coverage the half-width was chosen for


@dataclass
class SatisfactionHead:
    """One satisfaction head: LightGBM and the calibrator of its raw scores."""

    name: str
    booster: lgb.Booster
    calibrator: Calibrator


@dataclass
class Forecasts:
    """The forecasts of a bundle, served with it (same feature spec)."""

    spec: FeatureSpec
    health: dict[str, HealthForecast] = field(default_factory=dict)
    satisfaction: dict[str, SatisfactionHead] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per row: ``<name>``, ``<name>_low``, ``<name>_high`` per health horizon, ``p_<head>``.

        A row without today's health score has no health forecast (NaN); a satisfaction
        head the data could not train is not there at all.
        """
        return pd.DataFrame(
            self.predict_matrix(self.spec.matrix(df), health_inputs(df)), index=df.index
        )

    def predict_matrix(self, x: np.ndarray, extra: np.ndarray) -> dict[str, np.ndarray]:
        """As :meth:`predict`, for the spec's matrix ``x`` and :func:`health_inputs` ``extra``."""
        out: dict[str, np.ndarray] = {}
        threads = {"num_threads": 1} if len(x) < SMALL_BATCH else {}  # a service call
        if self.health:
            now = extra[:, 0]
            xh = np.hstack([x, extra])
            for name, f in self.health.items():
                mid = np.clip(now + f.booster.predict(xh, **threads), 0.0, 100.0)
                mid = np.where(np.isnan(now), np.nan, mid)
                out[name] = np.round(mid, 1)
                out[f"{name}_low"] = np.round(np.clip(mid - f.half_width, 0.0, 100.0), 1)
                out[f"{name}_high"] = np.round(np.clip(mid + f.half_width, 0.0, 100.0), 1)
        for name, h in self.satisfaction.items():
            out[f"p_{name}"] = h.calibrator(h.booster.predict(x, raw_score=True, **threads))
        return out

    def save(self, directory: Path) -> list[str]:
        """Write the forecasts into the bundle's folder; returns the files written."""
        files = [FORECASTS_FILE]
        meta = {"health": {}, "satisfaction": {}, "metadata": self.metadata}
        for name, f in self.health.items():
            (directory / MODEL_FILE.format(name=name)).write_text(f.booster.model_to_string())
            meta["health"][name] = {
                "horizon": f.horizon,
                "half_width": f.half_width,
                "coverage": f.coverage,
            }
        for name, h in self.satisfaction.items():
            (directory / MODEL_FILE.format(name=name)).write_text(h.booster.model_to_string())
            meta["satisfaction"][name] = {"calibrator": h.calibrator.to_dict()}
        files += [MODEL_FILE.format(name=n) for n in (*self.health, *self.satisfaction)]
        (directory / FORECASTS_FILE).write_text(json.dumps(meta, indent=2, default=str))
        return files

    @classmethod
    def needed(cls, raw: dict) -> list[str]:
        """The model files ``forecasts.json`` (``raw``) names: checked before LightGBM reads."""
        return [MODEL_FILE.format(name=n) for n in (*raw["health"], *raw["satisfaction"])]

    @classmethod
    def load(cls, directory: Path, spec: FeatureSpec, raw: dict) -> Forecasts:
        """Read what :meth:`save` wrote (``raw``: the parsed ``forecasts.json``)."""

        def booster(name: str) -> lgb.Booster:
            return lgb.Booster(model_file=str(directory / MODEL_FILE.format(name=name)))

        health = {
            n: HealthForecast(n, int(m["horizon"]), booster(n), m["half_width"], m["coverage"])
            for n, m in raw["health"].items()
        }
        sat = {
            n: SatisfactionHead(n, booster(n), Calibrator.from_dict(m["calibrator"]))
            for n, m in raw["satisfaction"].items()
        }
        return cls(spec, health, sat, raw.get("metadata", {}))


def health_inputs(df: pd.DataFrame) -> np.ndarray:
    """Today's health score and its month-ago value per row: the health forecast's inputs."""
    cols = [
        df[c].to_numpy(dtype="float64", na_value=np.nan) if c in df else np.full(len(df), np.nan)
        for c in EXTRA
    ]
    return np.column_stack(cols)


def with_forecasts(bundle: ModelBundle, directory: str | Path) -> ModelBundle:
    """``bundle`` (loaded from ``directory``) with the forecasts saved beside it, if any.

    Their files are checked against the bundle's checksums before LightGBM reads them.
    """
    d = Path(directory)
    if not (d / FORECASTS_FILE).is_file():
        return bundle
    raw = artifacts.read_json(d / FORECASTS_FILE)
    artifacts.verify(d, [FORECASTS_FILE, *Forecasts.needed(raw)])
    bundle.forecasts = Forecasts.load(d, bundle.spec, raw)
    return bundle
