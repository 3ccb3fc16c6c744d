"""Each text's reading kept between builds, so a later build reads only texts it has not read.

A reading (a text's VADER score, its topic mask) is kept under a hash of the text and the
identity of the reader that made it: for sentiment the VADER version, this module's
``READER_CODE`` and the settings that change a score (lexicon additions, the English
share); for topics the keyword taxonomy and competitor names, or the supervised classifier's
identity (what it was fitted on: :func:`classifier_identity`). A reading of another reader
is never used: a changed taxonomy reads every text again. The cache is one Parquet file,
``.radar/text_readings.parquet`` in the data directory, written atomically (temporary file,
then rename); an unreadable or foreign file is ignored with one logged line and written afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.catalogue import TEXT_TOPICS
from features.io import atomic_file

log = logging.getLogger(__name__)

# Bump when features.text reads a text differently for the same settings (the fast VADER,
# what counts as readable English): every kept reading is then read again.
READER_CODE = 1
FORMAT = "1"  # the file's layout
CACHE_DIR = ".radar"
CACHE_FILE = "text_readings.parquet"


def text_key(text: str) -> bytes:
    """A 16-byte hash of a text (BLAKE2b: collisions are out of reach at any volume)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _digest(obj: object) -> str:
    return hashlib.blake2b(json.dumps(obj, sort_keys=True).encode(), digest_size=12).hexdigest()


def sentiment_reader(cfg, english: frozenset[str]) -> str:
    """Who reads sentiment: VADER's version, the reading code, the settings that move a score.

    ``cfg``: the ``features.text.TextConfig``; ``english``: the function words that make a
    text readable.
    """
    from importlib.metadata import version  # only when a cache is used

    return "sentiment:" + _digest(
        {
            "vader": version("vaderSentiment"),
            "code": READER_CODE,
            "lexicon": sorted(cfg.lexicon.items()),
            "min_english_share": cfg.min_english_share,
            "english": sorted(english),
        }
    )


def topic_reading_id(cfg, classifier=None) -> str:
    """Who reads topics: the keyword taxonomy and competitors, or the fitted classifier.

    ``cfg``: the ``features.text.TextConfig``; ``classifier``: a fitted scikit-learn model.
    """
    if classifier is not None:
        # A classifier fitted by features.text carries the identity of what it learnt from;
        # another is hashed whole (its pickle can differ between processes: then a miss).
        model = getattr(classifier, "reading_id_", None)
        if model is None:
            model = hashlib.blake2b(pickle.dumps(classifier), digest_size=12).hexdigest()
        return f"topics:classifier:{model}:{list(TEXT_TOPICS)}"
    taxonomy = {t: list(cfg.topics.get(t, ())) for t in TEXT_TOPICS}
    return "topics:keywords:" + _digest(
        {"code": READER_CODE, "topics": taxonomy, "competitors": list(cfg.competitors)}
    )


def classifier_identity(texts: list[str], topics: list[str], settings: object) -> str:
    """The identity of a classifier fitted on these labelled texts with these settings.

    Fitting is deterministic, so the same labels, settings and scikit-learn version make the
    same model; a new label makes another (and its readings are read afresh).
    """
    from importlib.metadata import version  # only when a classifier is fitted

    return _digest(
        {
            "texts": texts,
            "topics": topics,
            "settings": repr(settings),
            "sklearn": version("scikit-learn"),
        }
    )


class ReadingCache:
    """Readings by reader and text hash, loaded from and saved to one file (None: in memory).

    ``read`` counts the texts read afresh in this run, ``reused`` those taken from the cache.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        """Load the kept readings of ``path`` (an unreadable file: none, said once)."""
        self.path = None if path is None else Path(path)
        self._kept: dict[str, dict[bytes, float]] = {}
        self._used: set[str] = set()
        self.read = 0
        self.reused = 0
        self._dirty = False
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            table = pq.read_table(self.path)
            meta = table.schema.metadata or {}
            if meta.get(b"radar_text_readings") != FORMAT.encode():
                raise ValueError("not a text reading cache of this version")
            readers = pc.dictionary_encode(table.column("reader")).combine_chunks()
            keys, values = table.column("key"), table.column("value")
            kept = {}
            for code, reader in enumerate(readers.dictionary.to_pylist()):
                rows = pc.equal(readers.indices, code)
                held = keys.filter(rows).to_pylist(), values.filter(rows).to_pylist()
                kept[reader] = dict(zip(*held, strict=True))  # built in C, no per-row code
        except Exception as err:  # noqa: BLE001 - any damage means: read the texts again
            log.warning("text reading cache %s ignored (%s): texts are read afresh", self.path, err)
            return
        self._kept = kept

    def readings(self, reader: str) -> dict[bytes, float]:
        """The kept readings of ``reader`` by text hash (add to it with :meth:`add`)."""
        self._used.add(reader)
        return self._kept.setdefault(reader, {})

    def add(self, reader: str, keys: list[bytes], values) -> None:
        """Keep the readings just made of the texts with these hashes."""
        got = self.readings(reader)
        got.update(zip(keys, (float(v) for v in values), strict=True))
        self.read += len(keys)
        self._dirty = self._dirty or bool(keys)

    def save(self) -> None:
        """Write the readings of the readers used in this run (others are stale) atomically.

        A cache that cannot be written (a read-only data folder) is said once and skipped.
        """
        if self.path is None or not self._dirty:
            return
        readers, keys, values = [], [], []
        for reader in sorted(self._used):
            got = self._kept.get(reader, {})
            readers += [reader] * len(got)
            keys += list(got)
            values += list(got.values())
        table = pa.table(
            {
                "reader": pa.array(readers, pa.string()).dictionary_encode(),
                "key": pa.array(keys, pa.binary(16)),
                "value": pa.array(values, pa.float64()),
            }
        ).replace_schema_metadata({"radar_text_readings": FORMAT})
        try:
            with atomic_file(self.path) as tmp:
                pq.write_table(table, tmp)
        except OSError as err:
            log.warning("text reading cache %s not written (%s)", self.path, err)
            return
        self._dirty = False


def cache_path(source: object) -> Path | None:
    """Where a data source keeps its readings: a local directory's ``.radar`` folder, else None."""
    if source is None or "://" in str(source):  # a database or a URI: nowhere to keep them
        return None
    directory = Path(str(source))
    if not directory.is_dir():
        return None
    return directory / CACHE_DIR / CACHE_FILE
