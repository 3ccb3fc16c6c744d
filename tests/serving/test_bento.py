from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.cli import clean_env


@pytest.mark.slow
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

    # Only what serving needs: no test, lint or notebook packages, no feature engine.
    names = {line.split("==")[0] for line in requirements.splitlines() if "==" in line}
    for dev in ("pytest", "ruff", "playwright", "hypothesis", "nbclient", "ipykernel"):
        assert dev not in names, dev
    assert not names & {"duckdb", "ibis-framework", "shap", "schemathesis"}
    # The shipped code is enough to start the service: import it from the Bento alone.
    check = (
        "import sys; import serving.service, features.store, training.pyfunc_model; "
        "import reports.brief_store, reports.brief_render, reports.kpis; "
        "print(sorted(m for m in ('ibis', 'duckdb') if m in sys.modules))"
    )
    src = bento / "src"
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(src)!r}); {check}"],
        cwd=src,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"
    assert not (src / "features" / "engine.py").exists()


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_service_requirements_are_complete_and_pinned_as_constraints():
    project = Path(__file__).resolve().parents[2]
    pins = {
        norm(k): v
        for k, v in (
            line.split(";")[0].strip().split("==", 1)
            for line in (project / "constraints.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")
        )
    }
    wanted = {
        norm(k): v
        for k, v in (
            line.split("==", 1)
            for line in (project / "serving" / "requirements.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")
        )
    }
    assert {k: pins.get(k) for k in wanted} == wanted
    # Every dependency of every listed package is listed too (as installed here).
    for name in wanted:
        for raw in metadata.distribution(name).requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                assert norm(req.name) in wanted, f"{name} needs {req.name}"


# What the service imports at start and on its first page of each kind (the lazy imports keep
# MLflow, matplotlib and Chromium's driver off the start path).
SERVED = (
    "serving.service",
    "reports.brief_render",
    "reports.brief_store",
    "reports.kpis",
    "reports.monitor_view",
    "training.pyfunc_model",
)
# The project's packages: those the import contracts cover (pyproject.toml), not a second list.
OURS = tuple(
    tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["tool"][
        "importlinter"
    ]["root_packages"]
)


def test_bento_ships_exactly_what_the_service_imports():
    """The include list is the service's import closure: no batch, Spark or report job in it."""
    project = Path(__file__).resolve().parents[2]
    code = (
        "import json, sys\n"
        f"for m in {SERVED!r}: __import__(m)\n"
        f"mods = [m for m in sys.modules if m.split('.')[0] in {OURS!r}]\n"
        "print(json.dumps(sorted(sys.modules[m].__file__ for m in mods)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=clean_env(), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    imported = {str(Path(f).relative_to(project)) for f in yaml.safe_load(out.stdout)}
    globs = yaml.safe_load((project / "bentofile.yaml").read_text())["include"]
    listed = {str(p.relative_to(project)) for g in globs for p in project.glob(g)}
    # Alembic loads the work-item store's migrations from their files, not as imports.
    migrations = {p for p in listed if p.startswith("actions/migrations/")}
    assert "actions/migrations/env.py" in migrations and len(migrations) >= 4
    listed_py = {p for p in listed if p.endswith(".py")} - migrations
    assert imported - listed_py == set(), "imported by the service but not shipped"
    assert listed_py - imported == set(), "shipped but never imported by the service"
    for job in ("scoring/batch.py", "scoring/spark_job.py", "reports/brief_batch.py",
                "monitoring/report.py", "features/engine.py"):  # fmt: skip
        assert job not in listed, job
    bentofile = yaml.safe_load((project / "bentofile.yaml").read_text())
    assert bentofile.get("exclude", []) == ["**/__pycache__/"]  # caches only, no code
