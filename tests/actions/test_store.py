"""The store: migrations from empty and from the previous revision, the log, the run lock."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from actions.models import Base, Cta, Event, RunLock
from actions.store import (
    LockHeldError,
    current_revision,
    make_engine,
    migrate,
    open_store,
    record,
    run_lock,
)
from tests.actions.conftest import T0
from tests.cli import clean_env


def test_migrations_from_empty_match_the_models(store_url):
    store = open_store(store_url)
    try:
        assert current_revision(store.engine) == "0003"
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        names = set(inspect(store.engine).get_table_names())
        assert {"teams", "users", "ctas", "events", "outbox", "runs", "run_lock"} <= names
    finally:
        store.close()


def test_migration_from_the_previous_revision_keeps_the_data(store_url):
    engine = make_engine(store_url)
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    assert "outbox" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ctas (id, account_id, cause, severity, opened, due, status, level,"
                " figures, last_seen, absent_runs) VALUES (7, 'A1', 'alert:usage_decline',"
                " 'medium', :t, :t, 'open', 0, '{\"arr\": 5.0}', '2026-03-01', 0)"
            ),
            {"t": T0.replace(tzinfo=None)},
        )
    engine.dispose()
    store = open_store(store_url)  # opening upgrades to head
    try:
        assert current_revision(store.engine) == "0003"
        with store.session() as s:
            c = s.get(Cta, 7)
            assert (c.account_id, c.figures, c.snooze_p_churn_90d) == ("A1", {"arr": 5.0}, None)
            assert c.opened == T0  # stored naive UTC, read back aware
    finally:
        store.close()


def test_events_are_append_only(store):
    with store.session() as s:
        e = record(s, "note", "A1", "ann", T0, text="called")
    with pytest.raises(ValueError, match="append-only"), store.session() as s:
        s.get(Event, e.id).kind = "closed"
    with pytest.raises(ValueError, match="append-only"), store.session() as s:
        s.delete(s.get(Event, e.id))
    with store.session() as s:
        assert [(x.kind, x.payload) for x in s.scalars(select(Event))] == [
            ("note", {"text": "called"})
        ]


def test_the_run_lock_admits_one_run_and_takes_over_an_expired_one(store):
    with (
        run_lock(store, minutes=10),
        pytest.raises(LockHeldError, match="holds the store since"),
        run_lock(store, 10),
    ):
        pass  # pragma: no cover
    with run_lock(store, minutes=10):  # released: taken again
        pass
    with store.session() as s:
        assert s.scalars(select(RunLock)).all() == []
        s.add(RunLock(name="daily", holder="dead:1", acquired=T0, expires=T0 + timedelta(1)))
    with run_lock(store, minutes=10) as me, store.session() as s:  # T0 + 1 day is long past
        assert s.get(RunLock, "daily").holder == me


def test_processes_opening_a_new_store_at_once_migrate_it_once(store_url):
    code = "import sys; from actions.store import open_store; open_store(sys.argv[1]).close()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, store_url], env=clean_env(), stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    errors = [(p.wait(timeout=120), p.stderr.read().decode()[-500:]) for p in procs]
    assert [rc for rc, _ in errors] == [0, 0, 0], errors
    engine = make_engine(store_url)
    assert current_revision(engine) == "0003"
    engine.dispose()
