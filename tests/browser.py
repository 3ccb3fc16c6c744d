"""A real headless Chromium (Debian's package, installed by `make test`) driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
# As root, in a closed network: no sandbox, no background calls home.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The Chromium binary: $RADAR_CHROMIUM, else chromium on the PATH."""
    found = os.environ.get("RADAR_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise RuntimeError(
            "Chromium is not installed: `make test` installs Debian's chromium package "
            "(or set RADAR_CHROMIUM to a Chromium binary)"
        )
    return found


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
