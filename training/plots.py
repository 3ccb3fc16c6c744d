"""Figures: per head calibration, lift, ROC/PR, importance, SHAP summary; per account drivers."""

from __future__ import annotations

import sys
import warnings

import matplotlib

if "ipykernel" not in sys.modules:  # files only, never a window; notebooks keep their inline plots
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from training.metrics import calibration_curve, decile_lift  # noqa: E402


def _predictors(test):
    return [c for c in test.columns if c not in ("y", "segment")]


def _xy(test, name):
    ok = test["y"].notna().to_numpy() & test[name].notna().to_numpy()
    return test["y"][ok].to_numpy(dtype=float), test[name][ok].to_numpy(dtype=float)


def calibration_figure(label: str, test) -> Figure:
    """Observed rate against mean predicted probability, per equal-count bin."""
    fig, ax = plt.subplots(figsize=(5, 5))
    top = 0.0
    for name in _predictors(test):
        y, p = _xy(test, name)
        mean_p, rate = calibration_curve(y, p)
        ax.plot(mean_p, rate, marker="o", label=name)
        top = max(top, mean_p.max(), rate.max())
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="perfect")
    ax.set(
        xlabel="mean predicted probability", ylabel="observed rate", title=f"{label}: calibration"
    )
    ax.legend()
    fig.tight_layout()
    return fig


def lift_figure(label: str, test) -> Figure:
    """Observed rate per probability decile relative to the base rate."""
    fig, ax = plt.subplots(figsize=(6, 4))
    names = _predictors(test)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        y, p = _xy(test, name)
        ax.bar(np.arange(1, 11) + i * width, decile_lift(y, p), width=width, label=name)
    ax.axhline(1.0, color="grey", linestyle="--")
    ax.set(xlabel="decile (1 = highest predicted)", ylabel="lift", title=f"{label}: lift by decile")
    ax.legend()
    fig.tight_layout()
    return fig


def roc_pr_figure(label: str, test) -> Figure:
    """ROC and precision-recall curves side by side."""
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4.5))
    for name in _predictors(test):
        y, p = _xy(test, name)
        fpr, tpr, _ = roc_curve(y, p)
        roc.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(y, p)
        pr.plot(recall, precision, label=name)
    roc.plot([0, 1], [0, 1], color="grey", linestyle="--")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{label}: ROC")
    pr.set(xlabel="recall", ylabel="precision", title=f"{label}: precision-recall")
    roc.legend()
    fig.tight_layout()
    return fig


def importance_figure(label: str, importance, top: int = 20) -> Figure:
    """Total split gain of the most important features."""
    imp = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(imp) + 1))
    ax.barh(imp.index, imp.to_numpy())
    ax.set(xlabel="total gain", title=f"{label}: feature importance")
    fig.tight_layout()
    return fig


def shap_summary_figure(label: str, contributions, rows, names) -> Figure:
    """SHAP beeswarm summary from LightGBM's TreeSHAP contributions (log-odds)."""
    import shap

    # summary_plot draws on the current figure: without a fresh one it would draw over (and
    # return) whatever figure was made last, e.g. the importance bars.
    fig = plt.figure()
    with warnings.catch_warnings():
        # A column missing on every sampled row (a table the data lacks) colours its dots
        # with nanmin/nanmax and NumPy says "All-NaN slice encountered" three times: the
        # plot is right (grey dots), the warning is noise to a user.
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        # SHAP seeds NumPy's global generator itself (its colour jitter); NumPy 2.4 warns it
        # about a future change that is SHAP's to make, not the user's.
        warnings.filterwarnings("ignore", "The NumPy global RNG was seeded", FutureWarning)
        shap.summary_plot(
            contributions[:, :-1], rows, feature_names=names, show=False, max_display=20
        )
    fig = plt.gcf()  # summary_plot resizes the current figure; it is still ``fig``
    fig.suptitle(f"{label}: SHAP summary (log-odds)")
    fig.tight_layout()
    return fig


def global_drivers_figure(label: str, table, top: int = 15) -> Figure:
    """Average effect size of the most influential features, in probability points."""
    t = table[table["head"] == label].head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(t) + 1))
    colors = ["#c0392b" if v > 0 else "#2874a6" for v in t["mean_points"]]
    ax.barh(t["description"], t["mean_abs_points"], color=colors)
    ax.set(
        xlabel="average effect, probability points (red: raises on average, blue: lowers)",
        title=f"{label}: top drivers",
    )
    fig.tight_layout()
    return fig


def waterfall_figure(record, label: str) -> Figure:
    """One account's probability for head ``label``, built up from the typical account's.

    ``record`` is a scoring record (``radar score``'s columns): baseline, top drivers, the
    other features together, and the served probability at the end.
    """
    drivers = record[f"drivers_{label}"]
    steps = [(f"{d['feature']} = {d['value']}", d["effect"]) for d in drivers]
    steps.append(("all other features", record[f"remainder_{label}"]))
    start = record[f"baseline_{label}"]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(steps) + 1.6))
    level = start
    names = ["typical account"]
    ax.barh(0, start, color="#9aa5b1")
    for i, (name, effect) in enumerate(steps, start=1):
        ax.barh(i, effect, left=level, color="#c0392b" if effect > 0 else "#2874a6")
        level += effect
        names.append(name)
    ax.barh(len(steps) + 1, level, color="#1d2433")
    names.append("this account")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set(
        xlabel="probability (red raises it, blue lowers it)",
        title=f"{record['account_id']}: {label} {level:.1%} (typical account {start:.1%})",
    )
    fig.tight_layout()
    return fig


def backtest_figure(metric: str, table, confidence: float = 0.95) -> Figure:
    """One panel per head: ``metric`` at each backtest origin, a line and band per predictor."""
    t = table[table["metric"] == metric]
    heads = list(dict.fromkeys(t["head"]))
    cols = min(2, len(heads))
    rows = -(-len(heads) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.6 * rows), squeeze=False)
    for ax, head in zip(axes.flat, heads, strict=False):
        for name, g in t[t["head"] == head].groupby("predictor", sort=False):
            g = g.sort_values("origin")
            (line,) = ax.plot(g["origin"], g["value"], marker="o", label=name)
            ax.fill_between(g["origin"], g["low"], g["high"], color=line.get_color(), alpha=0.15)
        ax.set(title=head, xlabel="origin (as-of date tested)", ylabel=metric)
        ax.tick_params(axis="x", labelrotation=30)
    for ax in list(axes.flat)[len(heads) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize="small")
    fig.suptitle(f"Backtest: {metric} by origin (bands: {confidence:.0%} bootstrap intervals)")
    fig.tight_layout()
    return fig
