"""The other candidates of a head: a regularised logistic model and its average with LightGBM.

Both speak the part of LightGBM's booster interface the rest of the code uses, so a head
holds any of them in ``Head.booster`` and scoring, explanations, reasons, timing and plays run
unchanged:

- ``predict(x, raw_score=True)``: the raw score (log-odds) that the head's calibrator maps to
  a probability;
- ``predict(x, pred_contrib=True)``: exact additive contributions, one column per feature and
  the expected raw score last, summing to the raw score row by row (TreeSHAP for LightGBM;
  for the linear model each feature's weight times its deviation from the training mean, which
  is its exact Shapley value for a linear score; for the average, the average of both);
- ``feature_importance("gain")``, ``num_trees()``, ``save_model(path)``.

The linear model is stored as plain numbers (JSON), like everything else in the bundle.

:func:`choose` picks a head's candidate on the validation window (ROC-AUC of the raw
score, which calibration does not change), preferring the average unless a single model
ranks better by more than a tolerance, and says why.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from training.config import TrainConfig
from training.data import FeatureSpec

LIGHTGBM, LOGISTIC, BLEND = "lightgbm", "logistic", "blend"
CANDIDATES = (LIGHTGBM, LOGISTIC, BLEND)
# Candidates within this much validation ROC-AUC of the best count as tied; ties go to the
# first in this order. The average first: LightGBM's validation figure is flattered by early
# stopping on that same window, and averaging two different models rarely ranks worse than
# either (bench_model_choice.py: "simplest within 0.002" picked LightGBM for both churn heads
# and lost 0.007-0.008 test ROC-AUC to the logistic model; the average lost nothing).
PREFERENCE = (BLEND, LOGISTIC, LIGHTGBM)
TIE = 0.005
LINEAR_FILE = "{label}.linear.json"
LGB_FILE = "{label}.lgb.txt"


def _slog(x: np.ndarray) -> np.ndarray:
    """Signed log: counts and money are heavy-tailed."""
    return np.sign(x) * np.log1p(np.abs(x))


ARRAYS = ("median", "centre", "scale", "flagged", "weights", "mean", "importance")


@dataclass
class LinearScorer:
    """A logistic regression on the head's features, with its preparation as plain numbers.

    Numbers: missing -> the training median, signed log, standardised; a missing flag for the
    features without a known direction (``flagged``); categories: one column per level
    (missing or unknown: all zero). ``mean`` is each prepared column's training mean, so
    ``bias`` (intercept + weights . mean) is the expected raw score and a feature's
    contribution is its columns' weights times their deviation from ``mean``.
    """

    spec: FeatureSpec
    median: np.ndarray  # per numeric feature, before the signed log
    centre: np.ndarray  # per numeric feature, after the signed log
    scale: np.ndarray
    flagged: np.ndarray  # per numeric feature: 1 where it has a missing-flag column
    weights: np.ndarray  # per prepared column
    mean: np.ndarray  # per prepared column, over the training rows
    intercept: float
    importance: np.ndarray  # per feature: mean |contribution| over the training rows

    @property
    def owner(self) -> np.ndarray:
        """The feature (index into ``spec.names``) of each prepared column."""
        n = len(self.spec.numeric)
        own = [*range(n), *np.flatnonzero(self.flagged > 0)]
        for j, levels in enumerate(self.spec.categorical.values()):
            own += [n + j] * len(levels)
        return np.asarray(own, dtype=int)

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """The prepared columns: scaled numbers, missing flags, one-hot categories."""
        x = np.asarray(x, dtype=float)
        n = len(self.spec.numeric)
        num = x[:, :n]
        missing = np.isnan(num)
        z = (_slog(np.where(missing, self.median, num)) - self.centre) / self.scale
        parts = [z, missing[:, self.flagged > 0].astype(float)]
        for j, levels in enumerate(self.spec.categorical.values()):
            code = x[:, n + j]
            parts.append((code[:, None] == np.arange(len(levels))[None, :]).astype(float))
        return np.hstack(parts)

    @property
    def bias(self) -> float:
        """The expected raw score over the training rows."""
        return float(self.intercept + self.weights @ self.mean)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per feature, weight x (prepared value - training mean); the bias last."""
        dev = (self.prepare(x) - self.mean) * self.weights
        phi = np.zeros((len(dev), len(self.spec.names) + 1))
        np.add.at(phi.T, self.owner, dev.T)
        phi[:, -1] = self.bias
        return phi

    def predict(
        self, x: np.ndarray, raw_score: bool = False, pred_contrib: bool = False, **_: object
    ) -> np.ndarray:
        """LightGBM's calling convention: contributions, raw score, or the sigmoid."""
        if pred_contrib:
            return self.contributions(x)
        raw = self.intercept + self.prepare(x) @ self.weights
        return raw if raw_score else expit(raw)

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        """Mean absolute contribution of each feature on the training rows."""
        return self.importance

    def num_trees(self) -> int:
        """A linear model has no trees."""
        return 0

    def to_dict(self) -> dict:
        """JSON-ready form (the spec is the bundle's)."""
        return {
            "kind": LOGISTIC,
            **{k: getattr(self, k).tolist() for k in ARRAYS},
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, spec: FeatureSpec, raw: dict) -> LinearScorer:
        """Inverse of :meth:`to_dict`."""
        arrays = {k: np.asarray(raw[k], dtype=float) for k in ARRAYS}
        return cls(spec, intercept=float(raw["intercept"]), **arrays)

    def save_model(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict()))


