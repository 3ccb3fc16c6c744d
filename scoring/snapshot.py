"""The one door to a dated snapshot: raw data, a date and a model in, the rows to score out.

``radar score`` (in process and on Spark), ``radar brief``, ``radar kpis``, ``radar monitor`` and
the notebooks build the snapshot they score here, and only here: with the feature configuration
the model was trained on (health scheme, plan mapping, product-feature columns, labels from
activity), checked against the period the data covers, with the same data options everywhere
(``now`` and ``future`` as ``radar validate``; a PostgreSQL URL or, on Spark, a URI).

The date travels as a :class:`pandas.Timestamp` field of :class:`DatedSnapshot`, never as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from features.checker import is_uri
from features.config import FeatureConfig
from features.context import expansion_uplift
from features.contract import Dataset
from features.pipeline import build_snapshots
from features.postgres import is_postgres
from features.snapshots import data_end, history_start
from features.sources import describe, open_data
from features.store import DEFAULT_EXPANSION_UPLIFT, missing_inputs, with_context
from training.model import ModelBundle
from training.registry import ScoringModel, feature_config

ProgressFn = Callable[[str, int, int], None]
HistoryFn = Callable[[pd.Timestamp, pd.Timestamp], pd.DatetimeIndex]
ENGINE_SETTINGS = ("engine", "spark_master", "spark_conf")


@dataclass(frozen=True)
class DatedSnapshot:
    """The accounts active at one date, as the model sees them, and what scoring them needs.

    Attributes:
        as_of: The date of the snapshot (midnight).
        rows: One row per active account: features, health score and account context.
        missing: Per row, the optional inputs it had no data for.
        uplift: The expansion uplift read from the contract history at ``as_of`` (None: no
            history to read it from; :attr:`uplift_or_default` gives what scoring uses).
        feature_config: The model's feature configuration the rows were built with.
        coverage: First and last day the data covers (history start, data end).
        missing_optional_tables: Optional tables the data does not have.
        source: Where the data came from, in words (a URL without its password).
        history: With ``history=``: the snapshots at the history dates, ``as_of`` the last.
        raw: The raw tables asked for with ``tables=`` that the data has.

    """

    as_of: pd.Timestamp
    rows: pd.DataFrame
    missing: list[list[str]]
    uplift: float | None
    feature_config: FeatureConfig
    coverage: tuple[pd.Timestamp, pd.Timestamp]
    missing_optional_tables: list[str]
    source: str
    history: pd.DataFrame | None = None
    raw: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def uplift_or_default(self) -> float:
        """The uplift scoring uses: the history's, else the default."""
        return DEFAULT_EXPANSION_UPLIFT if self.uplift is None else self.uplift


def model_feature_config(
    model: ScoringModel | ModelBundle | FeatureConfig, engine: FeatureConfig | None = None
) -> FeatureConfig:
    """The feature configuration of ``model``, computed where ``engine`` says (default: its own).

    Only the engine settings (engine, Spark master and settings) come from ``engine``: every
    setting that changes a column comes from the model.
    """
    if isinstance(model, FeatureConfig):
        trained = model
    else:
        trained = feature_config(getattr(model, "bundle", model))  # a model or its bundle
    if engine is None:
        return trained
    return trained.model_copy(update={k: getattr(engine, k) for k in ENGINE_SETTINGS})


def _where(data: str | Path) -> str:
    """A folder as its absolute path; a URL or URI as given (no password)."""
    if is_postgres(data) or is_uri(data):
        return describe(data)
    return str(Path(data).resolve())


@contextmanager
def _opened(data: str | Path | Dataset, cfg: FeatureConfig, now, future: str) -> Iterator[Dataset]:
    if isinstance(data, Dataset):  # opened by the caller, with its data options
        yield data
        return
    engine = {k: getattr(cfg, k) for k in ENGINE_SETTINGS}
    with open_data(data, **engine, now=now, future=future) as ds:
        yield ds


def dated_snapshot(
    data: str | Path | Dataset,
    as_of: pd.Timestamp | date | str | None,
    model: ScoringModel | ModelBundle | FeatureConfig,
    *,
    now: pd.Timestamp | date | str | None = None,
    future: str = "error",
    engine: FeatureConfig | None = None,
    history: HistoryFn | None = None,
    tables: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> DatedSnapshot:
    """The snapshot of every account active at ``as_of`` (None: the data's last day).

    Args:
        data: A directory of table files, a PostgreSQL URL, a URI (Spark engine), or a dataset
            already opened (then ``now`` and ``future`` were the opener's to apply).
        as_of: The date of the snapshot.
        model: The model (or its feature configuration) the snapshot is built for.
        now: The data's reference date: a row dated after it is an error (or, with
            ``future="exclude"``, a warning and left out). None checks nothing.
        future: ``"error"`` or ``"exclude"``.
        engine: Where the features are computed (its engine settings only).
        history: The earlier dates to build too, from ``(as_of, first day covered)``: the
            brief's trends. Their snapshots are :attr:`DatedSnapshot.history`.
        tables: Raw tables to hand back (those the data has), e.g. for the KPIs.
        progress: ``update(description, done, total)`` calls.

    Raises:
        ContractError: When the data breaks the contract.
        ValueError: When ``as_of`` is outside the period the data covers, no account is
            active then, or an option is wrong.

    """
    if future not in ("error", "exclude"):
        raise ValueError(f"--future-rows: use error or exclude, got {future!r}")
    cfg = model_feature_config(model, engine)
    with _opened(data, cfg, now, future) as ds:
        first, last = history_start(ds, cfg), data_end(ds, cfg)
        t = last if as_of is None else pd.Timestamp(as_of).normalize()
        if not first <= t <= last:
            raise ValueError(
                f"--as-of {t.date()} is outside the data, which covers {first.date()} .. "
                f"{last.date()}: features after the last day would read missing activity as none"
            )
        dates = pd.DatetimeIndex([t]) if history is None else history(t, first)
        run = build_snapshots(ds, cfg, progress, dates=dates, with_labels=False)
        snaps = run.snapshots
        today = snaps[snaps["as_of"] == t].reset_index(drop=True)
        if today.empty:
            raise ValueError(f"no account is active at {t.date()}")
        rows = with_context(today, run.context)
        missing = missing_inputs(run.context, ds.report.missing_optional, rows["account_id"], t)
        uplift = expansion_uplift(ds["subscriptions"], t) if ds.has("subscriptions") else None
        raw = {n: ds[n] for n in tables if ds.has(n)}
        return DatedSnapshot(
            as_of=t,
            rows=rows,
            missing=missing,
            uplift=uplift,
            feature_config=cfg,
            coverage=(first, last),
            missing_optional_tables=list(ds.report.missing_optional),
            source=_where(ds.source if isinstance(data, Dataset) else data),
            history=None if history is None else snaps,
            raw=raw,
        )
