"""The account brief in a real headless Chromium and as JSON, against a real server; `radar brief`.

Every figure checked comes from elsewhere: the scoring record of `radar score` (the
``reference`` fixture), the store's snapshot table (peer percentiles recomputed with scipy) and
the raw files.
"""

from __future__ import annotations

import io
import json
import re

import httpx
import pandas as pd
import pytest
from pypdf import PdfReader
from scipy.stats import percentileofscore

from features import words as w
from features.store import SnapshotStore
from reports.brief_render import print_pdf
from tests.browser import browser_page, check_page, screenshot
from tests.cli import radar
from tests.serving.conftest import KEY
from tests.serving.pages.test_ui import sign_in

pytestmark = pytest.mark.slow


HALF_PAGE = 842 / 2  # points from the bottom of an A4 page: its middle


def lowest_text(pdf_page) -> float:
    """How far down a PDF page its text goes (points from the bottom), the footer left out."""
    heights = []

    def seen(text, cm, tm, _font, _size):
        if text.strip() and not text.strip().startswith("page "):
            heights.append(tm[4] * cm[1] + tm[5] * cm[3] + cm[5])  # y of tm in cm's space

    pdf_page.extract_text(visitor_text=seen)
    footer = 16 / 25.4 * 72  # the bottom margin, where the footer is
    return min(h for h in heights if h > footer)


def pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def peer_percentiles(store: SnapshotStore, account_id: str) -> dict[str, tuple[float | None, int]]:
    """Per benchmarked metric: the account's percentile among its segment and tier, and n."""
    snaps = store.snapshots()
    today = snaps[snaps["as_of"] == snaps["as_of"].max()]
    me = today[today["account_id"] == account_id].iloc[0]
    peers = today[
        (today["segment"] == me["segment"])
        & (today["plan_tier"] == me["plan_tier"])
        & (today["account_id"] != account_id)
    ]
    out = {}
    for metric in ("seat_utilisation", "feature_adoption", "nps_180d", "csat_90d"):
        values = peers[metric].dropna().astype(float).to_numpy()
        known = pd.notna(me[metric]) and len(values) >= 20
        out[metric] = (
            percentileofscore(values, float(me[metric]), kind="mean") if known else None,
            len(values),
        )
    return out


