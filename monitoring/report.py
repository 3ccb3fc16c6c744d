"""``radar monitor``: did the predictions come true, did the inputs drift, what to do about it.

Reads the prediction log (:mod:`monitoring.predictions`) and the raw data, and reports:

- realised vs predicted per head, for predictions whose horizon has passed: by as-of month
  (calibration over time), by segment and by decile of the probability;
- forecast error of the expected churned and expanded ARR, as the absolute percentage error
  ``|forecast - actual| / actual`` (0 is perfect, never negative) and the ratio forecast /
  actual: 30-day forecasts per month, 90-day forecasts per quarter (issued at quarter ends);
- drift: population stability index per feature between the champion's training window and
  the latest logged as-of date, and of the served scores;
- a verdict, ``ok``, ``watch`` or ``retrain``, with its reasons, and every check above its
  own line that the verdict leaves out, with why (:func:`left_out`). Nothing retrains by itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve

from features.catalogue import HORIZONS, LABELS, RENEWAL_LABEL
from features.config import FeatureConfig
from features.snapshots import data_end, labels
from features.sources import open_data
from monitoring.config import MonitorConfig
from monitoring.drift import psi, psi_table
from monitoring.outlook import (
    health_forecast_accuracy,
    satisfaction_heads,
    satisfaction_outcomes,
)
from scoring import snapshot
from scoring.records import renewal_within_window
from training.registry import KIND_TAG, ScoringModel

log = logging.getLogger(__name__)

OK, WATCH, RETRAIN = "ok", "watch", "retrain"
RANK = {OK: 0, WATCH: 1, RETRAIN: 2}


@dataclass(frozen=True)
class Reference:
    """What the champion was trained on: its training-window snapshots and its own scores."""

    features: pd.DataFrame  # snapshot rows of the training window
    scores: pd.DataFrame  # p_<head> of the champion on those rows
    window: tuple[str, str]
    model: str
    importance: pd.Series | None = None  # feature -> mean share of split gain over the heads


def importance(bundle) -> pd.Series:
    """Each feature's share of split gain, averaged over the heads, largest first."""
    shares = [
        pd.Series(h.booster.feature_importance("gain"), index=bundle.spec.names)
        for h in bundle.heads.values()
    ]
    mean = sum(s / s.sum() if s.sum() else s for s in shares) / len(shares)
    return mean.sort_values(ascending=False)


def outcomes(
    ds, predictions: pd.DataFrame, end: pd.Timestamp, feature_cfg: FeatureConfig | None = None
) -> pd.DataFrame:
    """What happened after each logged prediction: labels and the ARR actually expanded.

    Labels come from the subscriptions exactly as training's do (null while the horizon has
    not passed), or from activity for accounts without contracts where ``feature_cfg`` sets
    ``activity_churn_days``; the expanded ARR of (T, T + H] sums each expansion's ARR increase.
    """
    keys = predictions[["account_id", "as_of"]].reset_index(drop=True)
    out = labels(ds, keys, end, feature_cfg)
    if not ds.has("subscriptions"):  # no contracts: no expansion ARR to add up (absent)
        for h in HORIZONS:
            out[f"expanded_arr_{h}d"] = np.nan
        return out
    subs = ds["subscriptions"].sort_values(["account_id", "start_date"], kind="stable")
    gain = subs["arr"] - subs.groupby("account_id")["arr"].shift(1)
    ev = subs.assign(gain=gain)[subs["change_type"] == "expansion"][
        ["account_id", "start_date", "gain"]
    ]
    pairs = keys.reset_index().merge(ev, on="account_id")
    delta = (pairs["start_date"] - pairs["as_of"]).dt.days
    for h in HORIZONS:
        inside = pairs[(delta > 0) & (delta <= h)]
        total = inside.groupby("index")["gain"].sum().clip(lower=0)
        col = pd.Series(0.0, index=keys.index)
        col[total.index] = total.to_numpy()
        col[keys["as_of"] + pd.Timedelta(days=h) > end] = np.nan
        out[f"expanded_arr_{h}d"] = col
    return out


