"""Accounts without ARR (usage-only, labelled by activity) and without a segment, on the pages.

The CSM pages are rendered by their own routes (the Starlette app the service mounts at /ui)
over a state built from a real store and the suite's model: the account page, the brief, the
worklist and the KPIs say "no ARR" and leave ARR figures out, never $0 or nan.

The same store has text on one account's tickets of the last month (issue 31): its account
page and brief quote the counted sentence, the others say plainly that no ticket this month
has readable text; the portfolio shows health now -> expected in 90 days with its interval.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from types import SimpleNamespace

import pandas as pd
import pytest
from starlette.testclient import TestClient

from features.config import FeatureConfig
from features.pipeline import run_features
from features.store import SnapshotStore
from scoring.plays import ScoringConfig
from serving.pages import ui
from serving.pages.brief_views import Briefs
from serving.pages.views import Views
from serving.state import state_from_store
from training.registry import ScoringModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pages(long_data, long_features, trained, tmp_path_factory):
    """The pages over a copy of the long data where some accounts have no contract or segment."""
    root = tmp_path_factory.mktemp("no_arr")
    data = root / "data"
    shutil.copytree(long_data, data, ignore=shutil.ignore_patterns("ground_truth"))
    latest = pd.read_parquet(long_features / "snapshots.parquet")
    latest = latest[latest["as_of"] == latest["as_of"].max()]
    usage_only = list(latest["account_id"].iloc[:12])
    no_segment = list(latest["account_id"].iloc[6:20])
    for name in ("subscriptions", "invoices"):  # a usage-only account has neither
        df = pd.read_parquet(data / f"{name}.parquet")
        df[~df["account_id"].isin(usage_only)].to_parquet(data / f"{name}.parquet", index=False)
    acc = pd.read_parquet(data / "accounts.parquet")
    acc["segment"] = acc["segment"].astype(object).where(~acc["account_id"].isin(no_segment))
    acc.loc[acc["account_id"] == no_segment[-1], "segment"] = "  "  # blank, not refused
    acc.to_parquet(data / "accounts.parquet", index=False)
    texted = _with_ticket_text(data, latest["as_of"].max(), exclude=set(usage_only + no_segment))
    manifest = json.loads((long_features / "manifest.json").read_text())
    cfg = FeatureConfig(activity_churn_days=60, product_features=manifest["product_features"])
    run_features(data, root / "features", cfg)
    store = SnapshotStore.open(root / "features")
    bundle = dataclasses.replace(
        trained[1].bundle,
        metadata={**trained[1].bundle.metadata, "feature_config": cfg.model_dump(mode="json")},
    )
    model = ScoringModel(bundle, uri="test", name="renewal-radar", version="1")
    scoring = ScoringConfig()
    state = state_from_store(store, model, scoring)
    views = Views(state, scoring)
    svc = SimpleNamespace(state=state, views=views, briefs=Briefs(views, root / "features", False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ui, "_service", lambda: svc)
        mp.setattr(ui, "_key", lambda: None)  # no API key: the pages need no sign-in
        with TestClient(ui.app) as client:
            yield SimpleNamespace(
                client=client,
                svc=svc,
                store=store,
                usage_only=[a for a in usage_only if a in state.position],
                no_segment=no_segment,
                texted=texted,
            )


FRUSTRATED = (
    "This is really frustrating. The export fails again and nobody fixes it.",
    "We were charged twice on the invoice and this is unacceptable.",
    "The report crashes every time, this is terrible and we are angry.",
)
NEUTRAL = "Hi team, could you check the setup guide for the new workspace?"


def _with_ticket_text(data, as_of, exclude: set[str]) -> tuple[str, int, int]:
    """Text on the tickets of the last 25 days of the account with most of them (5 or more).

    Most read as frustrated (bugs, billing), the rest neutral (onboarding); returns the
    account, how many tickets it opened and how many read as frustrated. Every other ticket
    has no text.
    """
    t = pd.read_parquet(data / "support_tickets.parquet")
    recent = t["created_date"].between(as_of - pd.Timedelta(days=25), as_of)
    counts = t.loc[recent & ~t["account_id"].isin(exclude), "account_id"].value_counts()
    account, n = counts.index[0], int(counts.iloc[0])
    assert n >= 5
    rows = t.index[recent & (t["account_id"] == account)]
    t["subject"], t["body"] = None, None
    k = n // 2 + 1  # most of them: the negative-sentiment alert's share
    t.loc[rows, "body"] = [*(FRUSTRATED[i % 3] for i in range(k)), *[NEUTRAL] * (n - k)]
    t.to_parquet(data / "support_tickets.parquet", index=False)
    return account, n, k


def test_an_account_without_arr_says_so(pages):
    assert len(pages.usage_only) >= 5  # still customers by their activity
    snaps = pages.store.snapshots()
    today = snaps[snaps["as_of"] == snaps["as_of"].max()].set_index("account_id")
    assert today.loc[pages.usage_only, "arr"].isna().all()
    one = pages.usage_only[0]
    page = pages.client.get(f"/accounts/{one}")
    assert page.status_code == 200, page.text
    assert "no ARR ·" in page.text and "No ARR on record" in page.text
    assert "nan" not in page.text.lower().replace("nano", "") and "$0 ARR" not in page.text
    brief = pages.client.get(f"/accounts/{one}/brief")
    assert brief.status_code == 200, brief.text
    assert "no ARR ·" in brief.text and "$0 ARR" not in brief.text and "nan%" not in brief.text


def test_worklist_and_kpis_leave_missing_arr_out(pages):
    portfolio = pages.svc.views.portfolio()
    rows = pages.client.get("/?view=all")
    assert rows.status_code == 200, rows.text
    without = int(portfolio["arr"].isna().sum())
    assert without == len(pages.usage_only)
    at_risk = portfolio["arr_at_risk_90d"].sum()  # the accounts with ARR
    assert f"${at_risk:,.0f} ARR at" in " ".join(rows.text.split())
    one = pages.client.get(f"/?view=all&q={pages.usage_only[0]}")
    assert one.text.count("account-row") == 1 and "no ARR" in one.text
    assert "of –" not in one.text and "nan" not in one.text.lower().replace("nano", "")
    kpis = pages.client.get("/portfolio/kpis")
    assert kpis.status_code == 200, kpis.text
    said = " ".join(kpis.text.split())
    assert f"({without} without ARR, left out of the ARR figures)" in said
    assert "$nan" not in said


def test_missing_segment_reads_unknown(pages):
    snaps = pages.store.snapshots()
    today = snaps[snaps["as_of"] == snaps["as_of"].max()].set_index("account_id")
    served = [a for a in pages.no_segment if a in today.index]
    assert served and (today.loc[served, "segment"] == "unknown").all()
    page = pages.client.get(f"/accounts/{served[-1]}")
    assert page.status_code == 200 and " unknown · " in page.text
    kpis = " ".join(pages.client.get("/portfolio/kpis").text.split())
    assert "<td>unknown</td>" in kpis or ">unknown<" in kpis
    filtered = pages.client.get("/?view=all&segment=unknown")
    assert filtered.status_code == 200 and filtered.text.count("account-row") >= 1


def test_the_ticket_sentence_on_the_account_page_and_brief_and_the_forecast_column(pages):
    """Issue 31: the counted sentence where there is text, plain words where there is none."""
    account, n, k = pages.texted
    said = f"{k} of {n} tickets this month read as frustrated: billing, bugs"
    portfolio = pages.svc.views.portfolio().set_index("account_id")
    rec = portfolio.loc[account]
    assert rec["text_evidence"] == said and list(rec["frustrated_topics"]) == ["billing", "bugs"]
    assert (rec["read_tickets_30d"], rec["negative_tickets_30d"]) == (n, k)
    assert "negative_sentiment" in rec["alerts"]  # most frustrated: the alert, with counts
    page = pages.client.get(f"/accounts/{account}")
    assert page.status_code == 200 and f'id="text-evidence">{said}.<' in page.text
    brief = pages.client.get(f"/accounts/{account}/brief")
    assert f'<p id="brief-text">{said}.</p>' in brief.text
    customer = pages.client.get(f"/accounts/{account}/brief?audience=customer")
    assert "read as frustrated" not in customer.text  # internal only
    other = portfolio.index[portfolio["read_tickets_30d"] == 0][0]
    assert pd.isna(portfolio.loc[other, "text_evidence"])  # counts 0: no sentence
    quiet = pages.client.get(f"/accounts/{other}").text
    assert "No ticket this month has readable text." in quiet and " of 0 " not in quiet
    from scoring.consistency import check

    counts = check(portfolio.reset_index())
    assert counts["text_evidence"] == 0 and counts["forecast_alert"] == 0, counts
    # The portfolio's forecast column: "70 → 58 (45-69)" from the record, sortable.
    has = portfolio[portfolio["forecast_health_90d"].notna()]
    one = has.iloc[0]
    cell = (
        f"{one['health_score']:.0f} \u2192 {one['forecast_health_90d']:.0f} "
        f"({one['forecast_health_90d_low']:.0f}-{one['forecast_health_90d_high']:.0f})"
    )
    assert one["health_outlook"] == cell
    rows = pages.client.get(f"/?view=all&q={one.name}")
    assert rows.status_code == 200 and f'<td class="num outlook">{cell}</td>' in rows.text
    assert 'id="forecast-note"' not in rows.text
    by = pages.client.get("/?view=all&sort=forecast_health_90d").text
    first = by.index('class="account-row"')
    lowest = has["forecast_health_90d"].idxmin()
    assert f'data-account="{lowest}"' in by[first : first + 200]
    band = has.loc[lowest, "forecast_band"]
    filtered = pages.client.get(f"/?view=all&outlook={band}")
    want = int((portfolio["forecast_band"] == band).sum())
    assert filtered.status_code == 200 and filtered.text.count('class="account-row"') == min(
        want, 50
    )
