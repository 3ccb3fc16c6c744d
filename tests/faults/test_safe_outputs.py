"""Values from the data where they leave the product (issue 32, findings 4, 5, 7)."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from starlette.testclient import TestClient

from features.safe_output import csv_safe, file_stem
from reports.brief_batch import brief_targets
from scoring.records import Scores, write_scores

EVIL = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\r=1"]


def test_brief_files_named_from_ids_stay_in_the_folder(tmp_path):
    """Finding 4: ``../../ESCAPED_BY_ID`` wrote two levels up; ``EU/0001`` made folders."""
    out = tmp_path / "a" / "b" / "briefs"
    ids = ["../../ESCAPED_BY_ID", "EU/0001", "EU%2F0001", ".", "..", ".hidden", "A 1", "x" * 400]
    targets = brief_targets([{"account_id": i} for i in ids], None, out, "md")
    paths = [p for _, p in targets]
    assert [r["account_id"] for r, _ in targets] == ids
    assert all(p.parent == out for p in paths), paths
    assert all(not p.name.startswith(".") and "/" not in p.name for p in paths)
    assert len({p.name for p in paths}) == len(ids)  # one file per id
    assert all(len(p.name.encode()) <= 255 for p in paths)
    assert file_stem("A000042") == "A000042"  # ordinary ids keep their name
    assert file_stem("EU/0001") == "EU%2F0001"


def test_csv_cells_that_would_run_as_formulas_are_neutralised():
    """Finding 5 (OWASP): a leading =, +, -, @, tab or CR gets a single quote."""
    frame = pd.DataFrame({"name": [*EVIL, "Acme", None], "arr": [-5.0] * 7 + [1.0]})
    safe = csv_safe(frame)
    assert safe["name"].tolist()[:6] == ["'" + v.replace("\r", "\n") for v in EVIL]
    assert safe["name"].tolist()[6] == "Acme" and safe["name"].isna().tolist()[7]
    assert safe["arr"].tolist() == frame["arr"].tolist()  # numbers stay numbers
    assert frame["name"][0] == EVIL[0]  # the input is not changed


def test_radar_score_csv_is_neutralised(tmp_path):
    """Finding 5: ``radar score --out x.csv`` wrote names and ids as given."""
    records = pd.DataFrame(
        {
            "account_id": ["=1+1", "A2"],
            "name": ["@cmd", "-lead"],
            "as_of": pd.Timestamp("2026-10-31"),
            "p_churn_90d": [-0.0, 0.5],
        }
    )
    path = write_scores(Scores(records, {}, {}), tmp_path / "scores.csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text(), newline="")))
    assert [r["account_id"] for r in rows] == ["'=1+1", "A2"]
    assert [r["name"] for r in rows] == ["'@cmd", "'-lead"]
    assert rows[1]["p_churn_90d"] == "0.5"


def _portfolio() -> pd.DataFrame:
    n = len(EVIL)
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n - 1)] + ["=2*3"],
            "name": EVIL,
            "csm_owner": ["+owner"] * n,
            "segment": ["smb"] * n,
            "health_band": ["red"] * n,
            "renewal_stage": ["-"] * n,
            "alerts": [[] for _ in range(n)],
            "needs_action": [True] * n,
            "arr_at_risk_90d": [float(i) for i in range(n)],
            "arr": [1000.0] * n,
        }
    )


@pytest.fixture
def pages(monkeypatch):
    """The pages app with a stand-in service holding a portfolio of hostile names."""
    from types import SimpleNamespace

    from serving.pages import ui

    portfolio = _portfolio()
    svc = SimpleNamespace(
        state=SimpleNamespace(as_of=pd.Timestamp("2026-10-31")),
        views=SimpleNamespace(portfolio=lambda: portfolio),
    )
    monkeypatch.delenv("RADAR_API_KEY", raising=False)
    monkeypatch.delenv("RADAR_API_KEY_FILE", raising=False)
    monkeypatch.setattr(ui, "_service", lambda: svc)
    return ui.app


def test_the_pages_csv_export_is_neutralised(pages):
    """Finding 5: ``/ui/export.csv`` wrote 15 formula cells in the probe."""
    r = TestClient(pages).get("/export.csv?view=all")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert len(rows) == len(EVIL)
    cells = [v for row in rows for v in row.values()]
    assert not [v for v in cells if v.startswith(("=", "+", "-", "@", "\t", "\r"))], cells
    assert "'=2*3" in cells and "'+owner" in cells


def test_the_session_cookie_is_secure_over_https_and_there_is_a_logout(monkeypatch):
    """Finding 7: no ``Secure`` flag over HTTPS, and no way to sign out."""
    from serving.pages import ui

    monkeypatch.setenv("RADAR_API_KEY", "k")
    monkeypatch.setattr(ui.auth.THROTTLE, "retry_after", lambda client: None)
    for base, secure in (("https://radar.example", True), ("http://radar.example", False)):
        c = TestClient(ui.app, base_url=base)
        r = c.post("/login", data={"key": "k"}, follow_redirects=False)
        assert r.status_code == 303
        assert ("secure" in r.headers["set-cookie"].lower()) is secure
        r = c.post("/logout", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("/login")
        assert 'radar_key=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    page = ui.templates().get_template("error.html").render(root="/ui", message="x")
    assert 'action="/ui/logout"' in page
    assert '/logout"' not in ui.templates().get_template("login.html").render(
        root="/ui", target="/ui/", wrong=False
    )
