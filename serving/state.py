"""What the service loads at start: the model and the snapshot store, converted once.

Settings come from the environment (``radar serve`` sets them). The store is the only data
source: no raw table is opened and no SQL is built here.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalogue import FEATURE_BY_NAME, PRODUCT_FEATURE_PREFIX
from features.config import FeatureConfig
from features.store import SnapshotStore, missing_inputs, with_context
from scoring.plays import ScoringConfig
from scoring.records import Rows, top_risk_cut
from scoring.table_rows import rows_only_reason
from serving.pinned_store import PinnedStore
from training.registry import DEFAULT_MODEL_URI, ScoringModel, feature_config, load_model
from training.table import trained_on_table

TREND_SNAPSHOTS = 12  # past snapshots kept per account for the trends of the account page
DATES_KEPT = 4  # earlier snapshot dates kept converted after a call asked for one (LRU)


@dataclass(frozen=True)
class Settings:
    """Service settings, from the environment."""

    features: Path | None
    model_uri: str
    tracking_uri: str | None

    @classmethod
    def from_env(cls) -> Settings:
        """Read ``RADAR_*`` and ``MLFLOW_TRACKING_URI``."""
        features = os.environ.get("RADAR_FEATURES")
        return cls(
            features=Path(features) if features else None,
            model_uri=os.environ.get("RADAR_MODEL_URI", DEFAULT_MODEL_URI),
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"),
        )


@dataclass(frozen=True)
class DateRows:
    """The accounts active at one snapshot date, converted once for scoring."""

    as_of: pd.Timestamp
    rows: Rows
    position: dict[str, int]  # account id -> its row
    older: set[str]  # accounts with snapshots, but not active at this date
    missing: list[list[str]]  # per row: the inputs the account lacks
    risk_cut: float  # where this date's top decile of 90-day churn risk starts
    uplift: float


class UnknownDateError(ValueError):
    """A snapshot date the service does not hold; the message names the nearest it holds."""


def nearest_dates(dates: list[pd.Timestamp], when: pd.Timestamp) -> list[pd.Timestamp]:
    """The held dates just before and just after ``when`` (``dates`` sorted)."""
    i = bisect.bisect_left(dates, when)
    return dates[max(i - 1, 0) : i + 1]


@dataclass
class State:
    """What the service loaded at start."""

    model: ScoringModel
    rows: Rows  # snapshots at the latest as-of date, with context, converted once for scoring
    position: dict[str, int]  # account id -> its row
    older: set[str]  # accounts with snapshots, but not active at the latest date
    as_of: pd.Timestamp
    risk_cut: float
    uplift: float
    feature_cfg: FeatureConfig
    missing: list[list[str]]  # per row of ``rows``: the inputs the account lacks
    test_metrics: dict[str, float]
    history: pd.DataFrame  # snapshots of the last TREND_SNAPSHOTS dates, by account and date
    history_rows: dict[str, np.ndarray]  # account id -> its rows in ``history``
    dates: list[pd.Timestamp] = field(default_factory=list)  # every snapshot date held
    store: SnapshotStore | None = None  # where the other dates are read from, on demand
    cfg: ScoringConfig = field(default_factory=ScoringConfig)
    _earlier: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def latest(self) -> DateRows:
        """The latest date, as loaded at start."""
        return DateRows(
            self.as_of,
            self.rows,
            self.position,
            self.older,
            self.missing,
            self.risk_cut,
            self.uplift,
        )

    def at(self, when: date | pd.Timestamp | None) -> DateRows:
        """The accounts at snapshot date ``when`` (None: the latest).

        An earlier date is read from the store on first use and kept (the last
        ``DATES_KEPT``); its top decile is its own portfolio's.

        Raises:
            UnknownDateError: ``when`` is not a snapshot date of the store.

        """
        t = self.as_of if when is None else pd.Timestamp(when)
        if t == self.as_of:
            return self.latest
        if t not in set(self.dates) or self.store is None:
            held = self.dates or [self.as_of]  # a state built without its store: the latest
            near = ", ".join(str(d.date()) for d in nearest_dates(held, t))
            raise UnknownDateError(
                f"no snapshots at {t.date()}; the nearest dates held are {near} "
                f"({len(held)} dates from {held[0].date()} to {held[-1].date()})"
            )
        with self._lock:  # one read per date, also when calls for it arrive together
            if t in self._earlier:
                self._earlier.move_to_end(t)
                return self._earlier[t]
            known = self.older | set(self.position)
            frame = self.store.snapshots_at(t)
            got = _date_rows(frame, self.store, self.model, self.cfg, t, known)
            self._earlier[t] = got
            while len(self._earlier) > DATES_KEPT:
                self._earlier.popitem(last=False)
            return got


def _test_metrics(run_id: str | None) -> dict[str, float]:
    """The model's test-window metrics per head (``churn_90d/roc_auc``) from its training run."""
    if not run_id:
        return {}
    from mlflow.tracking import MlflowClient

    run = MlflowClient().get_run(run_id)
    return {
        k.replace("/model/", "/"): v
        for k, v in run.data.metrics.items()
        if k.count("/") == 2 and "/model/" in k
    }