def _calibration(y: np.ndarray, p: np.ndarray) -> dict:
    """Predicted and observed events, their ratio and a z-score (sum of Bernoulli variances)."""
    expected, observed = float(p.sum()), float(y.sum())
    sd = float(np.sqrt(np.sum(p * (1 - p))))
    return {
        "n": int(len(y)),
        "predicted_rate": float(p.mean()) if len(p) else None,
        "observed_rate": float(y.mean()) if len(y) else None,
        "predicted_events": expected,
        "observed_events": observed,
        "ratio": expected / observed if observed else None,
        "z": (observed - expected) / sd if sd > 0 else None,
    }


def realised_vs_predicted(joined: pd.DataFrame, heads, cfg: MonitorConfig) -> dict:
    """Per head: by as-of month, and over the latest matured months by segment and decile."""
    out = {}
    for head in heads:
        ok = joined[head].notna() & joined[f"p_{head}"].notna()
        m = joined[ok]
        if m.empty:
            out[head] = {"matured": 0}
            continue
        by_month = [
            {
                "as_of": str(t.date()),
                **_calibration(g[head].to_numpy(float), g[f"p_{head}"].to_numpy()),
            }
            for t, g in m.groupby("as_of", sort=True)
        ]
        recent_dates = sorted(m["as_of"].unique())[-cfg.calibration_months :]
        recent = m[m["as_of"].isin(recent_dates)]
        y, p = recent[head].to_numpy(float), recent[f"p_{head}"].to_numpy()
        by_segment = [
            {"segment": str(s), **_calibration(g[head].to_numpy(float), g[f"p_{head}"].to_numpy())}
            for s, g in recent.groupby("segment", sort=True)
        ]
        deciles = []
        if 0 < y.sum() < len(y):
            observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
            deciles = [
                {"bin": i + 1, "predicted": float(a), "observed": float(b)}
                for i, (a, b) in enumerate(zip(predicted, observed, strict=True))
            ]
        out[head] = {
            "matured": int(len(m)),
            "recent": {
                "from": str(pd.Timestamp(recent_dates[0]).date()),
                "to": str(pd.Timestamp(recent_dates[-1]).date()),
                **_calibration(y, p),
            },
            "by_month": by_month,
            "by_segment": by_segment,
            "by_decile": deciles,
        }
    return out


def _error(forecast: float, actual: float) -> float | None:
    """Absolute percentage error |forecast - actual| / actual; None when nothing happened."""
    return abs(forecast - actual) / actual if actual else None


def _ratio(forecast: float, actual: float) -> float | None:
    """Forecast / actual (1 is perfect); None when nothing happened."""
    return forecast / actual if actual else None


def forecast_accuracy(joined: pd.DataFrame) -> dict:
    """Expected vs actual churned and expanded ARR: 30-day per month, 90-day per quarter.

    Each row has the forecast, the actual, the absolute percentage error and the ratio
    forecast / actual (both None when no ARR churned or expanded: nothing to divide by).
    """
    rows = {"month": [], "quarter": []}
    for period, h in (("month", 30), ("quarter", 90)):
        churned = f"churn_{h}d"
        if churned not in joined or f"arr_at_risk_{h}d" not in joined:
            continue
        done = joined[joined[churned].notna()]
        if period == "quarter":  # forecasts issued at a quarter's start (the month end before)
            done = done[done["as_of"].dt.month.isin([3, 6, 9, 12])]
        for t, g in done.groupby("as_of", sort=True):
            actual_churn = float((g["arr"] * g[churned].astype(float)).sum())
            forecast_churn = float(g[f"arr_at_risk_{h}d"].sum())
            row = {
                "as_of": str(t.date()),
                "accounts": int(len(g)),
                "churned_arr_forecast": forecast_churn,
                "churned_arr_actual": actual_churn,
                "churned_arr_error": _error(forecast_churn, actual_churn),
                "churned_arr_ratio": _ratio(forecast_churn, actual_churn),
            }
            expanded = g.get(f"expanded_arr_{h}d")
            # No contracts, no expanded ARR: absent from the row, never a zero.
            if (
                f"expected_expansion_arr_{h}d" in g
                and expanded is not None
                and expanded.notna().any()
            ):
                forecast_exp = float(g[f"expected_expansion_arr_{h}d"].sum())
                actual_exp = float(g[f"expanded_arr_{h}d"].sum())
                row |= {
                    "expanded_arr_forecast": forecast_exp,
                    "expanded_arr_actual": actual_exp,
                    "expanded_arr_error": _error(forecast_exp, actual_exp),
                    "expanded_arr_ratio": _ratio(forecast_exp, actual_exp),
                }
            rows[period].append(row)
    return rows


