"""The account brief as HTML (print-friendly), Markdown or PDF; charts as inline SVG.

Charts are drawn by matplotlib's SVG backend (one small figure per thread, reused: a chart
costs ~2 ms). The PDF is headless Chromium's print-to-PDF of the HTML, driven by Playwright
(Debian's ``chromium`` package, or ``$RADAR_CHROMIUM``).
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from features import words as w
from features.io import atomic_file
from serving.brief import Brief
from serving.links import account_url

FORMATS = (".html", ".md", ".pdf")
# As root, in a closed network: no sandbox, no background calls home.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_local = threading.local()


def _chart_figure():
    """The reusable chart figure, axes and line of the calling thread."""
    if not hasattr(_local, "chart"):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(2.2, 0.6), dpi=72)
        ax = fig.add_axes((0.02, 0.12, 0.96, 0.76))
        (line,) = ax.plot([], [], lw=1.6, color="#2b6cb0")
        ax.set_axis_off()
        _local.chart = (fig, ax, line)
    return _local.chart


def chart_svg(values: list[float | None], label: str) -> str:
    """An inline SVG line chart of ``values`` (None are gaps), or '' when none is known."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(known) < 2:
        return ""
    fig, ax, line = _chart_figure()
    line.set_data([i for i, _ in known], [v for _, v in known])
    ax.set_xlim(-0.5, len(values) - 0.5)
    lo, hi = min(v for _, v in known), max(v for _, v in known)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    ax.set_ylim(lo - pad, hi + pad)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, transparent=True)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # inline: no XML prolog or doctype
    return svg.replace("<svg ", f'<svg class="chart" role="img" aria-label="{label}" ', 1)


@functools.cache
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("serving", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["account_url"] = account_url  # any id as one path segment
    env.filters["money"] = w.money
    env.filters["arr"] = w.arr_words
    env.filters["arr_of"] = w.arr_of
    env.filters["pct"] = w.pct
    env.filters["words"] = w.code
    env.filters["day"] = lambda v: w.DASH if v is None else w.day(v)
    env.filters["ordinal"] = lambda p: w.DASH if p is None else w.ordinal(w.whole_percentile(p))
    return env


def _context(brief: Brief) -> dict:
    return {"b": brief, "sections": w.BRIEF_SECTIONS, "severities": w.SEVERITY_ORDER}


def render_html(brief: Brief, root: str = "") -> str:
    """The brief as one self-contained, print-friendly HTML page."""
    charts = {f.metric: chart_svg(f.series, f.label) for f in brief.value.figures}
    return (
        _templates().get_template("brief.html").render(root=root, charts=charts, **_context(brief))
    )


def render_markdown(brief: Brief) -> str:
    """The brief as Markdown (no charts: their figures are in the tables)."""
    text = _templates().get_template("brief.md").render(**_context(brief))
    return re.sub(r"\n{3,}", "\n\n", text)


def chromium_path() -> str:
    """The Chromium binary: $RADAR_CHROMIUM, else chromium on the PATH."""
    found = os.environ.get("RADAR_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise RuntimeError(
            "a PDF needs Chromium: install Debian's chromium package (`make browser`) or set "
            "RADAR_CHROMIUM to a Chromium binary"
        )
    return found


@contextmanager
def pdf_printer() -> Iterator:
    """A headless Chromium page; ``print_pdf(page, html, path)`` prints with it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def print_pdf(page, html: str, path: Path) -> None:
    """Print ``html`` to a PDF at ``path`` (A4, backgrounds kept)."""
    page.set_content(html, wait_until="load")
    page.pdf(
        path=str(path),
        format="A4",
        print_background=True,
        margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"},
    )


def write_briefs(briefs: Iterable[tuple[Brief, Path]]) -> list[Path]:
    """Write each brief to its path, in the format of its suffix; each file whole or absent."""
    written: list[Path] = []
    pending = list(briefs)
    for _, path in pending:
        if path.suffix.lower() not in FORMATS:
            raise ValueError(f"{path}: unknown brief format; use {', '.join(FORMATS)}")
    needs_pdf = any(p.suffix.lower() == ".pdf" for _, p in pending)
    with pdf_printer() if needs_pdf else _no_printer() as page:
        for brief, path in pending:
            path.parent.mkdir(parents=True, exist_ok=True)
            kind = path.suffix.lower()
            with atomic_file(path) as tmp:
                if kind == ".html":
                    tmp.write_text(render_html(brief))
                elif kind == ".md":
                    tmp.write_text(render_markdown(brief))
                else:
                    print_pdf(page, render_html(brief), tmp)
            written.append(path)
    return written


@contextmanager
def _no_printer() -> Iterator[None]:
    yield None
