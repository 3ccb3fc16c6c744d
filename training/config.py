"""Typed training configuration, loaded from YAML with command-line overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.catalogue import HORIZONS, LABELS


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Model):
    """Time-based split, in days of as-of date.

    The test window is the last ``test_days`` of as-of dates whose labels are known. The
    validation window ends at least ``gap_days`` before the test window starts, and the training
    window at least ``gap_days`` before the validation window starts, so that no label window
    (T, T + horizon] of one split reaches into the next one. ``gap_days`` defaults to the
    longest label horizon trained and may not be shorter than it. A head whose horizon is
    longer than the fixed windows' (renewal likelihood: 180 days) gets a split of its own with
    a gap of its horizon, so the 30/90-day heads keep their training history.
    """

    test_days: int = Field(90, ge=1)
    validation_days: int = Field(90, ge=1)
    gap_days: int | None = Field(None, ge=0)
    # Seed of the random split of a table without time: kept apart from the model's seed so
    # that runs with other model seeds are judged on the same test rows.
    random_seed: int = 0


class LightGBMConfig(_Model):
    """LightGBM hyperparameters (see the LightGBM docs for each)."""

    learning_rate: float = Field(0.1, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    # Shallow trees: per-account TreeSHAP drivers cost trees x leaves x depth^2. Measured on
    # 20,000 synthetic accounts, depth 4 at learning rate 0.1 needs half the trees of depth 6
    # at 0.05 with the same test ROC-AUC (within 0.001 on every head).
    max_depth: int = Field(4, ge=-1)
    min_child_samples: int = Field(100, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(1.0, ge=0)
    max_trees: int = Field(600, ge=1)
    early_stopping_rounds: int = Field(50, ge=1)
    monotone: bool = True  # the catalogue's known directions as monotone constraints, every head


class BaselineConfig(_Model):
    """The regularised logistic regression trained beside LightGBM."""

    C: float = Field(0.1, gt=0)
    max_iter: int = Field(300, ge=1)
    max_rows: int = Field(200_000, ge=100)  # a sample of the training window is plenty


class PromotionConfig(_Model):
    """When a challenger may replace the champion: non-inferior on every head, with evidence.

    Both models are scored on the challenger's test rows; a paired bootstrap of those rows gives
    a ``confidence`` interval for each difference (challenger - champion). The challenger is
    promoted when, for every head, the interval's worst end is within the margin: ROC-AUC no
    more than ``roc_auc_margin`` lower, log loss no more than ``log_loss_margin`` (a share of
    the champion's log loss) higher.
    """

    roc_auc_margin: float = Field(0.01, ge=0)
    log_loss_margin: float = Field(0.02, ge=0)
    resamples: int = Field(1000, ge=50)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    seed: int = 0


class BacktestConfig(_Model):
    """Rolling-origin evaluation: the last ``origins`` monthly as-of dates, each a test window.

    At each origin the heads are trained and calibrated on what was known then (the usual split
    with its gaps, ending ``gap`` before the origin) and tested on the origin's snapshots.
    """

    origins: int = Field(6, ge=1)
    resamples: int = Field(200, ge=50)  # bootstrap resamples per interval
    confidence: float = Field(0.95, gt=0.5, lt=1)
    # Also, at each origin, what would have been served then with and without ``refit``
    # (trained on the labels known at the origin) is tested on the origin's snapshots, paired.
    refit: bool = False
    # Also test every candidate model (LightGBM, logistic, their average) at each origin and
    # choose each head's by its mean ROC-AUC over the origins (training.backtest.choose_models).
    candidates: bool = False


class ForecastConfig(_Model):
    """The forecasts trained beside the heads (training/forecast.py): health ahead, satisfaction.

    Small models on purpose: a forecast is read as "about 58, between 45 and 69", and the
    suite trains them in its session model (each costs a second or two on 800 accounts).
    """

    enabled: bool = True  # off: the bundle has no forecasts, the records no forecast columns
    coverage: float = Field(0.9, gt=0.5, lt=1)  # share of outcomes the interval should hold
    learning_rate: float = Field(0.1, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    max_depth: int = Field(4, ge=-1)
    min_child_samples: int = Field(100, ge=1)
    max_trees: int = Field(300, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    # One thread: on models this small OpenMP's start-up and contention cost more than the
    # trees (100 trees on 6,000 rows: 0.5 s on one thread, 2.9-5.5 s on two, shared machine).
    threads: int = Field(1, ge=1)
    # The logistic model and the health score beside each satisfaction head, on the test
    # window (benchmarks/bench_forecasts.py turns it on for the figures of docs/training.md).
    # Off by default: they are evaluation only (the served forecasts are the same) and cost
    # 3 of the 4 s of CPU the forecasts take on 800 accounts, in every `radar train`.
    baselines: bool = False


class TrainConfig(_Model):
    """Everything ``radar train`` needs besides the data."""

    heads: tuple[str, ...] = LABELS
    seed: int = 0
    threads: int = Field(2, ge=1)
    calibration: Literal["isotonic", "platt"] = "isotonic"
    # An isotonic block holds at least this share of the validation rows and this many rows,
    # so the top of the distribution is never one small block at 100%: a rate from 100 rows
    # has a standard error of at most 0.05 (20-row blocks put the top 1% of 2,000 accounts'
    # 30-day risk 0.11 above the oracle).
    calibration_min_share: float = Field(0.0025, ge=0, le=0.5)
    calibration_min_rows: int = Field(100, ge=1)
    # Operating point for precision / recall / F1: the threshold that maximises F1 on the
    # validation window, or the top share of accounts when set (0.1 = top decile).
    top_share: float | None = Field(None, gt=0, lt=1)
    split: SplitConfig = SplitConfig()
    # Each head's model: chosen on the validation window among LightGBM, the regularised
    # logistic model (``logistic`` settings) and their average (``auto``), or fixed.
    # LightGBM stays the default until ``auto``'s rule is confirmed on a fresh run at 2,000
    # and 20,000 accounts (benchmarks/bench_model_choice.py): it was chosen after one run.
    model: Literal["auto", "lightgbm", "logistic", "blend"] = "lightgbm"
    # After the honest evaluation, refit each head on every labelled row before the latest
    # labelled window and recalibrate it on that window (training/refit.py).
    refit: bool = False
    # With ``model: lightgbm``, the linear candidate is still fitted so its validation figure
    # is recorded beside LightGBM's; the backtest turns that off (a quarter of its time).
    record_candidates: bool = True
    # Each fitted candidate also evaluated on the test window, as predictor candidate_<kind>
    # (the backtest's --candidates, to choose the model per head over several origins).
    evaluate_candidates: bool = False
    # A head's model fixed by name (what `radar backtest --candidates` prints), before `model`.
    model_per_head: dict[str, Literal["lightgbm", "logistic", "blend"]] = {}
    lightgbm: LightGBMConfig = LightGBMConfig()
    logistic: BaselineConfig = BaselineConfig()
    shap_sample: int = Field(2000, ge=10)
    promotion: PromotionConfig = PromotionConfig()
    backtest: BacktestConfig = BacktestConfig()
    forecasts: ForecastConfig = ForecastConfig()
    # Below these, a part's figures are noise: the head is skipped and the user told why.
    min_rows: int = Field(500, ge=1)  # rows in each of train, validation and test
    min_positives: int = Field(30, ge=1)  # positives (and negatives) in each part
    min_validation_auc: float = Field(0.55, ge=0, le=1)  # below: no better than chance, not kept
    # A table without time too small for those parts is cross-validated instead (k folds,
    # repeated with new shuffles; training/small.py): every row is held out once per repeat.
    cv_folds: int = Field(5, ge=2)
    cv_repeats: int = Field(5, ge=1)  # more repeats: steadier figures, not narrower intervals
    # A label with fewer (or more) positives than this in any part is trained but named in a
    # warning: at 96% "churn" the label's definition is usually at fault (an activity rule
    # whose quiet days are shorter than the customers' buying cycle), not the customers.
    # The floor is low because 30-day churn is rare by nature (1-1.5% of accounts a month in
    # the built-in world and in B2B SaaS): a 2% floor would flag every healthy training.
    label_rate_band: tuple[float, float] = (0.002, 0.95)
    experiment: str = "renewal-radar"
    registered_model: str = "renewal-radar"

    def min_block(self, rows: int) -> int:
        """Fewest validation rows an isotonic block may hold, for ``rows`` validation rows.

        Never more than a fifth of the rows, so a small validation part keeps a few blocks.
        """
        floor = max(self.calibration_min_rows, round(self.calibration_min_share * rows))
        return max(1, min(floor, rows // 5))

    @model_validator(mode="after")
    def _known_heads(self) -> TrainConfig:
        unknown = [h for h in self.heads if h not in LABELS]
        if unknown:
            raise ValueError(f"unknown head(s) {unknown}; choose from {list(LABELS)}")
        if not self.heads:
            raise ValueError("at least one head is needed")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """The defaults above, updated by the YAML file ``path``, then by non-None ``overrides``.

        Nested keys are overridden with dotted names, e.g. ``{"lightgbm.max_trees": 50}``.
        """
        data: dict[str, Any] = {}
        if path is not None:
            data = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a mapping of settings")
        for key, value in overrides.items():
            if value is None:
                continue
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        return cls.model_validate(data)

    def gap(self, horizons: list[int]) -> int:
        """The gap in days between splits: the configured one, at least the longest horizon."""
        longest = max(horizons)
        if self.split.gap_days is None:
            return longest
        if self.split.gap_days < longest:
            raise ValueError(
                f"split.gap_days={self.split.gap_days} is shorter than the {longest}-day label "
                "horizon: label windows would overlap the next split"
            )
        return self.split.gap_days

    def gaps(self, horizons: dict[str, int]) -> dict[str, int]:
        """Per head, the gap of its split.

        Heads with a horizon of at most the longest fixed window (90 days) share one split
        with :meth:`gap` of their horizons; a head with a longer horizon gets its own gap,
        the longer of its horizon and the shared gap.
        """
        short = [h for h in horizons.values() if h <= max(HORIZONS)]
        shared = self.gap(short or list(horizons.values()))
        return {head: max(shared, h) for head, h in horizons.items()}
