"""``refit: true``: after the honest evaluation, serve heads refitted on the freshest labels.

The honest run fits on the training window, calibrates on the validation window and reports
the test window; the model it served was blind to the latest labelled months. With ``refit``,
each head is then fitted again, with the same model kind (LightGBM, logistic or their average)
and LightGBM's tree count from the honest fit, on **every labelled row before the latest
labelled window** (the training and validation windows and the gap between them), and
recalibrated on **the latest labelled window** (the head's test window), a gap as long as the
horizon between them, so no calibration label overlaps a fitted one. The operating point is
chosen again on that window. The reported figures stay the honest ones (they describe how a
model trained this way does on unseen months); what was refitted, on which rows, is recorded
in the bundle's metadata (``refit``) and in MLflow.

There is no later window to test the refitted heads on: that is the price of freshness.
"""

from __future__ import annotations

import lightgbm as lgb
import pandas as pd

from training.linear import BlendScorer, kind_of, linear_head
from training.metrics import f1_threshold, top_share_mask
from training.model import Calibrator, lightgbm_params


def _lightgbm(spec, cfg, label, x, y, trees: int) -> lgb.Booster:
    """LightGBM on ``x`` with a fixed number of trees (no window left for early stopping)."""
    params = lightgbm_params(cfg.lightgbm, spec, label, cfg.seed, cfg.threads)
    cats = list(range(len(spec.numeric), len(spec.names)))
    ds = lgb.Dataset(x, label=y, feature_name=spec.names, categorical_feature=cats)
    booster = lgb.train(params, ds, num_boost_round=max(trees, 1))
    return lgb.Booster(model_str=booster.model_to_string())


def refit_heads(data, cfg, bundle, splits: dict) -> dict[str, dict]:
    """Refit and recalibrate every head of ``bundle`` in place; what was done, per head."""
    df = data.frame
    out = {}
    for label, head in bundle.heads.items():
        split = splits[label]
        known = df[label].notna().to_numpy()
        if data.time is not None:
            t = pd.to_datetime(df[data.time])
            fit_mask = (t <= split.validation_end).to_numpy() & known
            cal_mask = t.between(split.test_start, split.test_end).to_numpy() & known
            windows = {
                "fit_start": str(t[fit_mask].min().date()),
                "fit_end": str(split.validation_end.date()),
                "calibration_start": str(split.test_start.date()),
                "calibration_end": str(split.test_end.date()),
            }
        else:  # a random split: train + validation rows, calibrated on the test rows
            part = split.assign(pd.Series(index=df.index))
            fit_mask = part.isin(["train", "validation"]).to_numpy() & known
            cal_mask = part.eq("test").to_numpy() & known
            windows = {}
        x_fit, y_fit = data.spec.matrix(df[fit_mask]), df.loc[fit_mask, label].to_numpy(float)
        x_cal, y_cal = data.spec.matrix(df[cal_mask]), df.loc[cal_mask, label].to_numpy(float)
        kind = kind_of(head.booster)
        trees = head.booster.num_trees()
        if kind == "lightgbm":
            model = _lightgbm(data.spec, cfg, label, x_fit, y_fit, trees)
        elif kind == "logistic":
            model = linear_head(data.spec, cfg, label, x_fit, y_fit)
        else:
            tree = _lightgbm(data.spec, cfg, label, x_fit, y_fit, trees)
            linear = linear_head(data.spec, cfg, label, x_fit, y_fit)
            model = BlendScorer(tree, linear, head.booster.weight)
        raw = model.predict(x_cal, raw_score=True)
        head.booster = model
        head.calibrator = Calibrator.fit(raw, y_cal, cfg.calibration, cfg.min_block(len(y_cal)))
        p = head.calibrator(raw)
        if cfg.top_share is not None:
            head.threshold = float(p[top_share_mask(p, cfg.top_share)].min())
        else:
            head.threshold = f1_threshold(y_cal, p)
        out[label] = {
            "model": kind,
            "trees": int(model.num_trees()),
            "fit_rows": int(fit_mask.sum()),
            "fit_positives": int(y_fit.sum()),
            "calibration_rows": int(cal_mask.sum()),
            "calibration_positives": int(y_cal.sum()),
            **windows,
        }
    return out
