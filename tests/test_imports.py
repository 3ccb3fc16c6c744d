"""The import contracts of ``pyproject.toml`` (``[tool.importlinter]``): dependencies point one way
(features <- training <- scoring <- monitoring, reports <- serving <- radar) and no package's
modules import each other in a cycle, an import inside a function included.

The second test shows that the check can fail: a copy of the code with one upward import and one
cycle hidden in a function is refused, naming both.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.cli import clean_env

ROOT = Path(__file__).resolve().parents[1]
# The packages the contracts cover: pyproject.toml's list, not a second one here.
PACKAGES = tuple(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
)


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--no-logo"],
        cwd=project,
        env=clean_env(PYTHONPATH=str(project)),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_are_kept():
    got = lint_imports(ROOT)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    assert "2 kept, 0 broken" in got.stdout


def test_an_upward_import_or_a_hidden_cycle_breaks_them(tmp_path):
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "features" / "words.py").open("a") as f:
        f.write("\nfrom scoring import plays  # noqa: E402 (upward: features importing scoring)\n")
    with (tmp_path / "features" / "schema.py").open("a") as f:
        f.write(
            "\n\ndef _hidden():\n    from features import contract  # contract imports schema\n"
        )
    got = lint_imports(tmp_path)
    assert got.returncode == 1
    assert "features.words -> scoring.plays" in got.stdout
    assert (
        "No cycles are allowed in features" in got.stdout and ".schema -> .contract" in got.stdout
    )


def test_no_module_imports_a_private_name_of_another():
    found = []
    for name in PACKAGES:
        for path in (ROOT / name).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.ImportFrom)
                    and (node.module or "").split(".")[0] in PACKAGES
                ):
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    found += [f"{path.relative_to(ROOT)}: {node.module}.{n}" for n in private]
    assert found == []
