"""The account brief as HTML (print-friendly), Markdown or PDF; charts as inline SVG.

Charts come from :mod:`reports.charts`, templates from :mod:`reports.templating`.
The PDF is headless Chromium's print-to-PDF of the HTML, driven by Playwright
(Debian's ``chromium`` package, or ``$RADAR_CHROMIUM``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from html import escape
from pathlib import Path

from features import words as w
from features.io import atomic_file
from reports.brief import Brief
from reports.charts import line_chart
from reports.templating import environment

FORMATS = (".html", ".md", ".pdf")
# Who reads the brief: the account team (everything), or the customer (value, benchmarks and
# the plan ahead; no risk, model points, plays, talk track or internal tasks).
AUDIENCES = ("internal", "customer")
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


def _context(brief: Brief, audience: str = "internal") -> dict:
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}; use one of {', '.join(AUDIENCES)}")
    return {
        "b": brief,
        "sections": w.BRIEF_SECTIONS,
        "customer_sections": w.CUSTOMER_SECTIONS,
        "severities": w.SEVERITY_ORDER,
        "customer": audience == "customer",
        "no_roi": w.NO_ROI,
    }


def render_html(brief: Brief, root: str = "", audience: str = "internal") -> str:
    """The brief as one self-contained, print-friendly HTML page, for ``audience``."""
    charts = {f.metric: line_chart(f.series, f.label) for f in brief.value.figures}
    context = _context(brief, audience)
    return environment().get_template("brief.html").render(root=root, charts=charts, **context)


def render_markdown(brief: Brief, audience: str = "internal") -> str:
    """The brief as Markdown (no charts: their figures are in the tables), for ``audience``."""
    text = environment().get_template("brief.md").render(**_context(brief, audience))
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


# Each PDF page's footer: the account and "page N of M" (Chromium fills the two spans).
PDF_FOOTER = (
    '<div style="width: 100%; font: 8px system-ui, sans-serif; color: #5b6478; '
    'padding: 0 10mm; display: flex; justify-content: space-between;">'
    "<span>{title}</span><span>page <span class=pageNumber></span> of "
    "<span class=totalPages></span></span></div>"
)


def print_pdf(page, html: str, path: Path | None = None) -> bytes:
    """Print ``html`` to a PDF (A4, backgrounds kept, page numbers); its bytes, also at ``path``.

    The page flows from section to section (a section breaks across pages rather than leaving
    the rest of a page empty); a heading stays with what follows it, a table row is never cut.
    """
    page.set_content(html, wait_until="load")
    title = escape(page.title())
    return page.pdf(
        path=None if path is None else str(path),
        format="A4",
        print_background=True,
        display_header_footer=True,
        header_template="<span></span>",
        footer_template=PDF_FOOTER.format(title=title),
        margin={"top": "12mm", "bottom": "16mm", "left": "10mm", "right": "10mm"},
    )


def write_briefs(briefs: Iterable[tuple[Brief, Path]], audience: str = "internal") -> list[Path]:
    """Write each brief to its path, in the format of its suffix; each file whole or absent."""
    written: list[Path] = []
    pending = list(briefs)
    for _, path in pending:
        if path.suffix.lower() not in FORMATS:
            raise ValueError(f"{path}: unknown brief format; use {', '.join(FORMATS)}")
    _context(None, audience)  # an unknown audience refused before any file is written
    needs_pdf = any(p.suffix.lower() == ".pdf" for _, p in pending)
    with pdf_printer() if needs_pdf else _no_printer() as page:
        for brief, path in pending:
            path.parent.mkdir(parents=True, exist_ok=True)
            kind = path.suffix.lower()
            with atomic_file(path) as tmp:
                if kind == ".html":
                    tmp.write_text(render_html(brief, audience=audience))
                elif kind == ".md":
                    tmp.write_text(render_markdown(brief, audience))
                else:
                    print_pdf(page, render_html(brief, audience=audience), tmp)
            written.append(path)
    return written


@contextmanager
def _no_printer() -> Iterator[None]:
    yield None
