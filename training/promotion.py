"""Promotion on evidence: the challenger replaces the champion when it is non-inferior.

Both versions score the challenger's own test rows; a paired bootstrap of those rows
(:mod:`training.intervals`) gives an interval for each difference, challenger minus champion,
per head, for ROC-AUC and log loss. One test window of a few thousand rows leaves ROC-AUC
uncertain by about +-0.02, so "higher by 0.0001" is no evidence either way: the rule is
non-inferiority within a margin (:class:`training.config.PromotionConfig`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from training.config import PromotionConfig
from training.intervals import bootstrap, interval
from training.metrics import binary_metrics
from training.model import ModelBundle
from training.registry import CHALLENGER, CHAMPION, load_bundle

log = logging.getLogger(__name__)

COMPARED = ("roc_auc", "log_loss")


@dataclass(frozen=True)
class Promotion:
    """The outcome of :func:`promote`.

    ``comparison`` has one row per head and metric: challenger, champion, difference
    (challenger - champion) with its interval, the allowed shortfall and whether it holds.
    """

    promoted: bool
    version: str
    previous_champion: str | None
    reason: str
    comparison: pd.DataFrame | None = None


def paired_comparison(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    settings: PromotionConfig,
) -> list[dict]:
    """ROC-AUC and log loss of both predictions, their difference and its paired interval.

    A row is ``ok`` when the worse end of the interval is within the margin: the challenger's
    ROC-AUC at most ``roc_auc_margin`` lower, its log loss at most ``log_loss_margin`` x the
    champion's higher.
    """
    new, old = binary_metrics(y, challenger, 0.5), binary_metrics(y, champion, 0.5)
    reps = bootstrap(
        y,
        {"challenger": challenger, "champion": champion},
        COMPARED,
        settings.resamples,
        settings.seed,
    )
    rows = []
    for metric in COMPARED:
        a, b = new[metric], old[metric]
        diff = None if a is None or b is None else a - b
        ci = interval(
            diff, reps["challenger"][metric] - reps["champion"][metric], settings.confidence
        )
        if metric == "roc_auc":
            margin = settings.roc_auc_margin
            ok = bool(np.isfinite(ci.low) and ci.low >= -margin)
        else:
            margin = settings.log_loss_margin * b
            ok = bool(np.isfinite(ci.high) and ci.high <= margin)
        rows.append(
            {
                "metric": metric,
                "challenger": a,
                "champion": b,
                "difference": ci.value,
                "low": ci.low,
                "high": ci.high,
                "margin": margin,
                "ok": ok,
            }
        )
    return rows


def compare_bundles(
    challenger: ModelBundle,
    champion: ModelBundle,
    frame: pd.DataFrame,
    settings: PromotionConfig,
) -> pd.DataFrame:
    """:func:`paired_comparison` for every head of the challenger, on ``frame``'s rows."""
    p_new, p_old = challenger.predict(frame), champion.predict(frame)
    rows = []
    for label in challenger.heads:
        if label not in frame:
            continue
        if f"p_{label}" not in p_old:
            rows.append({"head": label, "metric": "roc_auc", "ok": False, "missing": True})
            continue
        known = frame[label].notna().to_numpy()
        y = frame[label][known].to_numpy(dtype=float)
        for r in paired_comparison(
            y,
            p_new[f"p_{label}"].to_numpy()[known],
            p_old[f"p_{label}"].to_numpy()[known],
            settings,
        ):
            rows.append({"head": label, **r, "missing": False, "rows": len(y)})
    return pd.DataFrame(rows)


