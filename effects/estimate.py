"""Per-play effects on churn with intervals: a cross-fitted doubly robust learner (econml).

One multi-treatment :class:`econml.dr.LinearDRLearner` against "no play": LightGBM nuisance
models (the propensity of each play and the outcome given the signals and the play),
cross-fitted by account, then a linear final stage of the doubly robust pseudo-outcomes on a
few effect modifiers (the causes a play addresses, segment, a renewal inside the horizon,
seat use). Its intervals are the final stage's, clustered by account
(:func:`clustered_param_var`). The cross-fitted pseudo-outcomes (``gamma_<arm>``) are kept
per row: the off-policy evaluation scores policies with them. Beside the estimate, the two
naive answers a team would compute, and how strong unseen confounding would have to be to
erase each effect (:mod:`effects.sensitivity`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from effects.config import EffectsConfig
from effects.data import CAUSES, LAST_PLAY, NONE, EffectsError
from effects.sensitivity import Robustness, params, robustness
from features.catalogue import CATEGORICAL, FEATURE_BY_NAME, horizon_days

log = logging.getLogger(__name__)
SEGMENT_LEVELS = ("enterprise", "mid_market", "smb")
ASSUMPTION = (
    "No randomised holdout: the estimate assumes the recorded signals explain who got a play "
    "(no unmeasured confounding)."
)
RANDOMISED = "A randomised holdout is recorded: its control rows anchor the comparison."


@dataclass
class Interval:
    """A point estimate with its interval and the rows behind it."""

    estimate: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of zero."""
        return self.low > 0 or self.high < 0


@dataclass
class PlayEffect:
    """Everything estimated for one play (effects on the outcome probability, play - none)."""

    play: str
    treated: int
    effect: Interval
    naive_difference: Interval  # treated minus untreated outcome rate
    success_rate: float  # before/after: share of treated rows without the outcome
    by_segment: dict[str, Interval] = field(default_factory=dict)
    by_cause: dict[str, Interval] = field(default_factory=dict)
    propensity: dict[str, float] = field(default_factory=dict)  # overlap diagnostics
    # How strong unseen confounding would have to be to erase it (effects.sensitivity).
    robustness: Robustness | None = None


@dataclass
class EffectsResult:
    """Per-play effects, per-row effects and the diagnostics of one estimate."""

    plays: list[PlayEffect]
    not_estimated: dict[str, int]  # play -> records, too few to estimate
    rows: pd.DataFrame  # the effect table rows used, with cate_/low_/high_/gamma_ columns
    statement: str  # the identifying assumption, or the randomised holdout
    confidence: float
    outcome: str
    model: object = None  # the fitted learner, for effects on new rows (:func:`predict`)
    risk_models: list = field(default_factory=list)  # base-risk fold models, for new rows
    # Per play: the final stage's parameter covariance, clustered by account.
    param_var: dict[str, np.ndarray] = field(default_factory=dict)

    def play(self, code: str) -> PlayEffect:
        """The estimate of play ``code``."""
        return next(p for p in self.plays if p.play == code)


def covariates(table: pd.DataFrame) -> list[str]:
    """The signals at T the nuisance models adjust for, and the history of plays.

    Modelled catalogue features present, plays in the last 180 days and, where the table has
    it, the days since the last play.
    """
    skip = {"account_id", "as_of"}
    cols = [
        c
        for c in table.columns
        if c not in skip
        and (c in FEATURE_BY_NAME and FEATURE_BY_NAME[c].modelled or c.startswith("usage_"))
    ]
    return [*cols, "plays_before_180d", *([LAST_PLAY] if LAST_PLAY in table else [])]


