"""A bundle without ``checksums.json`` and a model file damaged in the middle (issue 32, 8).

It passed the structural check, then LightGBM aborted the process that parsed it (exit 134):
``radar serve`` workers died every ~20 s and ``/readyz`` said "still loading" for ever.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.cli import radar
from tests.serving.conftest import start, wait_live
from training.artifacts import CHECKSUMS_FILE, CorruptArtifactError
from training.model import ModelBundle


def damage_middle(path: Path) -> None:
    """Overwrite 40 bytes in the middle of ``path`` (the end of the file stays intact)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 40] = b"garbage\n@@@@\nxx=yy=zz\n" + b"#" * 17
    path.write_bytes(bytes(data))


def test_an_older_bundle_is_read_by_lightgbm_in_a_child_first(trained, tmp_path):
    d = trained[1].bundle.save(tmp_path / "bundle")
    (d / CHECKSUMS_FILE).unlink()
    assert ModelBundle.load(d).heads.keys() == trained[1].bundle.heads.keys()  # intact: loads
    damage_middle(d / "churn_90d.lgb.txt")
    with pytest.raises(CorruptArtifactError, match=r"churn_90d\.lgb\.txt: LightGBM cannot read"):
        ModelBundle.load(d)  # this process is still here to see the error


@pytest.fixture(scope="module")
def unchecked_registry(trained, tmp_path_factory):
    """A registry whose champion has no checksums.json and a damaged churn_90d model."""
    from training.workflow import register

    root = tmp_path_factory.mktemp("unchecked-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    data, result = trained
    register(result, data, uri=uri, promote=True)
    (model,) = root.rglob("churn_90d.lgb.txt")
    for sums in root.rglob(CHECKSUMS_FILE):
        sums.unlink()
    damage_middle(model)
    return uri


@pytest.mark.slow
def test_radar_score_exits_1_with_one_line(unchecked_registry, long_data, tmp_path):
    out = tmp_path / "scores.parquet"
    r = radar(
        *("score", "--data", str(long_data), "--as-of", "latest", "--out", str(out)),
        *("--tracking-uri", unchecked_registry),
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "churn_90d.lgb.txt" in errors[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr and not out.exists()


@pytest.mark.slow
def test_the_service_stays_up_and_unready_with_the_reason(
    unchecked_registry, long_features, tmp_path, no_key
):
    log = tmp_path / "server.log"
    proc, url = start(long_features, unchecked_registry, log)
    try:
        wait_live(proc, url, log)
        deadline = time.time() + 90
        while "still loading" in (r := httpx.get(f"{url}/readyz")).text:
            assert time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        assert r.status_code == 503
        assert "churn_90d.lgb.txt: LightGBM cannot read it" in r.json()["detail"]
        time.sleep(2)
        assert httpx.get(f"{url}/livez").status_code == 200 and proc.poll() is None
        text = log.read_text()
        assert text.count("renewal-radar is not ready:") == 1, text[-3000:]
    finally:
        proc.terminate()
        proc.wait(30)