def shortfall_words(r, confidence: float) -> str:
    """Why one head and metric is not shown non-inferior, with its interval.

    "Not shown non-inferior" is not "worse": the challenger's point figure may be the better
    one while the interval still reaches past the margin (too few test rows to rule out a
    loss that large). The words say which.
    """
    if r.missing:
        return f"{r.head}: the champion has no such head to compare with"
    auc = r.metric == "roc_auc"
    name = "ROC-AUC" if auc else "log loss"
    better = r.difference > 0 if auc else r.difference < 0
    end = r.low if auc else r.high
    bound = f"{'-' if auc else '+'}{r.margin:.4f}"
    if not np.isfinite(end):
        why = "no interval (a resample held one class)"
    else:
        why = f"its {'lower' if auc else 'upper'} end {end:+.4f} is beyond the margin {bound}"
    point = "better" if better else ("equal" if r.difference == 0 else "worse")
    return (
        f"{r.head}: not shown non-inferior on {name}: challenger {r.challenger:.4f} vs champion "
        f"{r.champion:.4f}, difference {r.difference:+.4f} ({point} on these rows), "
        f"{confidence:.0%} interval {r.low:+.4f} .. {r.high:+.4f}: {why}"
    )


def window_words(params: dict) -> str:
    """The run's test window(s) in words: each head's own where the run logged them.

    Each head's gap follows its horizon, so the 30-day head tests later than the 90-day one:
    one window for all heads would misstate where a head was judged.
    """
    if params.get("split.kind") == "random":  # a table without time: its seeded test part
        return f"random test part (seed {params.get('split.seed')})"
    heads = sorted(
        k.removeprefix("split.").removesuffix(".test_start")
        for k in params
        if k.startswith("split.") and k.endswith(".test_start") and k.count(".") == 2
    )
    if not heads:
        return f"{params.get('split.test_start')}..{params.get('split.test_end')}"
    return ", ".join(
        f"{h} {params[f'split.{h}.test_start']}..{params.get(f'split.{h}.test_end')}" for h in heads
    )


def _shortfalls(table: pd.DataFrame, confidence: float) -> list[str]:
    return [shortfall_words(r, confidence) for r in table[~table["ok"]].itertuples(index=False)]


def promote(
    model_name: str,
    test_frame_for: Callable,
    version: str | None = None,
    settings: PromotionConfig | None = None,
) -> Promotion:
    """Move ``champion`` to ``version`` (default: the challenger) when it is non-inferior.

    Judged on the challenger's own test window, both versions scoring the same rows, head by
    head (see :func:`paired_comparison`). Without a champion, the version is promoted. The
    decision and its reason are tagged on the version; the table is logged to its run.

    Args:
        model_name: Registered model name.
        test_frame_for: Callable taking the challenger's training run and returning its test
            window rows (features and labels).
        version: Version to promote; default the one aliased ``challenger``.
        settings: Margins, resamples and confidence; default :class:`PromotionConfig`.

    """
    settings = settings or PromotionConfig()
    client = MlflowClient()
    if version is None:
        version = client.get_model_version_by_alias(model_name, CHALLENGER).version
    version = str(version)
    try:
        champion = str(client.get_model_version_by_alias(model_name, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        champion = None
    if champion == version:
        return Promotion(False, version, champion, f"version {version} is already the champion")
    if champion is None:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        reason = f"no champion yet: version {version} becomes the champion"
        client.set_model_version_tag(model_name, version, "promotion", reason)
        return Promotion(True, version, None, reason)

    run_id = client.get_model_version(model_name, version).run_id
    run = client.get_run(run_id)
    frame = test_frame_for(run)
    table = compare_bundles(
        load_bundle(f"models:/{model_name}/{version}"),
        load_bundle(f"models:/{model_name}/{champion}"),
        frame,
        settings,
    )
    client.log_dict(run_id, table.to_dict(orient="records"), f"promotion/vs_v{champion}.json")
    window = window_words(run.data.params)
    short = _shortfalls(table, settings.confidence)
    if short:
        reason = f"not promoted: on the test window(s) {window}, " + "; ".join(short)
        client.set_model_version_tag(model_name, version, "promotion", reason)
        return Promotion(False, version, champion, reason, table)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    reason = (
        f"version {version} replaces version {champion}: non-inferior on every head on the "
        f"test window(s) {window} (ROC-AUC within {settings.roc_auc_margin:g}, log loss within "
        f"{settings.log_loss_margin:.0%}, {settings.confidence:.0%} paired bootstrap intervals)"
    )
    client.set_model_version_tag(model_name, version, "promotion", reason)
    return Promotion(True, version, champion, reason, table)