def design_matrix(table: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """Numbers for the nuisance models: categoricals as level codes, missing kept as NaN."""
    out = np.empty((len(table), len(cols)))
    for i, c in enumerate(cols):
        s = table[c]
        if c in CATEGORICAL:
            out[:, i] = pd.Categorical(s, categories=CATEGORICAL[c]).codes.astype(float)
            out[out[:, i] < 0, i] = np.nan
        else:
            out[:, i] = pd.to_numeric(s, errors="coerce").astype(float)
    return out


def modifiers(table: pd.DataFrame, outcome: str, risk: np.ndarray | None = None) -> pd.DataFrame:
    """Effect modifiers of the final stage: causes, segment, renewal in the horizon, seat use.

    With ``risk`` (the untreated outcome probability, cross-fitted), also the risk and its
    product with each cause: a play that moves the logit moves the probability in
    proportion to p (1 - p), so the effect scales with the risk.
    """
    h = horizon_days(outcome)
    seg = table["segment"].astype(str) if "segment" in table else pd.Series("smb", table.index)
    renewal = (
        table["days_to_renewal"].fillna(np.inf) <= h
        if "days_to_renewal" in table
        else pd.Series(False, index=table.index)
    )
    if "billing_term" in table:
        renewal = renewal | (table["billing_term"].astype(str) == "monthly")
    util = table.get("seat_utilisation", 0.6)
    x = {f"cause_{c}": table[f"cause_{c}"].astype(float) for c in CAUSES}
    x.update({f"segment_{s}": (seg == s).astype(float) for s in SEGMENT_LEVELS[:2]})
    x["renewal_in_horizon"] = renewal.astype(float)
    # A play can only change churn at a decision: where the cause meets a renewal is where
    # the effect lives, which an additive final stage cannot express without these.
    for c in CAUSES:
        x[f"renewal_x_{c}"] = x[f"cause_{c}"] * x["renewal_in_horizon"]
    x["seat_utilisation"] = pd.Series(util, index=table.index).fillna(0.6).clip(0, 1.5)
    if risk is not None:
        x["base_risk"] = pd.Series(np.asarray(risk, float), index=table.index)
        for c in CAUSES:
            x[f"base_risk_x_{c}"] = x[f"cause_{c}"] * x["base_risk"]
    return pd.DataFrame(x, index=table.index)


def base_risk(
    W: np.ndarray, y: np.ndarray, untreated: np.ndarray, cfg: EffectsConfig, groups: np.ndarray
) -> tuple[np.ndarray, list]:
    """Untreated outcome probability per row, cross-fitted by account, and the fold models.

    Fitted on untreated rows only; each untreated row is predicted by the model of the
    folds its account was not in, treated rows by the mean of the fold models.
    """
    from sklearn.model_selection import GroupKFold

    idx = np.flatnonzero(untreated)
    out = np.zeros(len(y))
    models = []
    # An account's monthly rows share one churn event: split by account, or a held-out row
    # is predicted by a model that saw its outcome through its neighbours.
    splitter = GroupKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
    folds = splitter.split(idx, groups=groups[idx])
    for k, (fit, held) in enumerate(folds):
        m = lgbm(cfg, cfg.seed + 20 + k).fit(W[idx[fit]], y[idx[fit]].astype(int))
        out[idx[held]] = m.predict_proba(W[idx[held]])[:, 1]
        models.append(m)
    rest = ~untreated
    if rest.any():
        out[rest] = np.mean([m.predict_proba(W[rest])[:, 1] for m in models], axis=0)
    return out, models


class RowCap(ClassifierMixin, BaseEstimator):
    """A classifier fitted on at most ``max_rows`` of its rows, drawn at random (seeded).

    A nuisance model gains little past a few hundred thousand rows while its fitting time
    grows with them; it still predicts every row, and the final stage and the DR scores use
    every row. An sklearn estimator, so econml can clone it per fold.
    """

    def __init__(self, model=None, max_rows: int = 400_000, seed: int = 0):
        self.model, self.max_rows, self.seed = model, max_rows, seed

    def fit(self, X, y, **kwargs) -> RowCap:
        """Fit a clone of ``model`` on the rows, or on ``max_rows`` of them."""
        n = len(y)
        if n > self.max_rows:
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(n, self.max_rows, replace=False))
            # By position: a pandas y keeps its frame's labels, which need not be 0..n-1.
            X, y = np.asarray(X)[keep], np.asarray(y)[keep]
            kwargs = {k: (None if v is None else np.asarray(v)[keep]) for k, v in kwargs.items()}
        self.model_ = clone(self.model).fit(X, y, **kwargs)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the fitted model."""
        return self.model_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """Classes of the fitted model."""
        return self.model_.predict(X)


def lgbm(cfg: EffectsConfig, seed: int, n_estimators: int | None = None):
    """The LightGBM classifier of the nuisance models (outcome and propensity), configured."""
    from lightgbm import LGBMClassifier  # heavy; only the estimate needs it

    model = LGBMClassifier(
        n_estimators=n_estimators or cfg.n_estimators,
        num_leaves=cfg.num_leaves,
        learning_rate=0.05,
        min_child_samples=20,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        n_jobs=cfg.n_jobs,
        random_state=seed,
        verbose=-1,
    )
    return RowCap(model, cfg.nuisance_max_rows, seed)


def final_model(est, play: str):
    """The linear final stage of ``play`` against "no play" in a fitted LinearDRLearner."""
    return est.fitted_models_final[list(est.transformer.categories_[0]).index(play) - 1]


def _with_intercept(X: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(X)), X])


def clustered_param_var(
    X: np.ndarray, resid: np.ndarray, groups: np.ndarray, small_sample: bool = True
) -> np.ndarray:
    """Covariance of a least-squares fit's parameters (intercept first), clustered by group.

    econml's final stage gives a heteroskedasticity-robust covariance that takes every row
    as independent; an account's monthly rows are not (one churn event, near-equal
    signals), so its intervals were too narrow. This is the cluster-robust sandwich (CR1:
    with ``small_sample``, times G/(G-1) (n-1)/(n-k)); with one row per group it is econml's
    own (HC1; HC0 without the factor).
    """
    X1 = _with_intercept(X)
    bread = np.linalg.pinv(X1.T @ X1)
    scores = X1 * np.asarray(resid, float)[:, None]
    g = pd.factorize(groups)[0]
    summed = np.column_stack([np.bincount(g, weights=scores[:, j]) for j in range(X1.shape[1])])
    cov = bread @ (summed.T @ summed) @ bread
    if small_sample:
        n, k, G = len(X1), X1.shape[1], int(g.max()) + 1
        cov *= G / max(G - 1, 1) * (n - 1) / max(n - k, 1)
    return cov


def effect_and_stderr(final, X: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Effects and their standard errors at the rows of ``X``, from one final stage.

    ``var``: the stage's parameter covariance (:func:`clustered_param_var`). Done once per
    play: econml's ``effect_interval`` / ``ate_inference`` recompute every play's final
    stage and one-hot encode the treatment labels on each call (a fifth of the analysis).
    """
    X1 = _with_intercept(X)
    se = np.sqrt(np.clip(np.sum((X1 @ var) * X1, axis=1), 0, np.inf))
    return np.ravel(final.predict(X)), se