def test_brief_page_and_json_for_each_customer_type(server, reference, long_features, long_data):
    store = SnapshotStore.open(long_features)
    picked = reference.groupby("customer_type").head(1)
    assert set(picked["customer_type"]) == {
        "at_risk",
        "strategic",
        "growth_oriented",
        "satisfied_stable",
    }
    snaps = store.snapshots()
    today = snaps[snaps["as_of"] == snaps["as_of"].max()].set_index("account_id")
    tickets = pd.read_parquet(long_data / "support_tickets.parquet")
    with browser_page() as page:
        sign_in(page, server, f"/ui/accounts/{picked.index[0]}/brief")
        for account_id, r in picked.iterrows():
            page.goto(f"{server}/ui/accounts/{account_id}/brief")
            assert page.inner_text("#brief-name") == r["name"]
            for section in w.BRIEF_SECTIONS.values():
                assert page.locator("h2", has_text=section).count() == 1
            # Risks: the scoring record's words and figures.
            assert page.inner_text("#p-churn") == w.pct(r["p_churn_90d"])
            assert page.inner_text("#play-reason") == r["play_reason"]
            assert r["timing_churn_90d"]["sentence"] in page.inner_text("#timing")
            # Value: seats from the snapshot table.
            assert page.inner_text("#seats-purchased") == f"{today.loc[account_id, 'seats']:,.0f}"
            assert page.locator("#value-figures svg").count() >= 4  # charts drawn
            # Benchmarks recomputed here.
            for metric, (want, n) in peer_percentiles(store, account_id).items():
                row = page.locator(f"tr.benchmark[data-metric={metric}]")
                assert int(row.get_attribute("data-peers")) == n
                got = row.get_attribute("data-percentile")
                assert (got == "") if want is None else float(got) == pytest.approx(want)
            # Renewal plan: the record's date and amount.
            assert page.inner_text("#renewal-amount") == w.money(r["arr"])
            if pd.notna(r["renewal_date"]):
                assert page.inner_text("#renewal-date") == w.day(r["renewal_date"])
            # Talk track: the type's text.
            assert page.inner_text("#talk-approach")
            # Who: open tickets by severity from the raw table.
            t = tickets[
                (tickets["account_id"] == account_id) & (tickets["created_date"] <= r["as_of"])
            ]
            still_open = t["resolved_date"].isna() | (t["resolved_date"] > r["as_of"])
            for sev in w.SEVERITY_ORDER:
                shown = page.inner_text(f"[data-open={sev}]")
                assert shown == f"{int((still_open & (t['severity'] == sev)).sum())} {sev}"
            # The JSON says the same.
            got = httpx.get(
                f"{server}/v1/accounts/{account_id}/brief", headers={"X-API-Key": KEY}, timeout=60
            )
            assert got.status_code == 200, got.text
            brief = got.json()
            assert brief["risks"]["play_reason"] == r["play_reason"]
            assert brief["customer_type"] == r["customer_type"]
            assert {b["metric"]: b["peers"] for b in brief["benchmarks"]}["seat_utilisation"] == (
                peer_percentiles(store, account_id)["seat_utilisation"][1]
            )
            if r["customer_type"] == "at_risk":
                screenshot(page, "brief")
                check_page(page)
                # The page prints to a PDF with every section (Chromium's print-to-PDF),
                # numbered pages, none left half empty.
                pdf = PdfReader(io.BytesIO(print_pdf(page, page.content())))
                text = "\n".join(p.extract_text() for p in pdf.pages)
                for section in w.BRIEF_SECTIONS.values():
                    assert section in text
                pages = len(pdf.pages)
                for i, p in enumerate(pdf.pages[:-1], start=1):
                    assert f"page {i} of {pages}" in p.extract_text()
                    assert lowest_text(p) < HALF_PAGE, f"page {i} of {pages} is half empty"
                # The customer's version: the switch on the page.
                page.goto(f"{server}/ui/accounts/{account_id}/brief")
                page.click("#audience-customer")
                page.wait_for_url(re.compile(r"audience=customer"))
                shown = page.locator("h2").all_inner_texts()
                assert shown == list(w.CUSTOMER_SECTIONS.values())
                body = page.inner_text("main").lower()
                for internal in ("churn", "talk track", r["play_title"].lower()):
                    assert internal not in body, internal
                assert not re.search(r"\bplays?\b", body)
                check_page(page)
                screenshot(page, "brief-customer")
    assert httpx.get(f"{server}/v1/accounts/{account_id}/brief").status_code == 401
    missing = httpx.get(f"{server}/v1/accounts/NOPE/brief", headers={"X-API-Key": KEY}, timeout=30)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["status"] == 404 and missing.json()["detail"] == "account 'NOPE': unknown"


def test_radar_brief_writes_pdf_markdown_and_a_folder(registry, long_data, reference, tmp_path):
    account = reference.index[0]
    as_of = str(reference["as_of"].iloc[0])[:10]
    pdf = tmp_path / "brief.pdf"
    out = radar(
        "brief", "--data", str(long_data), "--account", account, "--as-of", as_of,
        "--out", str(pdf), "--tracking-uri", registry, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = pdf_text(pdf.read_bytes())
    for section in w.BRIEF_SECTIONS.values():
        assert section in text
    assert reference.loc[account, "name"] in text
    assert "page 1 of" in text  # numbered pages
    # Several accounts into a folder, as Markdown, in the customer's version: the customer's
    # sections, none of the internal ones (the internal Markdown: tests/reports/test_brief.py).
    ids = list(reference.index[:3])
    out = radar(
        "brief", "--data", str(long_data), *(x for a in ids for x in ("--account", a)),
        "--format", "md", "--out", str(tmp_path / "md"), "--tracking-uri", registry,
        "--audience", "customer", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "md").iterdir()) == sorted(f"{a}.md" for a in ids)
    md = (tmp_path / "md" / f"{ids[1]}.md").read_text()
    assert [line[3:] for line in md.splitlines() if line.startswith("## ")] == list(
        w.CUSTOMER_SECTIONS.values()
    )
    assert reference.loc[ids[1], "play_reason"] not in md and "churn" not in md.lower()
    assert json.dumps(reference.loc[ids[1], "name"])[1:-1] in md


