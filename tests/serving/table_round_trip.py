"""A table's model round-trips: `radar score --table`, the pyfunc and `/v1/score/rows` agree.

Called by the test that trains a model on a one-row-per-customer table with the `radar`
command (tests/training/test_own_data.py), so no model is trained for it alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from tests.cli import clean_env
from tests.serving.conftest import start_cmd, wait_live

URI = "models:/renewal-radar-Churn@challenger"


def check_round_trip(table: Path, tmp_path: Path, radar, tracking: str) -> None:
    """Score the table three ways and compare to 1e-9; the service says it scores rows only."""
    import mlflow

    out = radar("score", "--table", str(table), "--model", URI, "--out", str(tmp_path / "s.csv"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "wrote 4,000 rows" in out.stdout
    scored = pd.read_csv(tmp_path / "s.csv")
    assert list(scored.columns) == ["row", "p_Churn", "drivers_Churn"]
    first = json.loads(scored["drivers_Churn"][0])
    assert first and {"feature", "value", "effect"} == set(first[0])
    assert abs(first[0]["effect"]) >= abs(first[-1]["effect"])

    # the run's parameters are the table run's own: head, horizon, split, registered name
    from mlflow.tracking import MlflowClient

    # The registry too: a registry URI set earlier in this worker would win over the tracking.
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    client = MlflowClient(tracking, registry_uri=tracking)
    run_id = client.get_model_version("renewal-radar-Churn", "1").run_id
    params = client.get_run(run_id).data.params
    assert params["heads"] == "['Churn']" and params["horizon.Churn"] == "90"
    assert params["registered_model"] == "renewal-radar-Churn"
    assert params["split.kind"] == "random" and "split.test_days" not in params
    assert params["rows.Churn.test"] == "600"

    # the pyfunc takes the table as it was read for training (ints, blank text, true/false)
    pyfunc = mlflow.pyfunc.load_model(URI).predict(pd.read_csv(table).drop(columns="Churn"))
    np.testing.assert_allclose(pyfunc["p_Churn"], scored["p_Churn"], rtol=0, atol=1e-9)

    # the service: no --features, rows in, the same probabilities out
    as_text = pd.read_csv(table, dtype=str, keep_default_na=False).drop(
        columns=["Churn", "customerID"]
    )
    raw = pd.read_csv(table).drop(columns=["Churn", "customerID"])
    rows = as_text.head(10).to_dict("records") + [
        {k: (None if pd.isna(v) else v) for k, v in r.items()}
        for r in raw.iloc[10:40].to_dict("records")
    ]
    assert any(r["TotalCharges"].strip() == "" for r in as_text.to_dict("records")[:4000])
    log = tmp_path / "serve.log"
    proc, url = start_cmd(
        ["serve", "--model-uri", URI, "--tracking-uri", tracking, "--workers", "1"],
        clean_env(BENTOML_HOME=str(tmp_path / "bentoml")),
        log,
    )
    try:
        wait_live(proc, url, log, timeout=180)  # a busy 2-core machine starts slowly
        deadline = time.time() + 120
        while httpx.get(f"{url}/readyz").status_code != 200:
            assert time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        got = httpx.post(f"{url}/v1/score/rows", json={"rows": rows}, timeout=60)
        assert got.status_code == 200, got.text
        results = got.json()["results"]
        served = np.array([r["p_Churn"] for r in results])
        np.testing.assert_allclose(served, scored["p_Churn"][:40], rtol=0, atol=1e-9)
        assert [r["row"] for r in results] == list(range(1, 41))
        assert results[0]["drivers_Churn"] == json.loads(scored["drivers_Churn"][0])

        bad = httpx.post(f"{url}/v1/score/rows", json={"rows": [{"tenure": "abc"}]})
        assert bad.status_code == 400
        assert "rows.tenure: row 1: 'abc' is not a number" in bad.json()["detail"]
        nested = httpx.post(f"{url}/v1/score/rows", json={"rows": [{}, {"Contract": [1]}]})
        assert nested.status_code == 400
        assert "rows.Contract: row 2: list is not a value" in nested.json()["detail"]
        stray = httpx.post(f"{url}/v1/score/rows", json={"rows": [{"tenur": 3}]})
        assert stray.status_code == 400 and "did you mean 'tenure'" in stray.json()["detail"]
        for path in ("/v1/model", "/v1/portfolio", "/v1/accounts/A1/brief"):
            answer = httpx.get(f"{url}{path}")
            assert answer.status_code == 404, (path, answer.text)
            assert "it scores rows only" in answer.json()["detail"], path
        page = httpx.get(f"{url}/ui/")
        assert page.status_code == 404 and "it scores rows only" in page.text
    finally:
        proc.terminate()
        proc.wait(30)
