"""Fixtures of the fault suite: the service in process, not ready (no model, no snapshots).

Most of the API contract is enforced before a model is needed (media type, limits, the
error format, the OpenAPI document), so these tests need no training and no server process.
"""

from __future__ import annotations

import time

import pytest

from tests.serving.conftest import (  # noqa: F401 (the real server, shared)
    served_dirs,
    server,
)

KEY = "fault-key"
LIMIT = 20_000


@pytest.fixture(scope="session")  # one app per process: BentoML's metrics are global
def client():
    """A test client of the service app with an API key and a 20 kB body limit, unready."""
    from starlette.testclient import TestClient

    mp = pytest.MonkeyPatch()
    mp.delenv("RADAR_FEATURES", raising=False)
    mp.setenv("RADAR_API_KEY", KEY)
    mp.setenv("RADAR_MAX_REQUEST_BYTES", str(LIMIT))
    from serving.service import RenewalRadar

    try:
        with TestClient(RenewalRadar.to_asgi(is_main=True), headers={"X-API-Key": KEY}) as c:
            deadline = time.time() + 10
            while c.get("/readyz").headers.get("retry-after") != "60" and time.time() < deadline:
                time.sleep(0.05)  # the (failing) load runs in a thread
            # The middleware read its settings when the first request built it: no leak of
            # the key to servers later tests start (the pages' tests set it themselves).
            mp.undo()
            yield c
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def fault_registry(trained, tmp_path_factory):
    """A private registry to damage: version 1 @champion, version 2 @challenger."""
    from training.workflow import register

    root = tmp_path_factory.mktemp("fault-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    data, result = trained
    register(result, data, uri=uri, promote=True)
    register(result, data, uri=uri)
    return root, uri


@pytest.fixture(scope="session")
def corrupt_registry(trained, tmp_path_factory):
    """A registry whose champion's ``churn_90d.lgb.txt`` is cut to 3,000 bytes (finding 1).

    Damaged in place: a copy of the folder would still point at the original artifacts.
    """
    from training.workflow import register

    root = tmp_path_factory.mktemp("corrupt-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    data, result = trained
    register(result, data, uri=uri, promote=True)
    files = sorted(root.rglob("churn_90d.lgb.txt"))
    assert len(files) == 1, files
    files[0].write_bytes(files[0].read_bytes()[:3_000])
    return uri, files[0]


@pytest.fixture
def page_key(monkeypatch):
    """The pages read the key per request: set it for a test of the pages."""
    monkeypatch.setenv("RADAR_API_KEY", KEY)


@pytest.fixture
def no_key(monkeypatch):
    """Servers started by a test get no API key from this process's environment."""
    monkeypatch.delenv("RADAR_API_KEY", raising=False)
    monkeypatch.delenv("RADAR_MAX_REQUEST_BYTES", raising=False)
