"""The one chart helper: inline SVG for the pages, the brief and the KPI page.

A sparkline is plain SVG (a page draws dozens, so no plotting library); the brief's small charts
and the KPI trend are drawn by matplotlib's SVG backend (one small figure per thread, reused: a
chart costs ~2 ms). matplotlib is imported on first use (it is slow to import, and the service
draws no matplotlib chart until a brief is asked for).
"""

from __future__ import annotations

import io
import math
import threading

import numpy as np

_local = threading.local()


def sparkline(values: list[float | None], width: int = 120, height: int = 28) -> str:
    """An inline SVG line of ``values`` (None are gaps); the last point marked."""
    known = [v for v in values if v is not None and not math.isnan(v)]
    if not known:
        return ""
    lo, hi = min(known), max(known)
    span = hi - lo or 1.0
    step = width / max(len(values) - 1, 1)
    points = [
        (i * step, height - 3 - (v - lo) / span * (height - 6))
        for i, v in enumerate(values)
        if v is not None and not math.isnan(v)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    x, y = points[-1]
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="trend from {lo:.3g} to {hi:.3g}">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{line}"/>'
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="currentColor"/></svg>'
    )


def inline_svg(fig, css_class: str, label: str) -> str:
    """A matplotlib figure as an inline ``<svg>`` element (no XML prolog, no date)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, transparent=True)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    return svg.replace("<svg ", f'<svg class="{css_class}" role="img" aria-label="{label}" ', 1)


def _small_figure():
    """The reusable small figure, axes and line of the calling thread."""
    if not hasattr(_local, "chart"):
        from matplotlib.figure import Figure  # slow to import: on first chart only

        fig = Figure(figsize=(2.2, 0.6), dpi=72)
        ax = fig.add_axes((0.02, 0.12, 0.96, 0.76))
        (line,) = ax.plot([], [], lw=1.6, color="#2b6cb0")
        ax.set_axis_off()
        _local.chart = (fig, ax, line)
    return _local.chart


def line_chart(values: list[float | None], label: str) -> str:
    """A small inline SVG line chart of ``values`` (None are gaps), or '' under two known."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(known) < 2:
        return ""
    fig, ax, line = _small_figure()
    line.set_data([i for i, _ in known], [v for _, v in known])
    ax.set_xlim(-0.5, len(values) - 0.5)
    lo, hi = min(v for _, v in known), max(v for _, v in known)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    ax.set_ylim(lo - pad, hi + pad)
    return inline_svg(fig, "chart", label)


def panels(
    labels: list[str], panels: list[tuple[str, str, list[tuple[str, str, list, float]]]]
) -> str:
    """Side-by-side line panels over ``labels``, each with its dashed target lines.

    ``panels`` holds (title, y label, lines); a line is (name, colour, values, target), values
    as fractions (None a gap), drawn as percentages.
    """
    from matplotlib.figure import Figure  # slow to import: on first chart only

    fig = Figure(figsize=(8, 2.8), dpi=80)
    axes = fig.subplots(1, len(panels))
    x = np.arange(len(labels))
    for ax, (title, ylabel, lines) in zip(np.atleast_1d(axes), panels, strict=True):
        for name, color, values, target in lines:
            ys = [np.nan if v is None else v * 100 for v in values]
            ax.plot(x, ys, marker="o", label=name, color=color)
            ax.axhline(target * 100, ls="--", lw=1, color=color, alpha=0.6)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x, labels, fontsize=8)
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return inline_svg(fig, "kpi-chart", "KPI trend")
