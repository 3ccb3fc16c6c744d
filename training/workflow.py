"""Train, log, register, promote: the workflow ``radar train`` and the notebooks run.

Above the registry (:mod:`training.registry`, which only finds and loads models), MLflow logging
(:mod:`training.tracking`) and promotion on evidence (:mod:`training.promotion`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from training.config import TrainConfig
from training.forecast import attach_forecasts
from training.promotion import Promotion
from training.promotion import promote as decide
from training.registry import tracking_uri
from training.small import fit
from training.store_init import prepare_store
from training.tracking import TrackedRun, log_training, rows_of_test_window
from training.train import TrainingData, TrainingResult

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Registered:
    """What :func:`train_and_register` did."""

    result: TrainingResult
    tracked: TrackedRun
    promotion: Promotion | None


def register(
    result: TrainingResult,
    data: TrainingData,
    *,
    model_name: str | None = None,
    uri: str | None = None,
    promote: bool = False,
) -> Registered:
    """Log a training run, register its bundle as ``@challenger``; promote it if asked."""
    prepare_store(tracking_uri(uri))  # a new SQLite store: created by one process at a time
    tracked = log_training(result, data, model_name=model_name, uri=uri)
    promotion = None
    if promote:  # on evidence: paired bootstrap, the training config's margins
        promotion = decide(
            tracked.model_name,
            rows_of_test_window,
            version=tracked.version,
            settings=result.config.promotion,
        )
    return Registered(result, tracked, promotion)


def train_and_register(
    data: TrainingData,
    cfg: TrainConfig,
    *,
    model_name: str | None = None,
    uri: str | None = None,
    promote: bool = False,
    progress: ProgressFn | None = None,
) -> Registered:
    """Train, then :func:`register` (log, register as ``@challenger``, promote if asked)."""
    step = progress or (lambda *_: None)
    result = fit(data, cfg, progress=progress)  # cross-validated where a table is small
    if cfg.forecasts.enabled:  # health ahead and satisfaction, beside the heads
        step("training forecasts", 0, 1)
        attach_forecasts(result, data, cfg)
    step("logging to MLflow", 0, 1)
    done = register(result, data, model_name=model_name, uri=uri, promote=promote)
    step("logging to MLflow", 1, 1)
    return done
