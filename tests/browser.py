"""A real headless Chromium (Debian's package, installed by `make test`) driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# One lookup of the binary for the tests and the brief's PDF ($RADAR_CHROMIUM, else the PATH).
from reports.brief_render import CHROMIUM_FLAGS, chromium_path

SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
FLAGS = CHROMIUM_FLAGS


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
