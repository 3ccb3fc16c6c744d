"""Per-prediction drivers in probability points, and sentences a CSM can read.

LightGBM's ``pred_contrib`` gives exact TreeSHAP values in log-odds of the raw model. A CSM
needs points of the *served* (calibrated) probability, and the effects must add up. Each
feature's log-odds contribution is scaled by the calibrator's average slope between the
baseline score and the account's score (the secant slope): effects keep SHAP's signs and
proportions, do not depend on any feature order, and add up exactly to the head's calibrated
probability minus the baseline. Because the calibrator is monotone with a bounded slope, the
secant slope is bounded too: effects never blow up when contributions cancel. Any cap of the
30-day probability at the 90-day one goes into the remainder, so baseline + drivers +
remainder = the served probability.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.catalogue import CONTEXT, FAMILIES, FEATURE_BY_NAME, SIGNAL, TIMING
from features.words import short_description
from training.model import SMALL_BATCH, Head, ModelBundle

# TreeSHAP costs ~0.1-0.2 ms per row and head: from a few hundred rows, threads pay off.
PARALLEL_ROWS = 256
SHOWN = 0.005  # effects under half a point are not shown (not a reason, not evidence)
OTHER = "other"  # features of a table of one's own, not in the catalogue
GROUPS = (TIMING, CONTEXT, *FAMILIES, OTHER)


@dataclass(frozen=True)
class HeadExplanation:
    """Effects of every feature on one head's served probability, for a batch of rows.

    Attributes:
        baseline: Probability of the average account (the calibrated expected score).
        effects: (rows, features) effects in probability (0.01 = 1 point).
        remainder_cap: What ``enforce_horizon_order`` moved where the 30-day head said more
            than the 90-day one (both take their average), part of the remainder.
        probability: The served probability.

    """

    baseline: float
    effects: np.ndarray
    remainder_cap: np.ndarray
    probability: np.ndarray


def contributions(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """TreeSHAP values (``pred_contrib``), spread over the cores in row chunks.

    LightGBM's own threading helps little for contributions; independent chunks in Python
    threads (ctypes releases the GIL) use both cores. One row costs no thread start-up.
    """
    threads = 1 if len(x) < PARALLEL_ROWS else os.cpu_count() or 1
    if threads == 1:
        return booster.predict(x, pred_contrib=True, num_threads=1)
    chunks = np.array_split(x, threads * (4 if len(x) >= SMALL_BATCH else 1))
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(lambda c: booster.predict(c, pred_contrib=True, num_threads=1), chunks)
        return np.vstack(list(parts))


def explain_head(
    head: Head, x: np.ndarray, served: np.ndarray, contrib: np.ndarray | None = None
) -> HeadExplanation:
    """Effects of every feature on one head's calibrated probability, for the rows of ``x``.

    ``contrib`` is the head's :func:`contributions` for ``x`` when the caller has them.
    """
    if contrib is None:
        contrib = contributions(head.booster, x)
    phi, base_score = contrib[:, :-1], contrib[:, -1]
    score = base_score + phi.sum(axis=1)
    p_base, p_score = head.calibrator(base_score), head.calibrator(score)
    step = score - base_score
    flat = np.abs(step) < 1e-9
    slope = (p_score - p_base) / np.where(flat, 1.0, step)
    if flat.any():  # where the score is the baseline, the secant is the local slope
        h = 1e-3
        local = (head.calibrator(base_score + h) - head.calibrator(base_score - h)) / (2 * h)
        slope = np.where(flat, local, slope)
    return HeadExplanation(
        baseline=float(p_base[0]) if len(p_base) else float("nan"),
        effects=phi * slope[:, None],
        remainder_cap=served - p_score,
        probability=served,
    )


def explain(
    bundle: ModelBundle,
    x: np.ndarray,
    served: pd.DataFrame | dict[str, np.ndarray],
    contrib: dict[str, np.ndarray] | None = None,
) -> dict[str, HeadExplanation]:
    """Explanations of every head of ``bundle`` for the feature matrix ``x``.

    ``served`` holds the served probabilities, ``p_<label>`` per head; ``contrib`` the heads'
    :func:`contributions`, when already computed.
    """
    contrib = contrib or {}
    return {
        label: explain_head(head, x, np.asarray(served[f"p_{label}"]), contrib.get(label))
        for label, head in bundle.heads.items()
    }


@dataclass(frozen=True)
class Grouping:
    """How the features of a spec add up: the timing line, the profile, one sum per family.

    Attributes:
        group: Per feature, its index in ``GROUPS``.
        member: (features, groups) 0/1 matrix: effects @ member = the groups' effects.
        signal: Per feature, whether it is a signal with a known direction (may be cited).

    """

    group: np.ndarray
    member: np.ndarray
    signal: np.ndarray

    @classmethod
    def of(cls, names: list[str]) -> Grouping:
        """The grouping of the features ``names`` (a bundle's spec order)."""
        index = {g: i for i, g in enumerate(GROUPS)}
        group = []
        for name in names:
            f = FEATURE_BY_NAME.get(name)
            if f is None:
                group.append(index[OTHER])
            elif f.role in (TIMING, CONTEXT):
                group.append(index[f.role])
            else:
                group.append(index[f.family])
        g = np.asarray(group)
        member = np.zeros((len(names), len(GROUPS)))
        member[np.arange(len(names)), g] = 1.0
        signal = np.array(
            [name in FEATURE_BY_NAME and FEATURE_BY_NAME[name].role == SIGNAL for name in names]
        )
        return cls(g, member, signal)

    @property
    def timing(self) -> np.ndarray:
        """Per feature, whether it is part of the timing line."""
        return self.group == GROUPS.index(TIMING)

    def effects(self, ex: HeadExplanation) -> np.ndarray:
        """(rows, groups) effects; the 30-day cap goes to the timing line (it is the horizon).

        Exact sums: baseline + every group = the served probability.
        """
        out = ex.effects @ self.member
        out[:, GROUPS.index(TIMING)] += ex.remainder_cap
        return out


def evidence(
    effects: np.ndarray,
    x: np.ndarray,
    grouping: Grouping,
    typical: np.ndarray,
    direction: np.ndarray,
    family_effects: np.ndarray,
    k: int = 2,
) -> np.ndarray:
    """Per row and family, the columns of its ``k`` strongest pieces of evidence (-1: none).

    A feature is evidence for its family when it is a signal whose value is known, its effect
    is at least half a point in the family's direction, and the value sits on the side of the
    training median that the feature's known direction makes bad (for a raise) or good (for a
    lowering): "seat use 31% (typical 62%) raises churn risk", never "95% raises" it.

    Args:
        effects: (rows, features) effects of one head.
        x: (rows, features) feature matrix.
        grouping: The spec's grouping.
        typical: Per feature, the training median (NaN when unknown).
        direction: Per feature, its known direction on this head (+1, -1, 0).
        family_effects: (rows, groups) from :meth:`Grouping.effects`.
        k: Pieces of evidence per family at most.

    Returns:
        (rows, families, k) column indices, strongest first; -1 where there is none.

    """
    sign = np.sign(effects)
    side = np.sign(x - typical) * direction  # +1: the value is on the risk-raising side
    ok = grouping.signal & ~np.isnan(x) & (np.abs(effects) >= SHOWN) & (side * sign > 0)
    first = GROUPS.index(FAMILIES[0])
    out = np.full((len(effects), len(FAMILIES), k), -1)
    for i in range(len(FAMILIES)):
        cols = np.flatnonzero(grouping.group == first + i)
        if not len(cols):
            continue
        same = sign[:, cols] == np.sign(family_effects[:, [first + i]])
        score = np.where(ok[:, cols] & same, np.abs(effects[:, cols]), 0.0)
        kk = min(k, len(cols))
        top = np.argsort(-score, axis=1, kind="stable")[:, :kk]
        chosen = np.where(take_per_row(score, top) > 0, cols[top], -1)
        out[:, i, :kk] = chosen
    return out


def take_per_row(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[i, idx[i]]`` for every row i (``np.take_along_axis`` on axis 1, cheaper for few rows)."""
    return a[np.arange(len(a))[:, None], idx]


def top_drivers(effects: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest absolute effects per row, largest first."""
    k = min(k, effects.shape[1])
    size = np.abs(effects)
    idx = np.argpartition(-size, k - 1, axis=1)[:, :k]
    return take_per_row(idx, np.argsort(-take_per_row(size, idx), axis=1, kind="stable"))


def global_drivers(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    """Average effect of every feature on every head over ``frame``'s rows, in points.

    Columns: head, feature, family, description, mean_abs_points (how much it moves the
    probability, either way), mean_points (its average push), raises_share (share of rows where
    it raises the probability). Sorted by head, then mean_abs_points.
    """
    x = bundle.spec.matrix(frame)
    served = bundle.predict(frame)
    rows = []
    for label, ex in explain(bundle, x, served).items():
        for j, name in enumerate(bundle.spec.names):
            e = ex.effects[:, j]
            known = name in FEATURE_BY_NAME
            rows.append(
                {
                    "head": label,
                    "feature": name,
                    "family": FEATURE_BY_NAME[name].family if known else "",
                    "description": short_description(name) if known else name,
                    "mean_abs_points": float(np.abs(e).mean() * 100),
                    "mean_points": float(e.mean() * 100),
                    "raises_share": float((e > 0).mean()),
                }
            )
    out = pd.DataFrame(rows)
    return out.sort_values(["head", "mean_abs_points"], ascending=[True, False], ignore_index=True)


@dataclass(frozen=True)
class GlobalExplanation:
    """What :func:`write_global` wrote."""

    table: pd.DataFrame
    files: list[Path]


def write_global(
    bundle: ModelBundle, frame: pd.DataFrame, out: str | Path, sample: int = 5000, seed: int = 0
) -> GlobalExplanation:
    """Global drivers table (CSV) and a SHAP summary PNG per head, for a sample of ``frame``."""
    from features.io import atomic_file
    from training import plots

    rows = frame.sample(min(sample, len(frame)), random_state=seed) if len(frame) else frame
    table = global_drivers(bundle, rows)
    out = Path(out)
    files = [out / "global_drivers.csv"]
    with atomic_file(files[0]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    x = bundle.spec.matrix(rows)
    for label, head in bundle.heads.items():
        figures = {
            "shap_summary": plots.shap_summary_figure(
                label, head.booster.predict(x, pred_contrib=True), x, bundle.spec.names
            ),
            "top_drivers": plots.global_drivers_figure(label, table),
        }
        for name, fig in figures.items():
            files.append(out / f"{label}_{name}.png")
            with atomic_file(files[-1]) as tmp:
                fig.savefig(tmp, format="png", dpi=100)
            plots.plt.close(fig)
    return GlobalExplanation(table, files)
