"""``radar daily`` end to end: scored by the champion, twice on the same data, a month on;
two runs at once; the event log exported as ``csm_actions`` and validated."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime

import pandas as pd
import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from actions.ctas import CLEARED
from actions.export import csm_actions
from actions.models import Cta, Event
from actions.store import open_store
from features.contract import load_dataset
from radar.cli import app
from tests.cli import clean_env

pytestmark = pytest.mark.slow  # scores 800 accounts three times

CLOCK = "2026-11-02T07:00:00+00:00"


def _daily(*args: str):
    return CliRunner().invoke(app, ["daily", *args])


@pytest.fixture
def setup(long_data, registry, store_url, tmp_path):
    """Options of a daily run on the suite's data and model, and its actions config."""
    conf = tmp_path / "actions.yaml"
    conf.write_text(yaml.safe_dump({"clear_after_runs": 1, "capacity_per_csm": 5}))
    common = ["--store", store_url, "--actions-config", str(conf), "--tracking-uri", registry]
    return [*common, "--data", str(long_data)]


def test_daily_twice_then_a_month_on(setup, store_url, long_data, tmp_path):
    last = pd.read_parquet(long_data / "usage.parquet", columns=["date"])["date"].max()
    earlier = (last - pd.DateOffset(months=1)).date().isoformat()
    first = _daily(*setup, "--as-of", earlier, "--clock", CLOCK)
    assert first.exit_code == 0, first.output
    assert f"daily at as-of {earlier}: opened " in first.output
    store = open_store(store_url)
    try:
        with store.session() as s:
            opened = s.scalars(select(Cta)).all()
            n_events = len(s.scalars(select(Event)).all())
        assert len(opened) > 0 and all(c.status == "open" for c in opened)
        assert len({c.account_id for c in opened if c.owner_id is not None}) <= 5 * len(
            {c.owner_id for c in opened}
        )
        # The same data again: nothing opened, escalated or sent; no new event.
        second = _daily(*setup, "--as-of", earlier, "--clock", "2026-11-02T07:05:00+00:00")
        assert second.exit_code == 0, second.output
        assert "opened 0, closed 0, escalated 0, sent 0, failed 0" in second.output
        with store.session() as s:
            assert len(s.scalars(select(Event)).all()) == n_events
        # A month on: causes gone from the latest date are closed as cleared.
        third = _daily(*setup, "--clock", "2026-11-02T07:10:00+00:00")
        assert third.exit_code == 0, third.output
        with store.session() as s:
            closed = s.scalars(select(Cta).where(Cta.status == "closed")).all()
        assert closed and {c.close_reason for c in closed} == {CLEARED}
        assert f"closed {len(closed)}," in third.output
        # The record as data: csm_actions in the data folder validates and round-trips.
        data = tmp_path / "data"
        shutil.copytree(long_data, data, ignore=shutil.ignore_patterns("ground_truth"))
        out = CliRunner().invoke(
            app, ["actions", "export", "--out", str(data), "--store", store_url]
        )
        assert out.exit_code == 0, out.output
        ok = CliRunner().invoke(app, ["validate", "--data", str(data)])
        assert ok.exit_code == 0, ok.output
        table = load_dataset(data, ["csm_actions"]).tables["csm_actions"]
        expected = csm_actions(store)
        assert len(table) == len(expected) > 0
        assert list(table["action"]) == list(expected["action"])
        assert list(table["cta_id"]) == list(expected["cta_id"])
        assert set(table["action"]) == {"opened", "closed"}
    finally:
        store.close()


def test_two_runs_at_once_double_nothing(long_data, registry, store_url, tmp_path):
    """Two processes on the same scores: one holds the lock; CTAs and events exactly once."""
    scores = tmp_path / "scores.parquet"
    got = CliRunner().invoke(
        app,
        [
            *("score", "--data", str(long_data), "--as-of", "latest", "--out", str(scores)),
            *("--tracking-uri", registry, "--log", str(tmp_path / "log")),
        ],
    )
    assert got.exit_code == 0, got.output
    cmd = [sys.executable, "-m", "radar.cli", "daily", "--scores", str(scores)]
    cmd += ["--store", store_url, "--clock", CLOCK]
    procs = [
        subprocess.Popen(cmd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outs = [
        (p.wait(timeout=300), p.stdout.read().decode(), p.stderr.read().decode()) for p in procs
    ]
    for rc, out, err in outs:  # each did all the work, nothing, or was refused by the lock
        assert rc == 0 or (rc == 1 and "holds the store since" in err), (out, err)
    store = open_store(store_url)
    try:
        with store.session() as s:
            ctas = s.scalars(select(Cta)).all()
            opened = s.scalars(select(Event).where(Event.kind == "opened")).all()
        keys = [(c.account_id, c.cause) for c in ctas]
        assert len(keys) == len(set(keys)) == len(opened) > 0
        assert sum("opened 0," not in out for rc, out, _ in outs if rc == 0) == 1
    finally:
        store.close()
    assert datetime.fromisoformat(CLOCK).tzinfo == UTC
