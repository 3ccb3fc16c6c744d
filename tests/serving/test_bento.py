from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli import clean_env

pytestmark = pytest.mark.slow


def test_bentoml_build_works_offline(tmp_path):
    project = Path(__file__).resolve().parents[2]
    bentoml = Path(sys.executable).parent / "bentoml"
    env = clean_env(BENTOML_HOME=str(tmp_path / "home"), BENTOML_DO_NOT_TRACK="true")
    out = subprocess.run(
        [str(bentoml), "build", str(project)], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (bento,) = [p for p in (tmp_path / "home" / "bentos" / "renewal-radar").iterdir() if p.is_dir()]
    meta = yaml.safe_load((bento / "bento.yaml").read_text())
    assert meta["service"] == "serving.service:RenewalRadar"
    for path in (
        "serving/service.py",
        "training/model.py",
        "features/catalogue.py",
        "features/health_schemes/seed001.yaml",
    ):
        assert (bento / "src" / path).is_file(), path
    assert not (bento / "src" / "tests").exists()
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert "lightgbm==4.7.0" in requirements and "bentoml==1.4.39" in requirements
