"""The snapshot store as the service verified it at start, whatever happens to the folder.

The service reads earlier dates (``as_of`` in a request) and the accounts' context from the
store on demand. Deleted under a running server, those reads answered 500 while ``/readyz``
said 200; replaced by a new ``radar features --out``, history answers silently changed
(A000100 at 2025-03-31: 0.0363 -> 0.0514) while the latest date came from the old data.

:class:`PinnedStore` opens the data files once, when the store is verified, and reads only
through those open files. ``radar features`` replaces files by renaming new ones in, so the
open files keep the verified bytes even after the folder is replaced or deleted: every answer
comes from the one store that was verified, never a 500, never a mix. A change of the folder
is logged once; a restart (or a new worker) serves the new store.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from features.store import CONTEXT_FILE, SNAPSHOTS_FILE, SnapshotStore

log = logging.getLogger("renewal_radar.service")


@dataclass(frozen=True)
class PinnedStore(SnapshotStore):
    """A :class:`SnapshotStore` read through files opened when it was verified."""

    files: dict[str, IO[bytes]] = field(default_factory=dict, compare=False, repr=False)
    lock: Any = field(default_factory=threading.Lock, compare=False, repr=False)
    noted: list[bool] = field(default_factory=lambda: [False], compare=False, repr=False)

    @classmethod
    def open(cls, directory: str | Path) -> PinnedStore:
        """Open the data files, then verify them as :meth:`SnapshotStore.open` does."""
        d = Path(directory)
        files = {}
        for name in (SNAPSHOTS_FILE, CONTEXT_FILE):
            if (d / name).is_file():
                files[name] = (d / name).open("rb")
        verified = SnapshotStore.open(d)  # hashes against the manifest (read once, kept)
        store = cls(d, files=files)
        store.__dict__["manifest"] = verified.manifest  # the manifest verified, kept
        for name, handle in files.items():  # the files verified are the ones held open
            if os.fstat(handle.fileno()).st_ino != (d / name).stat().st_ino:
                raise RuntimeError(f"{d / name} was replaced while the service opened it")
        return store

    def _read(self, name: str, **kwargs: Any) -> pd.DataFrame:
        self._note_change()
        with self.lock:  # one position per open file
            handle = self.files[name]
            handle.seek(0)
            return pd.read_parquet(handle, **kwargs)

    def _note_change(self) -> None:
        """Log once that the folder no longer holds the files served (they still are)."""
        if self.noted[0]:
            return
        for name, handle in self.files.items():
            try:
                same = os.stat(self.directory / name).st_ino == os.fstat(handle.fileno()).st_ino
            except OSError:
                same = False
            if not same:
                self.noted[0] = True
                log.warning(
                    "the snapshot store %s changed since the service verified it: still "
                    "serving the verified snapshots (latest %s); restart to serve the new ones",
                    self.directory,
                    self.latest.date(),
                )
                return

    def snapshots(self, columns: list[str] | None = None) -> pd.DataFrame:  # noqa: D102
        frame = self._read(SNAPSHOTS_FILE, columns=columns)
        if "as_of" in frame:
            frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[s]")
        return frame

    def snapshots_at(self, as_of: pd.Timestamp) -> pd.DataFrame:  # noqa: D102
        frame = self._read(SNAPSHOTS_FILE, filters=[("as_of", "==", pd.Timestamp(as_of))])
        frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[s]")
        return frame

    def context(self) -> pd.DataFrame:  # noqa: D102
        if CONTEXT_FILE not in self.files:
            return pd.DataFrame(index=pd.Index([], name="account_id"))
        return self._read(CONTEXT_FILE).set_index("account_id")