def drift(
    reference: Reference, current: pd.DataFrame, latest: pd.DataFrame, names, heads, cfg
) -> dict:
    """PSI per feature (training window vs ``current`` snapshot) and of each head's scores."""
    table = psi_table(reference.features, current, names, cfg.psi_bins)
    if reference.importance is not None:
        rank = {f: i + 1 for i, f in enumerate(reference.importance.index)}
        table["importance_rank"] = table["feature"].map(rank)
        table["gain_share"] = table["feature"].map(reference.importance).astype(float)
    scores = {
        h: psi(reference.scores[f"p_{h}"], latest[f"p_{h}"], cfg.psi_bins)
        for h in heads
        if f"p_{h}" in latest and f"p_{h}" in reference.scores
    }
    return {
        "reference_window": list(reference.window),
        "current_as_of": str(pd.Timestamp(latest["as_of"].max()).date()),
        "features": table.to_dict(orient="records"),
        "scores": scores,
    }


def verdict(realised: dict, drifted: dict, cfg: MonitorConfig) -> tuple[str, list[dict]]:
    """``ok``, ``watch`` or ``retrain``, with one reason per finding (and its own level).

    A calibration gap that is significant (``|z| >= calibration_z``, enough events) and large
    (``|predicted/observed - 1| >= calibration_retrain``) means retrain; a smaller one, watch.
    Large drift (PSI >= ``psi_drift``) of a feature the model leans on (among its
    ``drift_top_features`` by split gain) or of the served scores means watch: inputs moved,
    and the calibration check says whether the predictions suffered yet. Drift of the other
    features is in the report, not in the verdict: in a young dataset, "so far" and "days
    since" features move as history accumulates.
    """
    reasons: list[dict] = []
    for head, r in realised.items():
        c = r.get("recent")
        if not c or c["ratio"] is None or c["z"] is None:
            continue
        if max(c["observed_events"], c["predicted_events"]) < cfg.min_events:
            continue
        gap = c["ratio"] - 1
        if abs(c["z"]) < cfg.calibration_z or abs(gap) < cfg.calibration_watch:
            continue
        level = RETRAIN if abs(gap) >= cfg.calibration_retrain else WATCH
        word = "over" if gap > 0 else "under"
        reasons.append(
            {
                "level": level,
                "kind": "calibration",
                "head": head,
                "text": (
                    f"{head}: {word}-predicts by {abs(gap):.0%} over {c['from']}..{c['to']} "
                    f"(predicted {c['predicted_events']:.0f} events, observed "
                    f"{c['observed_events']:.0f}; z = {c['z']:+.1f}): retrain and recalibrate "
                    "on recent labelled data (`radar train`), then `radar promote`"
                ),
            }
        )
    moved = [
        f
        for f in drifted["features"]
        if np.isfinite(f["psi"])
        and f["psi"] >= cfg.psi_drift
        and f["feature"] not in cfg.drift_ignore
        and f.get("importance_rank", 1) <= cfg.drift_top_features
    ]
    if moved:
        names = ", ".join(f"{f['feature']} (PSI {f['psi']:.2f})" for f in moved[:8])
        reasons.append(
            {
                "level": WATCH,
                "kind": "feature_drift",
                "features": [f["feature"] for f in moved],
                "text": f"{len(moved)} feature(s) drifted since the training window: {names}",
            }
        )
    gone = [
        f
        for f in drifted["features"]
        if f["current_missing"] - f["reference_missing"] >= cfg.missing_watch
    ]
    if gone:
        names = ", ".join(
            f"{f['feature']} ({f['reference_missing']:.0%} -> {f['current_missing']:.0%})"
            for f in gone[:8]
        )
        reasons.append(
            {
                "level": WATCH,
                "kind": "missing_inputs",
                "features": [f["feature"] for f in gone],
                "text": f"{len(gone)} feature(s) missing more often than in training: {names}",
            }
        )
    for head, value in drifted["scores"].items():
        if np.isfinite(value) and value >= cfg.psi_drift:
            reasons.append(
                {
                    "level": WATCH,
                    "kind": "score_drift",
                    "head": head,
                    "text": f"{head}: served scores drifted (PSI {value:.2f})",
                }
            )
    level = max((r["level"] for r in reasons), key=RANK.__getitem__, default=OK)
    return level, reasons


