"""A real headless Chromium (Debian's package, installed by `make test`) driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# One lookup of the binary for the tests and the brief's PDF ($RADAR_CHROMIUM, else the PATH).
from reports.brief_render import CHROMIUM_FLAGS, chromium_path

SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
FLAGS = CHROMIUM_FLAGS
PHONE = 390  # px: a phone's width, where no page may be wider than the screen
# axe-core impacts a page may not have (https://github.com/dequelabs/axe-core/blob/develop/doc/issue_impact.md)
BLOCKING = ("serious", "critical")


@contextmanager
def browser_page(width: int = 1366, height: int = 900) -> Iterator:
    """A fresh page of a fresh headless Chromium, laptop-sized."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as build/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page) -> list[str]:
    """Serious and critical axe-core violations of the page, one line each (none: [])."""
    # axe-core itself (axe.min.js, pinned with axe-playwright-python), injected offline.
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in found
        if v["impact"] in BLOCKING
    ]


# The elements that reach past the viewport's right edge: the first few, named for the message.
WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(0, 5)
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : '')
    + ' ' + Math.round(e.getBoundingClientRect().right))"""


def phone_width(page) -> tuple[int, list[str]]:
    """The page's width (document scrollWidth) at a phone's 390 px and what sticks out past it,
    the viewport then restored."""
    before = page.viewport_size
    page.set_viewport_size({"width": PHONE, "height": 844})
    try:
        return page.evaluate("document.documentElement.scrollWidth"), page.evaluate(WIDE)
    finally:
        page.set_viewport_size(before)


def check_page(page) -> None:
    """No serious or critical axe-core violation, and no wider than a 390 px phone."""
    assert axe_violations(page) == [], page.url
    width, wide = phone_width(page)
    assert width <= PHONE, (page.url, width, wide)