def test_radar_brief_refuses_bad_input_clearly(registry, long_data, tmp_path):
    def run(*args):
        return radar("brief", "--data", str(long_data), "--tracking-uri", registry, *args,
                     cwd=tmp_path)  # fmt: skip

    out = run("--account", "A999999", "--out", str(tmp_path / "x.html"))
    assert out.returncode == 1 and "A999999" in out.stderr and "account_id" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "x.html").exists()
    out = run("--all", "--out", str(tmp_path / "x.docx"))
    assert out.returncode == 1 and "folder" in out.stderr
    out = run("--account", "A000001", "--audience", "board", "--out", str(tmp_path / "x.md"))
    assert out.returncode == 1 and "--audience 'board'" in out.stderr
    assert not (tmp_path / "x.md").exists()
    out = run("--account", "A000001", "--out", str(tmp_path / "x.docx"))
    assert out.returncode == 1 and "unknown brief format" in out.stderr
    assert not (tmp_path / "x.docx").exists()
    out = run("--out", str(tmp_path / "x.html"))
    assert out.returncode == 1 and "--account" in out.stderr
    out = run("--account", "A000001", "--as-of", "2001-01-01", "--out", str(tmp_path / "y.md"))
    assert out.returncode == 1 and "outside the data" in out.stderr


def test_kpi_page_shows_the_records_and_the_contract_history(server, reference, long_data):
    from reports.kpis import Targets, realised

    history = pd.read_parquet(long_data / "subscriptions.parquet")
    as_of = pd.Timestamp(reference["as_of"].iloc[0])
    year = realised(history, as_of, 365)
    with browser_page() as page:
        sign_in(page, server, "/ui/portfolio/kpis")
        assert f"{year.grr:.1%}" == page.inner_text("#kpi-grr td.realised")
        assert f"{year.nrr:.1%}" == page.inner_text("#kpi-nrr td.realised")
        exp_churn = reference["p_churn_90d"].mean()
        assert page.inner_text("#kpi-churn td.expected") == f"{exp_churn:.1%}"
        green = (reference["health_band"] == "green").mean()
        row = page.locator("#health-all tr.health-row")
        assert float(row.get_attribute("data-green")) == pytest.approx(green)
        seg = page.locator("#health-segment tr.health-row")
        assert seg.count() == reference["segment"].nunique()
        owners = page.locator("#health-owner tr.health-row")
        assert owners.count() == reference["csm_owner"].fillna("tech touch").nunique()
        met = "met" if green > Targets().green_share_above else "missed"
        assert row.locator("td").nth(6).inner_text() == met
        assert page.locator("tr.quarter").count() == 4
        assert page.locator("#trend svg.kpi-chart").count() == 1
        screenshot(page, "kpis")
        check_page(page)


def test_radar_kpis_prints_and_writes_json(registry, long_data, tmp_path):
    out = radar(
        "kpis", "--data", str(long_data), "--out", str(tmp_path / "kpis.json"),
        "--tracking-uri", registry, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    k = json.loads((tmp_path / "kpis.json").read_text())
    assert f"{k['realised_year']['grr']:.1%}" in out.stdout and "Health bands" in out.stdout
    assert len(k["trend"]) == 4 and k["health"]["accounts"] > 100
    bad = radar("kpis", "--data", str(long_data), "--out", str(tmp_path / "k.txt"), cwd=tmp_path)
    assert bad.returncode == 1 and "unknown format" in bad.stderr
