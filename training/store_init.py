"""A new SQLite tracking store is created by one process at a time.

MLflow creates its tables (and runs its alembic migrations) the first time a process opens a
new SQLite store. Two first ``radar train --promote`` at once both saw an empty database and
both created ``alembic_version``: one failed with 321 lines of traceback. Here the first
opening of a ``sqlite:///`` store happens under an exclusive lock on ``<db>.init.lock``
beside it; the second process waits, then finds the tables there.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

SQLITE_PREFIX = "sqlite:///"


def prepare_store(uri: str) -> None:
    """Create the tables of the SQLite store ``uri`` if it is new, one process at a time."""
    if not uri.startswith(SQLITE_PREFIX):
        return
    db = Path(uri.removeprefix(SQLITE_PREFIX))
    db.parent.mkdir(parents=True, exist_ok=True)
    lock = db.with_name(db.name + ".init.lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        # MLflow's own store factories (pinned MLflow): the stores it would open next, opened
        # here first so their table creation runs under the lock.
        from mlflow.tracking._model_registry.utils import _get_store as registry_store
        from mlflow.tracking._tracking_service.utils import _get_store as tracking_store

        tracking_store(uri)
        registry_store(uri)