def left_out(realised: dict, drifted: dict, forecasts: dict, cfg: MonitorConfig) -> list[dict]:
    """Every check above its own line that :func:`verdict` does not count, and why.

    The banner must not call the inputs stable while a feature is above the large-shift line:
    a drifted feature outside the model's top features or in ``drift_ignore``, a moderate
    shift (``psi_watch`` to ``psi_drift``) of a feature or of the served scores, a calibration
    gap that is too small a sample or not significant, and a forecast error above the target
    (reported, never a reason: see docs/monitoring.md) are each listed with the reason.
    """
    out: list[dict] = []
    for head, r in realised.items():
        c = r.get("recent")
        if not c or c.get("z") is None:
            continue
        if c["ratio"] is None:  # predicted events, none observed: the ratio is undefined
            if c["predicted_events"] >= cfg.min_events:
                out.append(
                    {
                        "kind": "calibration",
                        "head": head,
                        "text": (
                            f"{head}: predicted {c['predicted_events']:.0f} events, observed "
                            "none; no ratio to judge"
                        ),
                    }
                )
            continue
        gap = c["ratio"] - 1
        if abs(gap) < cfg.calibration_watch:
            continue
        events = max(c["observed_events"], c["predicted_events"])
        if events < cfg.min_events:
            why = f"too few events to judge ({events:.0f}, fewer than {cfg.min_events})"
        elif abs(c["z"]) < cfg.calibration_z:
            why = f"not significant (z = {c['z']:+.1f}, |z| below {cfg.calibration_z:g})"
        else:
            continue  # a reason of the verdict
        out.append(
            {
                "kind": "calibration",
                "head": head,
                "text": f"{head}: predicted / observed {c['ratio']:.2f}, left out: {why}",
            }
        )
    moderate = []
    for f in drifted["features"]:
        value = f["psi"]
        if not np.isfinite(value) or value < cfg.psi_watch:
            continue
        if value < cfg.psi_drift:
            moderate.append(f"{f['feature']} ({value:.2f})")
            continue
        if f["feature"] in cfg.drift_ignore:
            why = "it grows by construction as time passes (drift_ignore)"
        elif f.get("importance_rank", 1) > cfg.drift_top_features:
            why = (
                f"importance rank {f['importance_rank']}, outside the model's "
                f"{cfg.drift_top_features} most important features"
            )
        else:
            continue  # a reason of the verdict
        out.append(
            {
                "kind": "feature_drift",
                "feature": f["feature"],
                "text": (
                    f"{f['feature']}: PSI {value:.2f}, above the large-shift line "
                    f"{cfg.psi_drift:g}; left out: {why}"
                ),
            }
        )
    if moderate:
        out.append(
            {
                "kind": "moderate_drift",
                "text": (
                    f"{len(moderate)} feature(s) with a moderate shift (PSI {cfg.psi_watch:g} to "
                    f"{cfg.psi_drift:g}), below the large-shift line: " + ", ".join(moderate[:8])
                ),
            }
        )
    for head, value in drifted["scores"].items():
        if np.isfinite(value) and cfg.psi_watch <= value < cfg.psi_drift:
            out.append(
                {
                    "kind": "score_drift",
                    "head": head,
                    "text": (
                        f"{head}: served scores moved moderately (PSI {value:.2f}), below the "
                        f"large-shift line {cfg.psi_drift:g}"
                    ),
                }
            )
    allowed = 1 - cfg.forecast_target
    for period, rows in forecasts.items():
        late = [r for r in rows if (r.get("churned_arr_error") or 0) > allowed]
        if late:
            r = late[-1]
            out.append(
                {
                    "kind": "forecast",
                    "text": (
                        f"churned ARR forecast per {period}: off by {r['churned_arr_error']:.0%} "
                        f"at {r['as_of']} (forecast {r['churned_arr_forecast']:,.0f}, actual "
                        f"{r['churned_arr_actual']:,.0f}), {len(late)} of {len(rows)} "
                        f"{period}(s) beyond the {allowed:.0%} target; not part of the verdict: "
                        "a few large contracts decide it (the calibration check judges events)"
                    ),
                }
            )
    return out


