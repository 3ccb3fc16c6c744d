"""The store changing under a running service (issue 32, finding 9).

Deleted: history dates answered 500 while /readyz said 200. Replaced by a new ``radar
features --out``: history answers silently changed while the latest date came from the old
data. The service's state reads through the files it verified at start.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pandas as pd

from features.store import SNAPSHOTS_FILE, SnapshotStore, write_store
from scoring.plays import ScoringConfig
from serving.pinned_store import PinnedStore
from serving.state import state_from_store
from training.registry import ScoringModel


def _state(trained, directory):
    model = ScoringModel(trained[1].bundle, uri="x", name="renewal-radar", version="1")
    return state_from_store(PinnedStore.open(directory), model, ScoringConfig())


def _p(state, when) -> np.ndarray:
    at = state.at(when)
    return np.asarray(state.model.bundle.predict_matrix(at.rows.x)["p_churn_90d"])


def test_a_deleted_or_replaced_store_keeps_serving_what_was_verified(
    trained, long_features, tmp_path, caplog
):
    copy = tmp_path / "features"
    shutil.copytree(long_features, copy)
    state = _state(trained, copy)
    earlier = state.dates[-3]
    before = _p(state, earlier)
    context_before = state.store.context()

    # Replaced by a new `radar features --out` (atomic renames), with different numbers.
    plain = SnapshotStore.open(copy)
    snaps = plain.snapshots()
    changed = snaps.assign(seat_utilisation=snaps["seat_utilisation"] * 0.1)
    write_store(copy, changed, plain.context(), dict(plain.manifest))
    assert (
        not SnapshotStore.open(copy)
        .snapshots()["seat_utilisation"]
        .equals(snaps["seat_utilisation"])
    )
    with caplog.at_level(logging.WARNING, logger="renewal_radar.service"):
        state._earlier.clear()  # not from the cache: read again
        np.testing.assert_array_equal(_p(state, earlier), before)
    assert "changed since the service verified it" in caplog.text

    # Deleted altogether: still the verified snapshots, no error.
    shutil.rmtree(copy)
    state._earlier.clear()
    np.testing.assert_array_equal(_p(state, state.dates[-2]), _p(state, state.dates[-2]))
    np.testing.assert_array_equal(_p(state, earlier), before)
    pd.testing.assert_frame_equal(state.store.context(), context_before)


def test_the_pinned_store_reads_what_a_plain_one_reads(long_features):
    pinned, plain = PinnedStore.open(long_features), SnapshotStore.open(long_features)
    when = plain.latest
    pd.testing.assert_frame_equal(pinned.snapshots_at(when), plain.snapshots_at(when))
    pd.testing.assert_frame_equal(pinned.context(), plain.context())
    assert pinned.manifest == plain.manifest
    assert (long_features / SNAPSHOTS_FILE).is_file()
