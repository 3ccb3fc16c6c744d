"""``radar daily`` on records already scored: its one-line errors, the lock, the summary."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from typer.testing import CliRunner

from actions.models import Cta
from actions.store import open_store, run_lock
from radar.cli import app
from tests.actions.conftest import records

CLOCK = ["--clock", "2026-03-02T08:00:00"]


def _scores(tmp_path) -> str:
    """A scores file with the columns the worklist flag reads (as `radar score` writes)."""
    df = records(
        [
            {"account_id": "A", "alerts": ["usage_collapse"], "p_churn_90d": 0.7},
            {"account_id": "B", "alerts": [], "p_churn_90d": 0.3},  # at risk: its play
            {"account_id": "C", "alerts": [], "p_churn_90d": 0.01, "health_score": 90.0},
        ]
    ).drop(columns=["needs_action"])
    df["churn_risk_top_decile"] = [True, False, False]
    df["renewal_stage"] = "t_minus_180"
    path = tmp_path / "scores.parquet"
    df.assign(as_of=df["as_of"].dt.strftime("%Y-%m-%d")).to_parquet(path)
    return str(path)


def test_daily_on_scores_then_refused_while_another_run_holds_the_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    args = ["daily", "--scores", _scores(tmp_path), "--store", url, *CLOCK]
    got = CliRunner().invoke(app, args)
    assert got.exit_code == 0, got.output
    assert "daily at as-of 2026-03-01: opened 3, closed 0, escalated 0, sent 0, failed 0" in (
        got.output
    )
    store = open_store(url)
    try:
        with store.session() as s:
            ctas = s.scalars(select(Cta).order_by(Cta.id)).all()
        assert [(c.account_id, c.cause, c.severity) for c in ctas] == [
            ("A", "alert:usage_collapse", "critical"),
            ("A", "play:usage_recovery", "low"),  # the top decile needs action: its play
            ("B", "play:usage_recovery", "low"),  # 90-day risk 30%: at risk
        ]
        with run_lock(store, minutes=5):
            held = CliRunner().invoke(app, args)
        assert held.exit_code == 1
        assert "holds the store since" in held.output and "nothing done" in held.output
        assert "Traceback" not in held.output
    finally:
        store.close()


def test_daily_says_what_is_wrong_in_one_line(tmp_path):
    scores = _scores(tmp_path)
    cases = [
        (["daily"], "give --data (score it now) or --scores"),
        (["daily", "--scores", str(tmp_path / "x.csv")], "reads the .parquet of `radar score`"),
        (
            ["daily", "--scores", scores, "--store", "postgresql://radar@127.0.0.1:1/x"],
            "cannot open the store postgresql://radar@127.0.0.1:1/x",
        ),
        (["daily", "--scores", scores, "--clock", "soon"], "--clock: not an ISO date"),
    ]
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("response_hours: {low: 24}\n")
    cases.append(
        (["daily", "--scores", scores, "--actions-config", str(bad_cfg)], "no response time")
    )
    for args, message in cases:
        store = [] if "--store" in args else ["--store", f"sqlite:///{tmp_path / 'b.db'}"]
        got = CliRunner().invoke(app, [*args, *store])
        assert got.exit_code == 1, (args, got.output)
        assert message in " ".join(got.output.split()), (args, got.output)
        assert "Traceback" not in got.output
    assert pd.read_parquet(scores)["account_id"].tolist() == ["A", "B", "C"]