def monitor(
    data_dir: str | Path,
    predictions: pd.DataFrame,
    reference: Reference,
    model: ScoringModel,
    cfg: MonitorConfig | None = None,
    *,
    now: pd.Timestamp | str | None = None,
    future: str = "error",
) -> dict:
    """The whole report as a JSON-ready dict (see the module docstring).

    Outcomes and today's snapshot are built with ``model``'s feature configuration (its health
    scheme, plan mapping, product-feature columns and labels from activity), so drift compares
    the columns the model was trained on. ``now`` and ``future`` are the data options of
    :func:`scoring.snapshot.dated_snapshot`.
    """
    cfg = cfg or MonitorConfig()
    feature_cfg = snapshot.model_feature_config(model)
    heads = [h for h in LABELS if f"p_{h}" in predictions]
    satisfied = satisfaction_heads(predictions)  # the satisfaction heads: realised like these
    latest_date = predictions["as_of"].max()
    latest = predictions[predictions["as_of"] == latest_date]
    with open_data(data_dir, now=now, future=future) as ds:
        end = data_end(ds, feature_cfg)
        happened = outcomes(ds, predictions, end, feature_cfg)
        happened[satisfied] = satisfaction_outcomes(ds, predictions, end, satisfied)
        current = snapshot.dated_snapshot(ds, latest_date, model).rows
    joined = pd.concat(
        [predictions.reset_index(drop=True), happened.drop(columns=["account_id", "as_of"])],
        axis=1,
    )
    names = model.bundle.spec.names
    realised = realised_vs_predicted(joined, [*heads, *satisfied], cfg)
    drifted = drift(reference, current, latest, names, heads, cfg)
    level, reasons = verdict(realised, drifted, cfg)
    forecasts = forecast_accuracy(joined)
    return {
        "verdict": level,
        "reasons": reasons,
        "left_out": left_out(realised, drifted, forecasts, cfg),
        "model": reference.model,
        "data": str(Path(data_dir).resolve()),
        "data_end": str(end.date()),
        "logged": {
            "predictions": int(len(predictions)),
            "as_of_dates": [
                str(pd.Timestamp(t).date()) for t in sorted(predictions["as_of"].unique())
            ],
            "model_versions": sorted(predictions["model_version"].astype(str).unique().tolist()),
        },
        "realised_vs_predicted": realised,
        "forecast_accuracy": forecasts,
        "forecast_target": cfg.forecast_target,
        # the health forecasts against the score logged about their horizon later
        "health_forecasts": health_forecast_accuracy(predictions),
        "drift": drifted,
        "config": cfg.model_dump(mode="json"),
    }


