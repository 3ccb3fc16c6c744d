"""Figures of ``radar effects``: a forest plot of the effects and the uplift (Qini) curves."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from effects.data import NONE
from effects.estimate import EffectsResult


def forest_figure(result: EffectsResult) -> Figure:
    """Each play's effect on the outcome with its interval, beside the naive difference."""
    fig = Figure(figsize=(7, 1.2 + 0.6 * len(result.plays)))
    ax = fig.subplots()
    for i, p in enumerate(result.plays):
        e, n = p.effect, p.naive_difference
        ax.errorbar(
            e.estimate,
            i,
            xerr=[[e.estimate - e.low], [e.high - e.estimate]],
            fmt="o",
            color="C0",
            label="doubly robust" if i == 0 else None,
        )
        ax.errorbar(
            n.estimate,
            i + 0.25,
            xerr=[[n.estimate - n.low], [n.high - n.estimate]],
            fmt="s",
            color="C3",
            alpha=0.6,
            label="naive treated - untreated" if i == 0 else None,
        )
    ax.axvline(0, color="grey", linestyle="--")
    ax.set_yticks(range(len(result.plays)), [p.play for p in result.plays])
    ax.set(
        xlabel=f"change of {result.outcome} probability ({result.confidence:.0%} interval)",
        title="Effect of each play",
    )
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def uplift_figure(result: EffectsResult) -> Figure:
    """Cumulative DR-estimated reduction of the outcome, rows ranked by their estimated effect.

    One curve per play against the random ranking (the straight line): a curve above it
    means the estimate finds the rows the play helps most (the Qini curve, on DR scores).
    """
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    rows = result.rows
    for k, p in enumerate(result.plays):
        gain = (rows[f"gamma_{NONE}"] - rows[f"gamma_{p.play}"]).to_numpy()
        order = np.argsort(rows[f"cate_{p.play}"].to_numpy(), kind="stable")  # most negative first
        x = np.arange(1, len(gain) + 1) / len(gain)
        ax.plot(x, np.cumsum(gain[order]), color=f"C{k}", label=p.play)
        ax.plot([0, 1], [0, gain.sum()], color=f"C{k}", linestyle=":", alpha=0.6)
    ax.set(
        xlabel="share of account-months worked (ranked by estimated effect)",
        ylabel="cumulative outcomes prevented (DR)",
        title="Uplift (Qini) curves",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
