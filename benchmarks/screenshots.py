"""Screenshots of the CSM pages for the docs: docs/img/PAGE-WIDTH.png at 1,400 and 390 px.

Uses the demo's outputs (`make demo`: build/demo/data, features, mlflow.db, predictions): makes
the monitor report if it is not there (`radar monitor`), starts a real `radar serve` on
loopback, and photographs the portfolio, an account, its brief (internal and customer
versions), the KPI page and the monitor page in headless Chromium, at a laptop's and a phone's
width. Each page is also checked not to be wider than the screen (document scrollWidth).

    .venv/bin/python benchmarks/screenshots.py [--demo build/demo] [--out docs/img]
        [--account ID] [--max-height 2400] [--url http://127.0.0.1:PORT (a running service)]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from reports.brief_render import CHROMIUM_FLAGS, chromium_path

WIDTHS = (1400, 390)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def radar(*args: str) -> None:
    """Run a `radar` command of this interpreter; stop on failure."""
    subprocess.run([sys.executable, "-m", "radar.cli", *args], check=True)


def monitor_report(demo: Path) -> Path:
    """The demo's monitor folder, with its report made first if missing."""
    out = demo / "monitor"
    if not (out / "monitor.json").exists():
        uri = f"sqlite:///{demo / 'mlflow.db'}"
        log = demo / "predictions"
        if not log.exists():
            scores = str(demo / "scores.parquet")
            radar("score", "--data", str(demo / "data"), "--as-of", "latest", "--out", scores,
                  "--tracking-uri", uri, "--log", str(log))  # fmt: skip
        radar("monitor", "--data", str(demo / "data"), "--out", str(out), "--log", str(log),
              "--tracking-uri", uri)  # fmt: skip
    return out


def serve(demo: Path, monitor: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """A `radar serve` of the demo on a free port, once ready."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "radar.cli", "serve", "--features", str(demo / "features"),
        "--tracking-uri", f"sqlite:///{demo / 'mlflow.db'}", "--port", str(port),
        "--workers", "1", "--monitor", str(monitor),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RADAR_API_KEY"}
    env["BENTOML_HOME"] = str(log.parent / "bentoml")
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.terminate()
    raise SystemExit(f"the server was not ready in 300 s: {log.read_text()[-2000:]}")


def shoot(url: str, account: str | None, out: Path, max_height: int) -> list[str]:
    """Photograph each page at each width; the lines to print (name, size, overflow)."""
    from playwright.sync_api import sync_playwright

    lines = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.set_default_timeout(120_000)
                page.goto(f"{url}/ui/")
                first = account or page.locator("tr.account-row").first.get_attribute(
                    "data-account"
                )
                pages = {
                    "portfolio": "/ui/",
                    "account": f"/ui/accounts/{first}",
                    "brief": f"/ui/accounts/{first}/brief",
                    "brief-customer": f"/ui/accounts/{first}/brief?audience=customer",
                    "kpis": "/ui/portfolio/kpis",
                    "monitor": "/ui/monitor",
                }
                for name, path in pages.items():
                    answer = page.goto(url + path)
                    if answer is None or answer.status != 200:  # never photograph an error
                        raise SystemExit(f"{path}: HTTP {answer and answer.status}")
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    high = page.evaluate("document.documentElement.scrollHeight")
                    target = out / f"{name}-{width}.png"
                    clip = {"x": 0, "y": 0, "width": width, "height": min(high, max_height)}
                    page.screenshot(path=str(target), full_page=True, clip=clip)
                    lines.append(f"{target}  page {wide} x {high} px at a {width} px screen")
                    if wide > width:
                        lines.append(f"  WIDER THAN THE SCREEN: {wide} > {width}")
                page.close()
        finally:
            browser.close()
    return lines


def main() -> None:
    """Parse the arguments, make the report, serve, photograph, stop."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=Path("build/demo"))
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--account", help="the account to show (default: the worklist's first)")
    ap.add_argument("--max-height", type=int, default=2400, help="crop taller pages (px)")
    ap.add_argument("--url", help="a running service without an API key (else one is started)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.url:
        for line in shoot(args.url, args.account, args.out, args.max_height):
            print(line)
        return
    monitor = monitor_report(args.demo)
    proc, url = serve(args.demo, monitor, args.demo / "screenshots-server.log")
    try:
        for line in shoot(url, args.account, args.out, args.max_height):
            print(line)
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
