"""A corrupt model, slow or unreachable registries, one version across workers (1, 4, 8, 9)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.cli import radar
from tests.serving.conftest import start, wait_live
from training.artifacts import CHECKSUMS_FILE, CorruptArtifactError
from training.model import ModelBundle


def truncate(path: Path, size: int = 3_000) -> None:
    path.write_bytes(path.read_bytes()[:size])


def test_a_truncated_model_file_is_refused_by_name_before_lightgbm_parses_it(trained, tmp_path):
    """Finding 1: LightGBM aborted the process (exit 134) on a 3,000-byte model file."""
    d = trained[1].bundle.save(tmp_path / "bundle")
    assert ModelBundle.load(d).heads.keys() == trained[1].bundle.heads.keys()
    truncate(d / "churn_90d.lgb.txt")
    with pytest.raises(CorruptArtifactError, match=r"churn_90d\.lgb\.txt: checksum mismatch"):
        ModelBundle.load(d)
    (d / CHECKSUMS_FILE).unlink()  # a bundle from before checksums: a structural check
    with pytest.raises(CorruptArtifactError, match=r"churn_90d\.lgb\.txt: incomplete LightGBM"):
        ModelBundle.load(d)
    (d / "bundle.json").write_text("{broken")
    with pytest.raises(CorruptArtifactError, match=r"bundle\.json: not valid JSON"):
        ModelBundle.load(d)


@pytest.mark.slow
def test_radar_score_exits_1_naming_the_corrupt_file(corrupt_registry, long_data, tmp_path):
    uri, damaged = corrupt_registry
    out = tmp_path / "scores.parquet"
    r = radar(
        *("score", "--data", str(long_data), "--as-of", "latest", "--out", str(out)),
        *("--tracking-uri", uri, "--log", str(tmp_path / "log")),
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stderr[-2000:]
    assert "churn_90d.lgb.txt: checksum mismatch" in r.stderr and "Traceback" not in r.stderr
    assert "[LightGBM] [Fatal]" not in r.stderr + r.stdout and not out.exists()


@pytest.mark.slow
def test_service_with_a_corrupt_model_is_live_but_unready(
    corrupt_registry, long_features, tmp_path, no_key
):
    uri, damaged = corrupt_registry
    log = tmp_path / "server.log"
    proc, url = start(long_features, uri, log)
    try:
        wait_live(proc, url, log)
        deadline = time.time() + 60
        while "still loading" in (r := httpx.get(f"{url}/readyz")).text:
            assert time.time() < deadline
            time.sleep(0.3)
        assert r.status_code == 503 and "churn_90d.lgb.txt: checksum mismatch" in r.json()["detail"]
        assert httpx.get(f"{url}/livez").status_code == 200
        text = log.read_text()
        assert text.count("renewal-radar is not ready:") == 1, text[-3000:]
        assert "[LightGBM] [Fatal]" not in text and "Traceback" not in text
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def silent_server():
    """A tracking server that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.slow
def test_probes_answer_at_once_while_the_registry_hangs_finding_9(
    long_features, silent_server, tmp_path, no_key
):
    """Liveness answered nothing for ~250 s while MLflow retried an unreachable server."""
    log = tmp_path / "server.log"
    t0 = time.time()
    proc, url = start(long_features, silent_server, log, "--model-uri", "models:/renewal-radar/1")
    try:
        wait_live(proc, url, log)
        r = httpx.get(f"{url}/readyz", timeout=2)
        assert r.status_code == 503 and "still loading" in r.json()["detail"]
        assert r.headers["retry-after"] == "5"
        r = httpx.post(f"{url}/v1/score/accounts", json={"account_ids": ["A"]}, timeout=2)
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        deadline = time.time() + 90  # bounded: 10 s timeout, 1 retry (not MLflow's 120 s x 7)
        while "still loading" in (r := httpx.get(f"{url}/readyz", timeout=2)).text:
            assert time.time() < deadline, f"still loading after {time.time() - t0:.0f} s"
            time.sleep(1)
        assert r.status_code == 503 and "cannot load model" in r.json()["detail"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_read_only_commands_refuse_a_store_that_is_not_there(tmp_path):
    """Finding 8: score, serve, compare and promote created an empty store and went on."""
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    not_db = tmp_path / "notes.db"
    not_db.write_text("hello")
    for uri in (missing, f"sqlite:///{not_db}"):
        for args in (
            ("compare",),
            ("promote",),
            ("serve", "--features", str(tmp_path)),
            ("score", "--data", str(tmp_path), "--as-of", "latest", "--out", "x.parquet"),
        ):
            r = radar(*args, "--tracking-uri", uri, cwd=tmp_path)
            assert r.returncode == 1, (args, r.stdout, r.stderr)
            assert "Traceback" not in r.stderr
            assert ("no MLflow store there" in r.stderr) or ("not an SQLite database" in r.stderr)
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.slow
def test_every_worker_serves_the_version_resolved_at_start_finding_4(
    fault_registry, long_features, tmp_path, no_key
):
    """After a promotion, a restarted worker loaded the new version beside the old one."""
    from mlflow.tracking import MlflowClient

    from training.registry import resolve_version, tracking_uri

    root, uri = fault_registry
    assert resolve_version("models:/renewal-radar@champion", uri) == "models:/renewal-radar/1"
    log = tmp_path / "server.log"
    proc, url = start(long_features, uri, log)
    try:
        wait_live(proc, url, log)
        tracking_uri(uri)
        MlflowClient().set_registered_model_alias("renewal-radar", "champion", "2")
        # The server (and each worker it starts or restarts) holds the version, not the alias.
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert b"RADAR_MODEL_URI=models:/renewal-radar/1" in environ
        deadline = time.time() + 60
        while httpx.get(f"{url}/readyz").status_code != 200:
            assert time.time() < deadline, log.read_text()[-2000:]
            time.sleep(0.3)
        info = httpx.get(f"{url}/v1/model").json()
        assert info["model_version"] == "1" and info["model_uri"] == "models:/renewal-radar/1"
    finally:
        MlflowClient().set_registered_model_alias("renewal-radar", "champion", "1")
        proc.terminate()
        proc.wait(30)