def _fit_logistic(
    p: np.ndarray, y: np.ndarray, C: float, bounds: list, max_iter: int
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression with sign bounds on some weights (L-BFGS-B).

    The objective is scikit-learn's (C x summed log loss + |w|^2 / 2, intercept free),
    divided by C x rows: the same solution, with bounds scikit-learn does not offer.
    """
    n, k = p.shape
    penalty = 1.0 / (C * n)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:k], theta[k]
        z = p @ w + b
        # log(1 + e^z) - y z, stable for large |z|
        value = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * penalty * (w @ w)
        r = (expit(z) - y) / n
        return value, np.r_[p.T @ r + penalty * w, r.sum()]

    start = np.zeros(k + 1)
    rate = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    start[k] = np.log(rate / (1 - rate))
    fit = minimize(
        loss,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[*bounds, (None, None)],
        options={"maxiter": max_iter * 10, "gtol": 1e-8},
    )
    return fit.x[:k], float(fit.x[k])


def fit_linear(
    spec: FeatureSpec,
    x: np.ndarray,
    y: np.ndarray,
    C: float,
    max_iter: int,
    seed: int = 0,
    directions: np.ndarray | None = None,
) -> LinearScorer:
    """Fit the regularised logistic regression on the training rows.

    ``directions`` (per numeric feature: +1, -1 or 0) constrains each value's weight to its
    known sign, as LightGBM's monotone constraints do: more open critical tickets can never
    lower churn risk. A feature with a direction gets no missing flag (missing reads as its
    training median), so filling in a missing value the bad way never lowers the risk either.
    ``seed`` is accepted for a uniform signature (the fit is deterministic).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(spec.numeric)
    directions = np.zeros(n) if directions is None else np.asarray(directions, dtype=float)
    num = x[:, :n]
    with warnings.catch_warnings():  # an all-missing column: median 0, scale 1
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nan_to_num(np.nanmedian(num, axis=0)) if len(num) else np.zeros(n)
    logged = _slog(np.where(np.isnan(num), median, num))
    centre = logged.mean(axis=0)
    scale = logged.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    flagged = ((directions == 0) & np.isnan(num).any(axis=0)).astype(float)
    empty = np.zeros(0)
    scorer = LinearScorer(spec, median, centre, scale, flagged, empty, empty, 0.0, empty)
    prepared = scorer.prepare(x)
    bounds: list = [
        (0.0, None) if d > 0 else (None, 0.0) if d < 0 else (None, None) for d in directions
    ]
    bounds += [(None, None)] * (prepared.shape[1] - n)
    scorer.weights, scorer.intercept = _fit_logistic(prepared, y, C, bounds, max_iter)
    scorer.mean = prepared.mean(axis=0)
    scorer.importance = np.abs(scorer.contributions(x)[:, :-1]).mean(axis=0)
    return scorer


def directions_for(spec: FeatureSpec, label: str) -> np.ndarray:
    """Known direction of each numeric feature on head ``label`` (0 where none is known)."""
    from features.catalogue import FEATURE_BY_NAME

    return np.array(
        [FEATURE_BY_NAME[c].effect_on(label) if c in FEATURE_BY_NAME else 0 for c in spec.numeric],
        dtype=float,
    )


@dataclass
class BlendScorer:
    """The average of LightGBM's and the linear model's raw scores (and contributions)."""

    booster: lgb.Booster
    linear: LinearScorer
    weight: float = 0.5  # LightGBM's share

    def predict(
        self, x: np.ndarray, raw_score: bool = False, pred_contrib: bool = False, **kw: object
    ) -> np.ndarray:
        """LightGBM's calling convention, on the weighted average of both raw scores."""
        w = self.weight
        if pred_contrib:
            tree = self.booster.predict(x, pred_contrib=True, **kw)
            return w * tree + (1 - w) * self.linear.contributions(x)
        raw = w * self.booster.predict(x, raw_score=True, **kw) + (1 - w) * self.linear.predict(
            x, raw_score=True
        )
        return raw if raw_score else expit(raw)

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        """Both models' importance as shares, averaged with the blend's weights."""
        tree = np.asarray(self.booster.feature_importance(importance_type), dtype=float)
        lin = self.linear.importance
        share = [a / a.sum() if a.sum() > 0 else a for a in (tree, lin)]
        return self.weight * share[0] + (1 - self.weight) * share[1]

    def num_trees(self) -> int:
        """LightGBM's trees."""
        return self.booster.num_trees()

    def save_model(self, path: str | Path) -> None:
        """The linear part and the weight as JSON (the trees are saved beside it)."""
        raw = self.linear.to_dict() | {"kind": BLEND, "weight": self.weight}
        Path(path).write_text(json.dumps(raw))


def save_scorer(booster, directory: Path, label: str) -> str:
    """Write a head's model file(s) into ``directory``; return its kind."""
    if isinstance(booster, BlendScorer):
        booster.booster.save_model(directory / LGB_FILE.format(label=label))
        booster.save_model(directory / LINEAR_FILE.format(label=label))
        return BLEND
    if isinstance(booster, LinearScorer):
        booster.save_model(directory / LINEAR_FILE.format(label=label))
        return LOGISTIC
    booster.save_model(directory / LGB_FILE.format(label=label))
    return LIGHTGBM


def load_scorer(spec: FeatureSpec, directory: Path, label: str, kind: str = LIGHTGBM):
    """Read what :func:`save_scorer` wrote (bundles from before hold LightGBM only)."""
    if kind == LIGHTGBM:
        return lgb.Booster(model_file=str(directory / LGB_FILE.format(label=label)))
    raw = json.loads((directory / LINEAR_FILE.format(label=label)).read_text())
    linear = LinearScorer.from_dict(spec, raw)
    if kind == LOGISTIC:
        return linear
    booster = lgb.Booster(model_file=str(directory / LGB_FILE.format(label=label)))
    return BlendScorer(booster, linear, float(raw["weight"]))


def kind_of(booster) -> str:
    """``lightgbm``, ``logistic`` or ``blend``."""
    if isinstance(booster, BlendScorer):
        return BLEND
    return LOGISTIC if isinstance(booster, LinearScorer) else LIGHTGBM


@dataclass(frozen=True)
class Choice:
    """A head's chosen candidate, every candidate's validation ROC-AUC, and why."""

    chosen: str
    validation_roc_auc: dict[str, float]
    reason: str

    def as_dict(self) -> dict:
        """JSON-ready form (bundle metadata, MLflow)."""
        return {
            "chosen": self.chosen,
            "validation_roc_auc": self.validation_roc_auc,
            "reason": self.reason,
        }


def choose(y_val: np.ndarray, raw_val: dict[str, np.ndarray], forced: str | None = None) -> Choice:
    """The candidate with the best validation ROC-AUC (ties within ``TIE``: by ``PREFERENCE``).

    ``forced`` (the configuration's ``model: lightgbm|logistic|blend``) skips the contest but
    still records every candidate's figure.
    """
    auc = {k: float(roc_auc_score(y_val, s)) for k, s in raw_val.items()}
    if forced is not None:
        return Choice(forced, auc, f"set in the configuration (model: {forced})")
    return Choice(*pick(auc, "validation ROC-AUC"))


def pick(auc: dict[str, float], what: str) -> tuple[str, dict[str, float], str]:
    """The best candidate by ``auc`` (ties within ``TIE`` go by ``PREFERENCE``), and why."""
    best = max(auc.values())
    tied = [k for k in PREFERENCE if k in auc and auc[k] >= best - TIE]
    chosen = tied[0]
    figures = ", ".join(f"{k} {v:.4f}" for k, v in sorted(auc.items(), key=lambda kv: -kv[1]))
    if len(tied) > 1:
        why = f"{', '.join(tied)} within {TIE} of the best: {chosen} is preferred"
    else:
        why = f"{chosen} ranks best by more than {TIE}"
    return chosen, auc, f"{what} {figures}: {why}"


def linear_head(spec, cfg: TrainConfig, label: str, x: np.ndarray, y: np.ndarray):
    """The linear candidate of a head on ``x``, ``y`` (sampled to ``logistic.max_rows``)."""
    rows = np.arange(len(y))
    if len(rows) > cfg.logistic.max_rows:
        rng = np.random.default_rng(cfg.seed)
        rows = np.sort(rng.choice(rows, cfg.logistic.max_rows, replace=False))
    signs = directions_for(spec, label) if cfg.lightgbm.monotone else None
    c, iters = cfg.logistic.C, cfg.logistic.max_iter
    return fit_linear(spec, x[rows], y[rows], c, iters, cfg.seed, signs)
