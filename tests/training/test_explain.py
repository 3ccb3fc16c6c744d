from __future__ import annotations

import numpy as np
import pytest

from features.catalogue import FEATURES
from features.words import format_value, points, sentence
from training.explain import explain, global_drivers, top_drivers, write_global

pytestmark = pytest.mark.slow


def test_baseline_plus_effects_plus_remainder_is_the_served_probability(trained):
    data, result = trained
    rows = data.frame.sample(3000, random_state=0)
    x = result.bundle.spec.matrix(rows)
    served = result.bundle.predict(rows)
    for label, ex in explain(result.bundle, x, served).items():
        total = ex.baseline + ex.effects.sum(axis=1) + ex.remainder_cap
        np.testing.assert_allclose(total, served[f"p_{label}"], atol=1e-12)
        assert ex.effects.shape == (len(rows), len(result.bundle.spec.names))
        # Only where a 30-day head said more than its 90-day one: both moved to their average.
        if label.endswith("90d"):
            assert np.all(ex.remainder_cap >= -1e-12)
        elif label.endswith("30d"):
            assert np.all(ex.remainder_cap <= 1e-12)
        else:
            assert np.all(np.abs(ex.remainder_cap) < 1e-12)


def test_effects_keep_the_sign_of_the_tree_shap_values(trained):
    data, result = trained
    rows = data.frame.sample(500, random_state=1)
    x = result.bundle.spec.matrix(rows)
    served = result.bundle.predict(rows)
    ex = explain(result.bundle, x, served)["churn_90d"]
    phi = result.bundle.heads["churn_90d"].booster.predict(x, pred_contrib=True)[:, :-1]
    assert np.all(np.sign(ex.effects) * np.sign(phi) >= 0)
    assert np.abs(ex.effects).max() <= 1  # never an effect beyond 100 points


def test_one_driver_per_categorical_feature(trained):
    _, result = trained
    names = result.bundle.spec.names
    assert names.count("renewal_stage") == 1 and len(names) == len(set(names))
    effects = np.array([[0.01, -0.3, 0.2, 0.0], [0.0, 0.0, 0.0, -0.05]])
    assert top_drivers(effects, 2).tolist() == [[1, 2], [3, 0]]


def sample_value(f):
    if f.categorical:
        return f.levels[0]
    return {"share": 0.31, "change": -0.25, "flag": 1.0, "currency": 120000.0}.get(f.unit, 12.0)


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_every_catalogue_feature_renders_a_sentence(feature):
    for value in (sample_value(feature), None, float("nan")):
        for effect, verb in ((0.12, "raises"), (-0.004, "lowers")):
            text = sentence(feature.name, value, effect, "churn_90d")
            assert text[0].isupper() and text.endswith(".")
            assert f"this {verb} 90-day churn risk by" in text
            assert "nan" not in text and "None" not in text
    assert "no data" in sentence(feature.name, None, 0.1, "expansion_30d")


def test_values_and_points_read_like_a_csm_writes_them():
    assert format_value("seat_utilisation", 0.314) == "31%"
    assert format_value("usage_trend_30d", -0.25) == "-25%"
    assert format_value("arr", 120000) == "$120,000"
    assert format_value("executive_sponsor_present", 0.0) == "no"
    assert format_value("days_to_renewal", 1.0) == "1 day"
    assert format_value("renewal_stage", "t_minus_90") == "T-90"
    assert format_value("segment", "mid_market") == "mid market"
    assert (points(0.12), points(0.01), points(0.004), points(0.0001)) == (
        "12 points",
        "1 point",
        "0.4 points",
        "less than 0.1 points",
    )
    assert sentence("seat_utilisation", 0.31, 0.12, "churn_90d") == (
        "Share of purchased seats active each week, over the last 4 complete weeks: 31%; "
        "this raises 90-day churn risk by 12 points."
    )


def test_global_drivers_table_and_plots(trained, tmp_path):
    data, result = trained
    rows = data.frame[data.frame["as_of"] == data.frame["as_of"].max()]
    table = global_drivers(result.bundle, rows)
    assert set(table["head"]) == set(result.bundle.heads)
    assert len(table) == len(result.bundle.heads) * len(result.bundle.spec.names)
    assert (table["mean_abs_points"] >= table["mean_points"].abs() - 1e-9).all()
    written = write_global(result.bundle, rows, tmp_path / "g", sample=200)
    assert all(p.stat().st_size > 1000 for p in written.files)
    assert len(written.files) == 1 + 2 * len(result.bundle.heads)  # the table, two figures a head