def reference_for(model) -> Reference:
    """The champion's training window, read again from the features it was trained on.

    Raises:
        FileNotFoundError: When the model's run is unknown or its features are gone.

    """
    from mlflow.tracking import MlflowClient

    from features.store import SnapshotStore

    if not model.run_id:
        raise FileNotFoundError(f"{model.uri}: no training run recorded, so no training window")
    run = MlflowClient().get_run(model.run_id)
    path = run.data.tags.get("radar.source_path", "")
    if run.data.tags.get("radar.source_kind") != "snapshots" or not Path(path).exists():
        raise FileNotFoundError(
            f"{model.label} was trained on {path!r}, which is not a features folder here: "
            "cannot compare today's inputs with its training window"
        )
    start, end = run.data.params["split.train_start"], run.data.params["split.train_end"]
    frame = SnapshotStore.open(path).snapshots()
    frame = frame[frame["as_of"].between(pd.Timestamp(start), pd.Timestamp(end))]
    frame = frame.reset_index(drop=True)
    scores = model.bundle.predict(frame)
    renewal = f"p_{RENEWAL_LABEL}"
    if renewal in scores and "days_to_renewal" in frame:
        # As served and logged: renewal likelihood only where a renewal falls within the
        # window; scores of the other rows would compare two different populations.
        near = renewal_within_window(frame["days_to_renewal"])
        scores[renewal] = scores[renewal].where(near)
    return Reference(frame, scores, (start, end), model.label, importance(model.bundle))


def log_report(
    report: dict,
    paths: list[Path],
    experiment: str = "renewal-radar",
    started: float | None = None,
) -> str:
    """The report as an MLflow run (kind ``monitor``): verdict as a tag, files as artifacts.

    ``started`` (epoch seconds): when the monitoring job started, the run's start; the run's
    description says the verdict, its reasons and what it left out.
    """
    import mlflow  # MLflow: off the import path until a report is logged

    from training.run_notes import DESCRIPTION_TAG, job_run
    from training.tracking import use_experiment

    found = use_experiment(experiment, mlflow.get_tracking_uri())
    lines = [
        f"Monitor of {report['model']} at {report['drift']['current_as_of']}: verdict "
        f"{report['verdict']}.",
        *(f"- {r['level']}: {r['text']}" for r in report["reasons"]),
        *(f"- left out: {r['text']}" for r in report.get("left_out", [])),
    ]
    name = f"monitor-{report['drift']['current_as_of']}"
    with job_run(name, found.experiment_id, started) as run:
        mlflow.set_tags(
            {
                KIND_TAG: "monitor",
                "radar.verdict": report["verdict"],
                DESCRIPTION_TAG: "\n\n".join([lines[0], "\n".join(lines[1:])]).strip(),
            }
        )
        mlflow.log_params({"model": report["model"], "data": report["data"]})
        for head, r in report["realised_vs_predicted"].items():
            ratio = (r.get("recent") or {}).get("ratio")
            if ratio is not None:
                mlflow.log_metric(f"{head}/predicted_over_observed", ratio)
        for head, value in report["drift"]["scores"].items():
            if np.isfinite(value):
                mlflow.log_metric(f"{head}/score_psi", value)
        for name, r in report.get("health_forecasts", {}).items():
            for k in ("mae", "mae_same_as_today", "coverage"):
                if r.get(k) is not None:
                    mlflow.log_metric(f"{name}/{k}", r[k])
        for p in paths:
            mlflow.log_artifact(str(p))
    return run.info.run_id
