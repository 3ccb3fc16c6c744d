"""Checks of a model bundle's files before anything parses them.

LightGBM aborts the whole process on a damaged model file (``[LightGBM] [Fatal] Model
format error``, then ``terminate called``): no Python exception to catch, so a corrupt
artifact must be refused before ``lgb.Booster`` sees it. Training records the SHA-256 of
every file of the bundle (``checksums.json``, written last); loading compares them first.
Bundles from before checksums were recorded get a structural check of each model file, then
LightGBM reads each one in a child process (:func:`trial_load`) before this process may: a
file damaged in the middle passes the structural check and would abort the serving process.
"""

from __future__ import annotations

import json
from pathlib import Path

from features.io import file_sha256

CHECKSUMS_FILE = "checksums.json"
LGB_SUFFIX = ".lgb.txt"
LGB_END = b"end of trees"  # every complete LightGBM model text has it after the last tree


class CorruptArtifactError(ValueError):
    """A bundle file is missing, damaged or not what training wrote; names the file."""


def write_checksums(directory: Path) -> None:
    """Record the SHA-256 of every file of the bundle at ``directory``."""
    sums = {p.name: file_sha256(p) for p in sorted(directory.iterdir()) if p.is_file()}
    sums.pop(CHECKSUMS_FILE, None)
    (directory / CHECKSUMS_FILE).write_text(json.dumps(sums, indent=2))


def read_json(path: Path) -> dict:
    """A JSON file of the bundle; a damaged one is refused by name."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CorruptArtifactError(f"{path}: missing from the model bundle") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptArtifactError(
            f"{path}: not valid JSON ({exc}); the artifact is corrupt"
        ) from exc


def verify(directory: Path, needed: list[str]) -> None:
    """Refuse the bundle unless each of ``needed`` files is there and as training wrote it."""
    sums_path = directory / CHECKSUMS_FILE
    sums = read_json(sums_path) if sums_path.is_file() else None
    for name in needed:
        path = directory / name
        if not path.is_file():
            raise CorruptArtifactError(f"{path}: missing from the model bundle")
        if sums is not None:
            want = sums.get(name)
            if want is None:
                raise CorruptArtifactError(f"{path}: no checksum recorded at training")
            got = file_sha256(path)
            if got != want:
                raise CorruptArtifactError(
                    f"{path}: checksum mismatch ({path.stat().st_size:,} bytes, sha256 "
                    f"{got[:12]}..., training recorded {want[:12]}...): the artifact is corrupt; "
                    "register the model again"
                )
        elif name.endswith(LGB_SUFFIX) and LGB_END not in path.read_bytes():
            raise CorruptArtifactError(
                f"{path}: incomplete LightGBM model (no '{LGB_END.decode()}'): the artifact is "
                "corrupt; register the model again"
            )
    if sums is None:  # an older bundle: LightGBM reads each model file in a child first
        trial_load([directory / n for n in needed if n.endswith(LGB_SUFFIX)])


# Run in a child process: prints each file's name once LightGBM has read it whole.
_TRIAL = """
import sys
import lightgbm
for path in sys.argv[1:]:
    lightgbm.Booster(model_file=path)
    print(path, flush=True)
"""
TRIAL_TIMEOUT_S = 300


def trial_load(paths: list[Path]) -> None:
    """Have LightGBM read ``paths`` in a child process; refuse the file it fails on.

    A bundle without ``checksums.json`` (saved before they were recorded) cannot be compared
    with what training wrote, and a file damaged in the middle passes the structural check,
    then aborts the process that parses it. The child takes the abort instead.
    """
    if not paths:
        return
    import subprocess
    import sys

    try:
        done = subprocess.run(
            [sys.executable, "-c", _TRIAL, *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=TRIAL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise CorruptArtifactError(
            f"{paths[0].parent}: LightGBM did not read the model files within "
            f"{TRIAL_TIMEOUT_S} s (a bundle without {CHECKSUMS_FILE} is read in a child first)"
        ) from exc
    if done.returncode == 0:
        return
    read = set(done.stdout.split())
    bad = next((p for p in paths if str(p) not in read), paths[0])
    why = [line for line in done.stderr.splitlines() if "[LightGBM]" in line or "Error" in line]
    reason = why[-1].strip() if why else f"exit {done.returncode}"
    raise CorruptArtifactError(
        f"{bad}: LightGBM cannot read it ({reason}); "
        f"the bundle has no {CHECKSUMS_FILE} to compare with, so it was read in a child "
        "process first: the artifact is corrupt; register the model again"
    )
