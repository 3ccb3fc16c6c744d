"""Atomic writes: outputs appear whole or not at all, with ordinary permissions.

Temporary files are named ``.<target>.tmp-*`` beside their target; a write killed before
its rename leaves one behind, and the next write of the same target removes it
(:func:`clean_stale`; one writer per output at a time). Files that belong together (a store's
data files and its manifest, scores and their summary) record the SHA-256 and size of the
data file in the file written last (:func:`file_record`), and readers refuse a mismatch
(:func:`check_record`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it replaces ``target``.

    On any exception the temporary directory is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def clean_stale(directory: str | Path, names: list[str]) -> list[Path]:
    """Remove temporary files and folders that killed writes of ``names`` left behind."""
    d = Path(directory)
    if not d.is_dir():
        return []
    gone = []
    for name in names:
        for stale in d.glob(f".{name}.tmp-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            gone.append(stale)
    return gone


def file_record(path: str | Path) -> dict[str, object]:
    """What a partner file records about a data file: its size and SHA-256."""
    p = Path(path)
    return {"bytes": p.stat().st_size, "sha256": file_sha256(p)}


def check_record(path: str | Path, record: dict, written_by: str) -> None:
    """Refuse ``path`` unless it is the file ``record`` describes (see :func:`file_record`)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p} is missing: write it again with `{written_by}`")
    size = p.stat().st_size
    if size != record.get("bytes") or file_sha256(p) != record.get("sha256"):
        raise ValueError(
            f"{p} does not match what was recorded beside it ({size:,} bytes, expected "
            f"{record.get('bytes', 0):,} with sha256 {str(record.get('sha256'))[:12]}...): "
            f"it was not written together with it; write both again with `{written_by}`"
        )


def check_writable(path: str | Path, folder: bool = False) -> Path:
    """``path`` (a file, or a ``folder``) can be written; else ValueError naming it.

    Checked before any work, so a command does not compute everything and then fail.
    """
    p = Path(path)
    if folder and p.is_dir():
        parent = p
    else:
        parent = p.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    if p.exists() and p.is_dir() != folder:
        what = "a folder; give a file name" if p.is_dir() else "a file; give a folder"
        raise ValueError(f"--out {p}: is {what}")
    if not parent.is_dir():
        raise ValueError(f"--out {p}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {p}: {parent} is not writable")
    return p


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
