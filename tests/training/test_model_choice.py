"""Each head's model is chosen by the evidence, and every choice keeps the explanation contract."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from features.catalogue import LABELS
from scoring.records import score_snapshots
from training.config import TrainConfig
from training.data import FeatureSpec
from training.linear import (
    BLEND,
    CANDIDATES,
    LIGHTGBM,
    LOGISTIC,
    TIE,
    BlendScorer,
    LinearScorer,
    choose,
    fit_linear,
    kind_of,
)
from training.model import Calibrator, Head, ModelBundle, fit_lightgbm, lightgbm_params
from training.registry import ScoringModel
from training.train import from_snapshots, linear_head, train


def small_world(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    spec = FeatureSpec(("a", "b", "c"), {"tier": ("low", "mid", "high")})
    x = np.column_stack(
        [
            rng.normal(size=n),
            rng.lognormal(size=n) * 1000,
            rng.normal(size=n),
            rng.integers(0, 3, n).astype(float),
        ]
    )
    x[rng.random(n) < 0.2, 1] = np.nan  # missing values
    x[rng.random(n) < 0.1, 3] = np.nan
    logit = 1.5 * x[:, 0] - 0.5 * (x[:, 3] == 2) + 0.3 * np.nan_to_num(np.log1p(x[:, 1]) - 6)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return spec, x, y


def test_linear_contributions_are_exact_and_centred_on_the_training_rows():
    spec, x, y = small_world()
    lin = fit_linear(spec, x, y, C=1.0, max_iter=500, seed=0)
    phi = lin.predict(x, pred_contrib=True)
    assert phi.shape == (len(x), len(spec.names) + 1)
    np.testing.assert_allclose(phi.sum(axis=1), lin.predict(x, raw_score=True), atol=1e-10)
    # the bias is the expected raw score: contributions average 0 over the training rows
    np.testing.assert_allclose(phi[:, :-1].mean(axis=0), 0, atol=1e-10)
    assert phi[0, -1] == pytest.approx(lin.predict(x, raw_score=True).mean())
    # the same regression as scikit-learn's on the prepared columns
    lr = LogisticRegression(C=1.0, max_iter=1000, tol=1e-10).fit(lin.prepare(x), y)
    np.testing.assert_allclose(
        lin.predict(x, raw_score=True), lr.decision_function(lin.prepare(x)), atol=1e-4
    )
    assert lin.feature_importance("gain")[0] == lin.importance.max()  # ``a`` drives it
    unseen = np.array([[np.nan, np.nan, np.nan, np.nan], [0.0, 1.0, 0.0, 7.0]])
    assert np.isfinite(lin.predict(unseen, raw_score=True)).all()  # missing, unknown level


def test_known_directions_hold_for_the_linear_model():
    """As LightGBM's monotone constraints: a worse value never lowers the risk, missing or not."""
    spec, x, y = small_world()
    # ``c`` is noise the data would give either sign; say it may only raise the risk, and
    # say ``a`` (which truly raises it) may only lower it: both weights end at their bound.
    signs = np.array([-1.0, 0.0, 1.0])
    lin = fit_linear(spec, x, y, C=1.0, max_iter=500, directions=signs)
    free = fit_linear(spec, x, y, C=1.0, max_iter=500)
    assert lin.weights[0] <= 0 and lin.weights[2] >= 0 and free.weights[0] > 0.5
    assert lin.flagged.tolist() == [0.0, 1.0, 0.0]  # only the undirected ``b`` has a flag
    worse = x.copy()
    worse[:, 2] = np.nan_to_num(worse[:, 2], nan=0.0) + 1.0  # fill in missing, then raise
    assert (lin.predict(worse, raw_score=True) >= lin.predict(x, raw_score=True) - 1e-12).all()
    np.testing.assert_allclose(
        lin.predict(x, pred_contrib=True).sum(axis=1), lin.predict(x, raw_score=True), atol=1e-10
    )


def test_saved_linear_and_blend_heads_load_and_predict_the_same(tmp_path, trained):
    data, result = trained
    spec = result.bundle.spec
    x = spec.matrix(data.frame.sample(400, random_state=0))
    y = data.frame.loc[data.frame["churn_90d"].notna(), "churn_90d"].to_numpy(float)[:2000]
    xt = spec.matrix(data.frame[data.frame["churn_90d"].notna()].iloc[:2000])
    lin = fit_linear(spec, xt, y, 0.1, 300, 0)
    tree = result.bundle.heads["churn_90d"].booster
    tree = tree.booster if isinstance(tree, BlendScorer) else tree
    heads = {
        "churn_90d": Head("churn_90d", lin, Calibrator("platt", a=1.0, b=0.0)),
        "expansion_90d": Head(
            "expansion_90d", BlendScorer(tree, lin, 0.5), Calibrator("platt", a=0.9, b=0.1)
        ),
    }
    bundle = ModelBundle(spec, heads, {"model_choice": {}})
    loaded = ModelBundle.load(bundle.save(tmp_path / "b"))
    assert [kind_of(h.booster) for h in loaded.heads.values()] == [LOGISTIC, BLEND]
    raw = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert {h["model"] for h in raw["heads"].values()} == {LOGISTIC, BLEND}
    for a, b in zip(
        bundle.predict_matrix(x).values(), loaded.predict_matrix(x).values(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    blend = loaded.heads["expansion_90d"].booster
    np.testing.assert_allclose(
        blend.predict(x, pred_contrib=True).sum(axis=1), blend.predict(x, raw_score=True), atol=1e-9
    )


def test_choose_takes_the_best_and_the_simplest_within_the_tie():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1], dtype=float)
    good = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7, 0.2, 0.6])
    worse = np.array([0.5, 0.2, 0.4, 0.9, 0.6, 0.7, 0.2, 0.1])
    c = choose(y, {LIGHTGBM: good, LOGISTIC: worse, BLEND: (good + worse) / 2})
    assert c.chosen == LIGHTGBM and c.validation_roc_auc[LIGHTGBM] == 1.0
    assert "lightgbm ranks best by more than" in c.reason and "validation ROC-AUC" in c.reason
    tie = choose(y, {LIGHTGBM: good, LOGISTIC: good + 0.01, BLEND: good})
    assert tie.chosen == BLEND and "preferred" in tie.reason  # the average, when tied
    no_blend = choose(y, {LIGHTGBM: good, LOGISTIC: good})
    assert no_blend.chosen == LOGISTIC  # then the linear model
    forced = choose(y, {LIGHTGBM: good, LOGISTIC: worse, BLEND: good}, forced=BLEND)
    assert forced.chosen == BLEND and "configuration" in forced.reason
    assert set(forced.validation_roc_auc) == set(CANDIDATES)