def _wald(mean: float, se: float, z: float, n: int) -> Interval:
    return Interval(float(mean), float(mean - z * se), float(mean + z * se), int(n))


def naive_difference(y: np.ndarray, treated: np.ndarray, control: np.ndarray, z: float) -> Interval:
    """Treated minus untreated outcome rate, with a Wald interval (what a team computes)."""
    a, b = y[treated], y[control]
    diff = a.mean() - b.mean()
    se = np.sqrt(a.var() / max(len(a), 1) + b.var() / max(len(b), 1))
    return _wald(diff, se, z, len(a))


def estimate_effects(table: pd.DataFrame, cfg: EffectsConfig) -> EffectsResult:
    """Estimate every play's effect on ``cfg.outcome`` from an effect table.

    Args:
        table: From :func:`effects.data.effect_table` (or a table of one's own with
            ``treatment``, ``outcome``, ``cause_*`` columns and signals).
        cfg: Settings.

    Raises:
        EffectsError: no play, or every play too rare to estimate.

    """
    from econml.dr import LinearDRLearner  # heavy; only the estimate needs it

    table = table[table["outcome"].notna()]
    counts = table.loc[table["treatment"] != NONE, "treatment"].value_counts()
    if counts.empty:
        raise EffectsError("no play started in any decision window: effects cannot be estimated")
    rare = {p: int(n) for p, n in counts.items() if n < cfg.min_treated}
    plays = [p for p in counts.index if p not in rare]
    if not plays:
        listed = ", ".join(f"{p} ({n})" for p, n in rare.items())
        raise EffectsError(
            f"too few plays to estimate: every play has fewer than {cfg.min_treated} "
            f"records ({listed})"
        )
    rows = table[table["treatment"].isin([NONE, *plays])].reset_index(drop=True).copy()
    y = rows["outcome"].to_numpy(float)
    t = rows["treatment"].to_numpy(object)
    cols = covariates(rows)
    W = design_matrix(rows, cols)
    accounts = pd.factorize(rows["account_id"])[0]  # integers: splitting by strings is slow
    risk, risk_models = base_risk(W, y, t == NONE, cfg, accounts)
    rows["base_risk"] = risk
    X = modifiers(rows, cfg.outcome, risk)
    est = LinearDRLearner(
        model_propensity=lgbm(cfg, cfg.seed, cfg.propensity_estimators),
        model_regression=lgbm(cfg, cfg.seed + 1),
        discrete_outcome=True,
        categories=[NONE, *plays],
        cv=cfg.folds,  # with groups, econml splits by account (StratifiedGroupKFold)
        min_propensity=cfg.min_propensity,
        allow_missing=True,
        random_state=cfg.seed,
    )
    log.info("fitting the DR learner on %d rows, %d plays", len(rows), len(plays))
    with warnings.catch_warnings():  # econml passes column vectors to LightGBM; harmless
        warnings.simplefilter("ignore")
        est.fit(
            y.astype(int),
            t,
            X=X.to_numpy(),
            W=W,
            groups=accounts,
            cache_values=True,
        )
    gamma, prop, _ = est._cached_values.nuisances  # cross-fitted DR scores and propensities
    gamma = gamma.reshape(len(rows), -1)
    arms = [NONE, *plays]
    for k, arm in enumerate(arms):
        rows[f"gamma_{arm}"] = gamma[:, k]
        rows[f"propensity_{arm}"] = prop[:, k]
    alpha = 1 - cfg.confidence
    z = float(norm.ppf(1 - alpha / 2))
    Xa = X.to_numpy()
    arr = rows["arr"].to_numpy(float) if "arr" in rows else np.zeros(len(rows))
    randomised = bool(rows.get("holdout", pd.Series(False)).any())
    out, param_var = [], {}
    for k, play in enumerate(plays, start=1):
        final = final_model(est, play)
        pseudo = gamma[:, k] - gamma[:, 0]  # what econml's final stage regressed on X
        var = clustered_param_var(Xa, pseudo - np.ravel(final.predict(Xa)), accounts)
        param_var[play] = var
        cate, se = effect_and_stderr(final, Xa, var)
        rows[f"cate_{play}"] = cate
        rows[f"low_{play}"], rows[f"high_{play}"] = cate - z * se, cate + z * se
        rows[f"saved_arr_{play}"] = -cate * arr

        def ate(mask: np.ndarray, final=final, cate=cate, var=var) -> Interval:
            # econml's ate_inference for a linear final stage: the mean of the row effects,
            # and the standard error of the effect at the mean modifiers (its own formula).
            se = effect_and_stderr(final, Xa[mask].mean(axis=0, keepdims=True), var)[1][0]
            return _wald(float(cate[mask].mean()), se, z, int(mask.sum()))

        treated = t == play
        effect = ate(np.ones(len(rows), bool))
        by_segment = {
            s: ate(X[f"segment_{s}"].to_numpy() == 1)
            for s in SEGMENT_LEVELS[:2]
            if (X[f"segment_{s}"].to_numpy() == 1).sum() >= 30
        }
        smb = (X[[f"segment_{s}" for s in SEGMENT_LEVELS[:2]]].sum(axis=1) == 0).to_numpy()
        if smb.sum() >= 30:
            by_segment["smb"] = ate(smb)
        by_cause = {
            c: ate(X[f"cause_{c}"].to_numpy() == 1)
            for c in CAUSES
            if (X[f"cause_{c}"].to_numpy() == 1).sum() >= 30
        }
        none_of = (X[[f"cause_{c}" for c in CAUSES]].sum(axis=1) == 0).to_numpy()
        if none_of.sum() >= 30:
            by_cause["none"] = ate(none_of)
        robust = robustness(params(rows, play, accounts), cfg.confidence)
        if robust is None:
            log.warning("%s: no robustness value (extreme inverse propensities)", play)
        p = rows[f"propensity_{play}"].to_numpy()
        propensity = {
            "treated_median": float(np.median(p[treated])),
            "treated_min": float(p[treated].min()),
            "untreated_median": float(np.median(p[t == NONE])),
            "untreated_max": float(p[t == NONE].max()),
            "clipped_share": float((p <= cfg.min_propensity * 1.0001).mean()),
        }
        out.append(
            PlayEffect(
                play,
                int(treated.sum()),
                effect,
                naive_difference(y, treated, t == NONE, z),
                float(1 - y[treated].mean()),
                by_segment,
                by_cause,
                propensity,
                robust,
            )
        )
    return EffectsResult(
        out,
        rare,
        rows,
        RANDOMISED if randomised else ASSUMPTION,
        cfg.confidence,
        cfg.outcome,
        est,
        risk_models,
        param_var,
    )


