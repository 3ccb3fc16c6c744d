"""Accounts without ARR (usage-only, labelled by activity) and without a segment, on the pages.

The CSM pages are rendered by their own routes (the Starlette app the service mounts at /ui)
over a state built from a real store and the suite's model: the account page, the brief, the
worklist and the KPIs say "no ARR" and leave ARR figures out, never $0 or nan.
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
            )


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