@pytest.mark.slow
def test_training_records_each_heads_choice_and_serves_it(long_features, small_config):
    cfg = small_config.model_copy(update={"model": "auto"})
    result = train(from_snapshots(long_features, cfg), cfg)
    choice = result.bundle.metadata["model_choice"]
    assert set(choice) == set(result.bundle.heads)
    for head, c in choice.items():
        auc = c["validation_roc_auc"]
        assert set(auc) == set(CANDIDATES) and c["chosen"] in CANDIDATES
        assert auc[c["chosen"]] >= max(auc.values()) - TIE  # never a clearly worse one
        assert kind_of(result.bundle.heads[head].booster) == c["chosen"]
        assert c["reason"].startswith("validation ROC-AUC")


def _with(bundle: ModelBundle, kind: str, data) -> ModelBundle:
    """The bundle with every head of ``kind`` (fitted on that head's training labels here)."""
    spec = bundle.spec
    split = bundle.metadata["splits"]
    heads = {}
    for label, head in bundle.heads.items():
        s = split[label]
        times = data.frame["as_of"]
        train = data.frame[times.between(s["train_start"], s["train_end"])]
        val = data.frame[times.between(s["validation_start"], s["validation_end"])]
        train, val = (f[f[label].notna()] for f in (train, val))
        cfg = TrainConfig()
        xt, yt = spec.matrix(train), train[label].to_numpy(float)
        tree = head.booster.booster if isinstance(head.booster, BlendScorer) else head.booster
        if isinstance(tree, LinearScorer):  # the fixture chose logistic: a LightGBM to combine
            params = lightgbm_params(cfg.lightgbm, spec, label, cfg.seed, cfg.threads)
            yv = val[label].to_numpy(float)
            tree = fit_lightgbm(spec, xt, yt, spec.matrix(val), yv, params, 100, 20)
        lin = linear_head(spec, cfg, label, xt, yt)
        model = {LIGHTGBM: tree, LOGISTIC: lin, BLEND: BlendScorer(tree, lin)}[kind]
        raw_val = model.predict(spec.matrix(val), raw_score=True)
        cal = Calibrator.fit(raw_val, val[label].to_numpy(float), "isotonic", 20)
        heads[label] = replace(head, booster=model, calibrator=cal)
    return ModelBundle(spec, heads, bundle.metadata)


@pytest.mark.slow
@pytest.mark.parametrize("kind", CANDIDATES)
def test_every_choice_keeps_the_explanations_adding_up(trained, long_features, kind):
    """Reasons, timing, context and drivers sum to the served probability for every choice."""
    data, result = trained
    bundle = _with(result.bundle, kind, data)
    snaps = pd.read_parquet(long_features / "snapshots.parquet")
    latest = snaps[snaps["as_of"] == snaps["as_of"].max()]
    model = ScoringModel(bundle, uri="test", name="renewal-radar", version="1")
    r = score_snapshots(latest, model).records
    for label in LABELS:
        if label not in bundle.heads:
            continue
        rows = r[r[f"p_{label}"].notna()]
        drivers = (
            rows[f"baseline_{label}"]
            + rows[f"drivers_{label}"].map(lambda ds: sum(d["effect"] for d in ds))
            + rows[f"remainder_{label}"]
        )
        np.testing.assert_allclose(drivers, rows[f"p_{label}"], atol=1e-9)
        parts = (
            rows[f"baseline_{label}"]
            + rows[f"timing_{label}"].map(lambda t: t["effect"])
            + rows[f"context_{label}"].map(lambda t: t["effect"])
            + rows[f"reasons_{label}"].map(lambda rs: sum(x["effect"] for x in rs))
        )
        np.testing.assert_allclose(parts, rows[f"p_{label}"], atol=1e-9)
        assert rows[f"drivers_{label}"].map(len).sum() > 0  # the linear head has drivers too
    assert r["play"].notna().all() and r["play_reason"].str.len().gt(0).all()