def load_state(settings: Settings, cfg: ScoringConfig) -> State | ScoringModel:
    """Load the model and the latest snapshots; raise with a precise reason if impossible.

    A model trained on a feature table of its own (``radar train --table``) reads no store:
    it is returned alone and scores rows only. Given a store as well, it is refused (its
    columns are not the snapshots'), never served as all-missing answers.
    """
    if settings.features is None:
        missing = (
            "RADAR_FEATURES is not set: give the `radar features` output directory (only a "
            "model trained with `radar train --table` is served without one)"
        )
        try:
            model = _load(settings)
        except RuntimeError as exc:
            raise RuntimeError(f"{missing}; and {exc}") from exc
        if trained_on_table(model.bundle.metadata) is None:
            raise RuntimeError(missing)
        return model
    store = PinnedStore.open(settings.features)  # served as verified, whatever comes later
    model = _load(settings)
    return state_from_store(store, model, cfg, _test_metrics(model.run_id))


def _load(settings: Settings) -> ScoringModel:
    try:
        return load_model(settings.model_uri, settings.tracking_uri)
    except Exception as exc:  # the registry's own message names the alias / version / file
        raise RuntimeError(
            f"cannot load model {settings.model_uri} from tracking URI "
            f"{settings.tracking_uri or 'sqlite:///mlflow.db'}: {exc}"
        ) from exc


def state_from_store(
    store: SnapshotStore,
    model: ScoringModel,
    cfg: ScoringConfig,
    test_metrics: dict[str, float] | None = None,
) -> State:
    """The service's state for the latest date of ``store``, scored with ``model``."""
    frame = store.snapshots()
    lacking = [c for c in model.bundle.spec.names if c not in frame.columns]
    _refuse_unfit(store, model, lacking)
    if any(c.startswith(PRODUCT_FEATURE_PREFIX) for c in lacking):
        # Scored as missing they would read as "no use of the feature": refuse instead.
        raise RuntimeError(
            f"the snapshots in {store.directory} lack the model's product-feature columns "
            f"{', '.join(c for c in lacking if c.startswith(PRODUCT_FEATURE_PREFIX))}: rebuild "
            "them with the model's product features (product_features in the features config)"
        )
    as_of = frame["as_of"].max()
    latest = frame[frame["as_of"] == as_of].reset_index(drop=True)
    now = _date_rows(latest, store, model, cfg, as_of, set(frame["account_id"]))
    # Only what the trends need: the model's features and the health columns.
    dates = np.sort(frame["as_of"].unique())[-TREND_SNAPSHOTS:]
    keep = ["account_id", "as_of", *model.bundle.spec.names]
    keep += [c for c in frame.columns if c.startswith("health_") and c not in keep]
    history = frame.loc[frame["as_of"].isin(dates), [c for c in keep if c in frame]]
    history = history.sort_values(["account_id", "as_of"]).reset_index(drop=True)
    return State(
        model=model,
        rows=now.rows,
        position=now.position,
        older=now.older,
        as_of=as_of,
        risk_cut=now.risk_cut,
        uplift=now.uplift,
        # What-if rows are scored with the rules of the model's own training data.
        feature_cfg=feature_config(model.bundle),
        missing=now.missing,
        test_metrics=test_metrics or {},
        history=history,
        history_rows={a: np.asarray(i) for a, i in history.groupby("account_id").indices.items()},
        dates=[pd.Timestamp(d) for d in np.sort(frame["as_of"].unique())],
        store=store,
        cfg=cfg,
    )


def _refuse_unfit(store: SnapshotStore, model: ScoringModel, lacking: list[str]) -> None:
    """Refuse a store whose snapshots are not the model's inputs (all-missing answers else).

    A table's model is never served over snapshots; a model that reads columns the catalogue
    does not know (trained on something else) is refused when the store lacks them.
    """
    source = trained_on_table(model.bundle.metadata)
    foreign = [
        c for c in lacking if c not in FEATURE_BY_NAME and not c.startswith(PRODUCT_FEATURE_PREFIX)
    ]
    if source is None and not foreign:
        return
    names = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
    lack = (
        f"the snapshots in {store.directory} lack {len(foreign)} of its "
        f"{len(model.bundle.spec.names)} feature columns ({names})"
        if foreign
        else f"its columns are a table's, not the snapshots' of {store.directory}"
    )
    if source is not None:
        raise RuntimeError(
            f"{rows_only_reason(model.label, source)}; {lack}: serve it without --features"
        )
    raise RuntimeError(f"model {model.label} does not fit the store: {lack}")


def _date_rows(
    frame: pd.DataFrame,
    store: SnapshotStore,
    model: ScoringModel,
    cfg: ScoringConfig,
    as_of: pd.Timestamp,
    known: set[str],
) -> DateRows:
    """The snapshot rows of one date (``frame``) with their context, ready to score."""
    frame = frame.reset_index(drop=True)
    context = store.context()
    ids = frame["account_id"]
    rows = Rows.from_frame(with_context(frame, context), model.bundle)
    p90 = model.bundle.predict_matrix(rows.x).get("p_churn_90d")
    return DateRows(
        as_of=pd.Timestamp(as_of),
        rows=rows,
        position={a: i for i, a in enumerate(ids)},
        older=known - set(ids),
        missing=missing_inputs(context, store.absent_tables, ids, as_of),
        risk_cut=top_risk_cut(p90, cfg) if p90 is not None else float("nan"),
        uplift=store.expansion_uplift(as_of),
    )
