"""Output pairs written together, stale temporary files, permissions (findings 6, 7)."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest

from features import store as store_mod
from features.io import check_writable
from features.store import MANIFEST_FILE, SNAPSHOTS_FILE, SnapshotStore, write_store


def frames(n: int):
    snaps = pd.DataFrame(
        {"account_id": [f"A{i:06d}" for i in range(n)], "as_of": pd.Timestamp("2026-10-31")}
    )
    context = pd.DataFrame({"account_id": snaps["account_id"], "name": "x"}).set_index("account_id")
    return snaps, context, {"as_of_dates": ["2026-10-31"], "rows": n, "input": {}}


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_store_whose_data_file_is_not_its_manifests_is_refused(tmp_path, monkeypatch):
    """Killed after snapshots.parquet was replaced, a store held new rows beside an old manifest."""
    write_store(tmp_path, *frames(10))
    assert len(SnapshotStore.open(tmp_path).snapshots()) == 10

    real = store_mod.atomic_file

    def killed_at_the_manifest(target):
        if os.path.basename(target) == MANIFEST_FILE:
            raise KeyboardInterrupt  # as a kill between the two renames
        return real(target)

    monkeypatch.setattr(store_mod, "atomic_file", killed_at_the_manifest)
    with pytest.raises(KeyboardInterrupt):
        write_store(tmp_path, *frames(300))
    monkeypatch.undo()
    with pytest.raises(
        ValueError, match=r"snapshots\.parquet does not match .* not written together"
    ):
        SnapshotStore.open(tmp_path)
    write_store(tmp_path, *frames(300))  # writing again repairs it
    assert len(SnapshotStore.open(tmp_path).snapshots()) == 300


def test_stale_temporary_files_are_removed_and_outputs_are_0644(tmp_path):
    stale = tmp_path / f".{SNAPSHOTS_FILE}.tmp-killed"
    stale.write_bytes(b"half a parquet file")
    old = os.umask(0o022)
    try:
        write_store(tmp_path, *frames(5))
    finally:
        os.umask(old)
    assert not stale.exists()
    assert not list(tmp_path.glob(".*.tmp-*"))
    for name in (SNAPSHOTS_FILE, "accounts.parquet", MANIFEST_FILE):
        assert mode(tmp_path / name) == 0o644, name


def test_a_broken_manifest_is_named(tmp_path):
    write_store(tmp_path, *frames(5))
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=r"manifest\.json is not valid JSON"):
        SnapshotStore.open(tmp_path)


def test_scores_and_summary_are_a_checked_pair(tmp_path):
    from scoring.records import Scores, read_summary, write_scores

    records = pd.DataFrame({"account_id": ["A1", "A2"], "as_of": pd.Timestamp("2026-10-31")})
    out = write_scores(Scores(records=records, metadata={}, summary={}), tmp_path / "s.parquet")
    assert read_summary(out)["file"]["name"] == "s.parquet"
    assert mode(out) == mode(tmp_path / "s.parquet.summary.json") == 0o666 & ~_umask()
    other = Scores(records=records.head(1), metadata={}, summary={})
    write_scores(other, tmp_path / "t.parquet")
    (tmp_path / "t.parquet").replace(out)  # a scores file from another run beside this summary
    with pytest.raises(ValueError, match="not written together"):
        read_summary(out)
    json.loads((tmp_path / "s.parquet.summary.json").read_text())  # the summary itself is whole


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("bad", ["file.txt/scores.parquet", "folder"])
def test_an_unwritable_out_is_refused_before_any_work(tmp_path, bad):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="--out"):
        check_writable(tmp_path / bad)
    assert check_writable(tmp_path / "new" / "dir" / "s.parquet")


@pytest.mark.slow
def test_unwritable_out_is_refused_by_the_commands(small_dataset, tmp_path):
    """NotADirectoryError and FileNotFoundError tracebacks, after all the work was done."""
    from tests.cli import radar

    (tmp_path / "file.txt").write_text("x")
    r = radar("features", "--data", str(small_dataset), "--out", "file.txt", cwd=tmp_path)
    assert r.returncode == 1 and "--out file.txt: is a file" in r.stderr
    assert "Traceback" not in r.stderr
    r = radar(
        *("score", "--data", str(small_dataset), "--as-of", "latest"),
        *("--out", "file.txt/s.parquet", "--tracking-uri", "sqlite:///nowhere.db"),
        cwd=tmp_path,
    )
    assert r.returncode == 1 and "file.txt is not a folder" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
