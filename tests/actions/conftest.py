"""Fixtures of the action-loop tests: a store on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pandas as pd
import pytest

from actions.store import open_store
from tests.pg import postgres_server

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning: the first run's clock


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the whole session (a database per test)."""
    with postgres_server() as url:
        yield url


def fresh_url(kind: str, tmp_path, request) -> str:
    """An empty store's URL: a SQLite file, or a new database on the session's server."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'actions.db'}"
    import psycopg

    server = request.getfixturevalue("pg_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """An empty store's URL, on each backend."""
    return fresh_url(request.param, tmp_path, request)


@pytest.fixture
def store(store_url):
    """An open store, migrated to the newest revision."""
    s = open_store(store_url)
    yield s
    s.close()


def records(rows: list[dict], as_of: str = "2026-03-01") -> pd.DataFrame:
    """Scoring records as ``radar score`` writes them (the columns the action loop reads)."""
    base = {
        "csm_owner": "ann",
        "alerts": [],
        "play": "usage_recovery",
        "play_reason": "usage fell",
        "needs_action": False,
        "arr": 100_000.0,
        "p_churn_30d": 0.05,
        "p_churn_90d": 0.1,
        "health_score": 60.0,
    }
    df = pd.DataFrame([base | r for r in rows])
    df["as_of"] = pd.Timestamp(as_of)
    return df