def base_risk_of(result: EffectsResult, table: pd.DataFrame) -> np.ndarray | None:
    """The untreated churn risk of new rows: the mean of the base-risk fold models (None: none)."""
    if not result.risk_models:
        return None
    W = design_matrix(table, covariates(table))
    return np.mean([m.predict_proba(W)[:, 1] for m in result.risk_models], axis=0)


def predict(result: EffectsResult, table: pd.DataFrame) -> pd.DataFrame:
    """``cate_/low_/high_/saved_arr_<play>`` and ``base_risk`` for the rows of ``table``."""
    alpha = 1 - result.confidence
    risk = base_risk_of(result, table)
    X = modifiers(table, result.outcome, risk).to_numpy()
    arr = table["arr"].to_numpy(float) if "arr" in table else np.zeros(len(table))
    out = {} if risk is None else {"base_risk": risk}
    z = float(norm.ppf(1 - alpha / 2))
    for p in result.plays:
        final = final_model(result.model, p.play)
        cate, se = effect_and_stderr(final, X, result.param_var[p.play])
        lo, hi = cate - z * se, cate + z * se
        out.update(
            {
                f"cate_{p.play}": cate,
                f"low_{p.play}": lo,
                f"high_{p.play}": hi,
                f"saved_arr_{p.play}": -cate * arr,
            }
        )
    return pd.DataFrame(out, index=table.index)
