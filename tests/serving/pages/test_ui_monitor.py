"""The service appends what it scores to the prediction log; /ui/monitor shows the report.

End to end, against the real server (``radar serve --prediction-log --monitor``) and a real
headless Chromium: scores served by id land in the log, `radar monitor`'s code runs on that log,
and the page shows its verdict, reasons and drift.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from monitoring.predictions import read
from monitoring.report import monitor, reference_for
from reports.monitor_report import write_report
from tests.browser import browser_page, check_page, screenshot
from tests.serving.conftest import post
from tests.serving.pages.test_ui import sign_in
from training.registry import load_model

pytestmark = pytest.mark.slow


def wait_for_log(folder, ids: set[str], timeout: float = 30):
    """The log's rows once every id in ``ids`` is there (the writer runs off the request)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            rows = read(folder)
            if ids <= set(rows["account_id"]):
                return rows
        except FileNotFoundError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{sorted(ids)} not in the prediction log {folder} after {timeout} s")


def test_served_scores_are_logged_and_the_monitor_page_shows_the_report(
    server, served_dirs, reference, registry, long_data
):
    with browser_page() as page:
        sign_in(page, server, "/ui/monitor")
        assert "No monitor report yet" in page.inner_text("#no-report")
        assert str(served_dirs["monitor"]) in page.inner_text("#no-report")

    ids = list(reference.index[:7])
    answer = post(server, "/v1/score/accounts", {"account_ids": [*ids, "NOPE"]})
    assert answer.status_code == 200
    served = {r["account_id"]: r for r in answer.json()["results"]}
    bulk = post(server, "/v1/score/bulk", {"account_ids": list(reference.index[7:40])})
    assert bulk.status_code == 200
    whatif = post(
        server,
        "/v1/score/snapshots",
        {"snapshots": [{"account_id": "WHATIF", "features": {"seat_utilisation": 0.1}}]},
    )
    assert whatif.status_code == 200

    logged = wait_for_log(served_dirs["log"], set(reference.index[:40]))
    assert "NOPE" not in set(logged["account_id"]) and "WHATIF" not in set(logged["account_id"])
    # One row per account and as-of date. Other tests share the server and its log (other
    # accounts, other dates): count what was scored here, at the date served.
    logged = logged[logged["as_of"].dt.date.astype(str) == served[ids[0]]["as_of"]]
    assert logged["account_id"].isin(set(reference.index[:40])).sum() == 40
    assert not logged["account_id"].duplicated().any()
    mine = logged.set_index("account_id").loc[ids]
    heads = [c for c in logged if c.startswith("p_")]
    assert {"p_churn_30d", "p_churn_90d", "p_expansion_30d", "p_expansion_90d"} <= set(heads)
    for i in ids:
        for col in heads:
            if served[i][col] is None:
                assert np.isnan(mine.loc[i, col])
            else:
                assert mine.loc[i, col] == pytest.approx(served[i][col], abs=1e-12)
        assert mine.loc[i, "arr_at_risk_90d"] == pytest.approx(served[i]["arr_at_risk_90d"])
    first = served[ids[0]]  # the log keeps the model's label, the record its parts
    assert set(mine["model_version"]) == {f"{first['model_name']} v{first['model_version']}"}
    assert set(mine["model_run_id"]) == {first["training_run_id"]}
    assert set(mine["as_of"].dt.date.astype(str)) == {served[ids[0]]["as_of"]}
    assert (mine["model_run_id"] != "").all()

    # `radar monitor` on what the service logged (nothing matured yet at the latest date)
    import mlflow

    mlflow.set_tracking_uri(registry)
    model = load_model("models:/renewal-radar@champion", registry)
    report = monitor(long_data, logged, reference_for(model), model)
    write_report(report, served_dirs["monitor"])
    drifted = sorted(report["drift"]["features"], key=lambda f: -f["psi"])

    with browser_page() as page:
        sign_in(page, server, "/ui/monitor")
        verdict = page.locator("#verdict")
        assert verdict.get_attribute("data-verdict") == report["verdict"]
        assert {"ok": "OK", "watch": "Watch", "retrain": "Retrain"}[report["verdict"]] in (
            verdict.inner_text()
        )
        shown = page.eval_on_selector_all("li.reason", "rs => rs.map(r => r.dataset.kind)")
        assert shown == [r["kind"] for r in report["reasons"]]
        # Every check above its own line the verdict leaves out is listed; "stable" only
        # in an OK with none.
        assert page.locator("li.left-out").count() == len(report["left_out"])
        calm = report["verdict"] == "ok" and not report["left_out"]
        assert ("stable" in verdict.inner_text()) == calm
        logged_line = f"{len(logged)} logged predictions over 1 as-of date(s)"
        assert logged_line in page.inner_text("#logged")
        heads = page.eval_on_selector_all("tr.head-row", "rs => rs.map(r => r.dataset.head)")
        assert heads == list(report["realised_vs_predicted"])
        assert page.locator("td.not-matured").count() == len(heads)  # horizons not passed
        rows = page.eval_on_selector_all(
            "tr.drift-row",
            "rs => rs.map(r => [r.dataset.feature, parseFloat(r.dataset.psi)])",
        )
        top = [f for f in drifted if f["psi"] is not None and np.isfinite(f["psi"])][:15]
        assert [r[0] for r in rows] == [f["feature"] for f in top]
        np.testing.assert_allclose([r[1] for r in rows], [f["psi"] for f in top])
        screenshot(page, "monitor")
        check_page(page)
        page.click("#nav-monitor")
        page.wait_for_url(re.compile(r"/ui/monitor$"))
    assert json.loads((served_dirs["monitor"] / "monitor.json").read_text())["verdict"]
