"""The BentoML scoring service: ``bentoml serve serving.service:RenewalRadar``.

Settings come from the environment (``radar serve`` sets them):

- ``RADAR_FEATURES``: output directory of ``radar features``; its latest as-of date is served by
  account id (required);
- ``RADAR_MODEL_URI`` (default ``models:/renewal-radar@champion``) and ``MLFLOW_TRACKING_URI``;
- ``RADAR_API_KEY``: when set, every scoring endpoint needs it (``X-API-Key`` header or
  ``Authorization: Bearer``); health, metrics and the OpenAPI document stay open;
- ``RADAR_MAX_REQUEST_BYTES``: larger request bodies get 413 (default 1 MiB);
- ``RADAR_WORKERS``: worker processes (default 2);
- ``RADAR_KEEPALIVE_REQUESTS``: answers per keep-alive connection before it is closed (32).

The CSM pages (:mod:`serving.ui`) are mounted under ``/ui``.

If the model or the snapshots cannot be loaded, the service logs exactly what is missing and
never becomes ready (``/readyz`` answers 503); scoring endpoints answer 503 with the reason.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import bentoml
import bentoml._internal.server.http.traffic as bentoml_traffic
import numpy as np
import pandas as pd
import pydantic_core

# BentoML builds output specs with these (not re-exported; bentoml is pinned, and the OpenAPI
# test checks the documented schemas).
from _bentoml_sdk.io_models import IODescriptor, ensure_io_descriptor
from bentoml.exceptions import InvalidArgument, ServiceUnavailable
from pydantic import Field
from starlette.responses import Response

from features.catalogue import FEATURES
from features.config import FeatureConfig
from features.health import with_rules
from serving import ui
from serving.middleware import (
    ApiKeyMiddleware,
    BodySizeLimitMiddleware,
    KeepAliveLimitMiddleware,
    TimeoutMiddleware,
    WholeResponseMiddleware,
    env_int,
)
from serving.plays import ScoringConfig
from serving.schemas import (
    AccountScore,
    BulkItem,
    CatalogueEntry,
    ModelInfo,
    ScoreResponse,
    Snapshot,
)
from serving.scoring import (
    DEFAULT_EXPANSION_UPLIFT,
    DEFAULT_MODEL_URI,
    Rows,
    ScoringModel,
    expansion_uplift,
    load_model,
    score_rows,
)

log = logging.getLogger("renewal_radar.service")

MAX_IDS = 100  # per call on the low-latency endpoints; the bulk endpoint takes more
MAX_BULK = 10_000
TREND_SNAPSHOTS = 12  # past snapshots kept per account for the trends of the account page
ACCOUNT_INFO = ("name", "csm_owner", "industry", "region")  # from the raw accounts table


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


@dataclass
class State:
    """What the service loaded at start."""

    model: ScoringModel
    rows: Rows  # snapshots at the latest as-of date, converted once for scoring
    position: dict[str, int]  # account id -> its row
    older: set[str]  # accounts with snapshots, but not active at the latest date
    as_of: pd.Timestamp
    risk_cut: float
    uplift: float
    feature_cfg: FeatureConfig
    missing_tables: list[str]
    test_metrics: dict[str, float]
    history: pd.DataFrame  # snapshots of the last TREND_SNAPSHOTS dates, by account and date
    history_rows: dict[str, np.ndarray]  # account id -> its rows in ``history``
    accounts: pd.DataFrame  # name, CSM owner, industry, region by account id (may be empty)


def load_state(settings: Settings) -> State:
    """Load the model and the latest snapshots; raise with a precise reason if impossible."""
    from features.contract import load_dataset
    from training.data import load_snapshots

    if settings.features is None:
        raise RuntimeError("RADAR_FEATURES is not set: give the `radar features` output directory")
    table = load_snapshots(settings.features)
    try:
        model = load_model(settings.model_uri, settings.tracking_uri)
    except Exception as exc:  # the registry's own message names the alias / version / file
        raise RuntimeError(
            f"cannot load model {settings.model_uri} from tracking URI "
            f"{settings.tracking_uri or 'sqlite:///mlflow.db'}: {exc}"
        ) from exc
    frame = table.frame
    as_of = frame["as_of"].max()
    latest = frame[frame["as_of"] == as_of].reset_index(drop=True)
    rows = Rows.from_frame(latest, model.bundle)
    p90 = model.bundle.predict_matrix(rows.x).get("p_churn_90d")
    cut = float(np.quantile(p90, 0.9)) if p90 is not None and len(p90) else math.nan
    manifest = table.manifest
    uplift = None
    accounts = pd.DataFrame(index=pd.Index([], name="account_id"))
    raw = manifest.get("input", {}).get("directory")
    if raw and Path(raw).is_dir():  # the typical expansion size, from the contract history
        subs = load_dataset(raw, tables=["accounts", "subscriptions"], strict=False)
        if subs.has("subscriptions"):
            uplift = expansion_uplift(subs["subscriptions"], as_of)
        info = subs["accounts"]
        accounts = info[[c for c in ACCOUNT_INFO if c in info]].set_index(info["account_id"])
    # Only what the trends need: the model's features and the health columns.
    dates = np.sort(frame["as_of"].unique())[-TREND_SNAPSHOTS:]
    keep = ["account_id", "as_of", *model.bundle.spec.names]
    keep += [c for c in frame.columns if c.startswith("health_") and c not in keep]
    history = frame.loc[frame["as_of"].isin(dates), [c for c in keep if c in frame]]
    history = history.sort_values(["account_id", "as_of"]).reset_index(drop=True)
    metrics = {}
    if model.run_id:
        from mlflow.tracking import MlflowClient

        run = MlflowClient().get_run(model.run_id)
        metrics = {
            k.replace("/model/", "/"): v
            for k, v in run.data.metrics.items()
            if k.count("/") == 2 and "/model/" in k
        }
    return State(
        model=model,
        rows=rows,
        position={a: i for i, a in enumerate(latest["account_id"])},
        older=set(frame["account_id"]) - set(latest["account_id"]),
        as_of=as_of,
        risk_cut=cut,
        uplift=DEFAULT_EXPANSION_UPLIFT if uplift is None else uplift,
        feature_cfg=FeatureConfig.model_validate(manifest.get("config", {})),
        missing_tables=list(manifest.get("missing_optional_tables", [])),
        test_metrics=metrics,
        history=history,
        history_rows={a: np.asarray(i) for a, i in history.groupby("account_id").indices.items()},
        accounts=accounts,
    )


def _text(v: object) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)


ACCOUNT_FIELDS = tuple(AccountScore.model_fields)
# Health columns of the record that are not components of the score.
HEALTH_FIELDS = ("health_score", "health_band", "health_coverage", "health_change")
PER_HEAD = ("drivers", "baseline", "remainder")


def _plain(values: np.ndarray | list) -> list:
    """A column as plain Python values: NaN as None, dates as dates."""
    if not isinstance(values, np.ndarray):
        return values
    if values.dtype.kind == "M":
        return values.astype("datetime64[D]").tolist()
    if values.dtype.kind == "f" and np.isnan(values).any():
        out = values.astype(object)
        out[np.isnan(values)] = None
        return out.tolist()
    return values.tolist()


def api_records(columns: dict[str, np.ndarray | list], heads: list[str]) -> list[dict[str, Any]]:
    """Columns of :func:`score_rows` as the API's records: exactly the fields of AccountScore.

    Plain values, built column by column: the service answers without validating its own
    output (a test holds every record to the schema).
    """
    n = len(columns["account_id"])

    def rows_of(parts: dict[str, list]) -> list[dict]:
        rows = [dict(zip(parts, v, strict=True)) for v in zip(*parts.values(), strict=True)]
        return rows or [{} for _ in range(n)]

    components = {
        c.removeprefix("health_"): _plain(columns[c])
        for c in columns
        if c.startswith("health_") and c not in HEALTH_FIELDS
    }
    fields: dict[str, list] = {}
    for k in ACCOUNT_FIELDS:
        if k == "health_components":
            fields[k] = rows_of(components)
        elif k in PER_HEAD:
            fields[k] = rows_of({h: columns[f"{k}_{h}"] for h in heads})
        else:
            fields[k] = _plain(columns[k]) if k in columns else [None] * n
    return [dict(zip(fields, v, strict=True)) for v in zip(*fields.values(), strict=True)]


def to_json(value: Any) -> bytes:
    """JSON of plain values (dates as ISO strings)."""
    return pydantic_core.to_json(value, inf_nan_mode="null")


def prebuilt(schema: Any) -> type[IODescriptor]:
    """Output spec of an endpoint that returns its JSON already built.

    The OpenAPI document still describes ``schema``. A value is JSON bytes, or (the slices
    of a batched endpoint) a list of items' JSON bytes, sent as an array.
    """

    class Prebuilt(ensure_io_descriptor(schema)):  # type: ignore[misc, valid-type]
        @classmethod
        async def to_http_response(cls, obj: bytes | list[bytes], serde: Any) -> Response:
            body = b"[" + b",".join(obj) + b"]" if isinstance(obj, list) else obj
            return Response(body, media_type="application/json")

    Prebuilt.__name__ = Prebuilt.__qualname__ = f"{getattr(schema, '__name__', 'Output')}Output"
    return Prebuilt


AccountIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    Field(min_length=1, max_length=MAX_IDS, description="Account ids.", examples=[["A000042"]]),
]


@bentoml.service(
    name="renewal-radar",
    traffic={"timeout": 120, "max_concurrency": 64},
    # Scoring is CPU-bound Python: one worker process per core (``radar serve --workers``).
    workers=env_int("RADAR_WORKERS", 2),
)
@bentoml.asgi_app(ui.app, path="/ui")
class RenewalRadar:
    """Churn and expansion scores with drivers, by account id or for a sent snapshot."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.scoring_cfg = ScoringConfig()
        self._portfolio: pd.DataFrame | None = None
        self._portfolio_lock = threading.Lock()
        self.state: State | None = None
        self.error: str | None = None
        try:
            self.state = load_state(self.settings)
            log.info(
                "serving %s for %d accounts at %s",
                self.state.model.label,
                len(self.state.position),
                self.state.as_of.date(),
            )
        except Exception as exc:  # keep running, unready, and say exactly why
            self.error = str(exc)
            log.error("renewal-radar is not ready: %s", self.error)
        # What is loaded now lives as long as the worker: keep it out of the collector's full
        # passes, which otherwise stall a request now and then for ~100 ms (measured).
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.state is not None

    def _state(self) -> State:
        if self.state is None:
            raise ServiceUnavailable(f"not ready: {self.error}")
        return self.state

    def _score(self, rows: Rows) -> list[dict[str, Any]]:
        s = self._state()
        columns = score_rows(
            rows,
            s.model,
            self.scoring_cfg,
            missing=[list(s.missing_tables) for _ in range(len(rows))],
            uplift=s.uplift,
            risk_cut=s.risk_cut,
        )
        heads = list(s.model.bundle.heads)
        return api_records(columns, heads)

    def _by_id(self, ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        s = self._state()
        known = [s.position[i] for i in dict.fromkeys(ids) if i in s.position]
        errors = [
            {
                "account_id": i,
                "error": f"not an active customer at {s.as_of.date()}"
                if i in s.older
                else "unknown account",
            }
            for i in dict.fromkeys(ids)
            if i not in s.position
        ]
        results = self._score(s.rows.take(known)) if known else []
        return results, errors

    def portfolio(self) -> pd.DataFrame:
        """Every account of the latest date scored, with name, CSM and top churn driver.

        Computed on first use (the CSM pages), then kept: the snapshots and model are fixed.
        """
        with self._portfolio_lock:
            if self._portfolio is None:
                s = self._state()
                columns = score_rows(
                    s.rows, s.model, self.scoring_cfg, uplift=s.uplift, risk_cut=s.risk_cut
                )
                df = pd.DataFrame(columns)
                for c in ACCOUNT_INFO:
                    df[c] = df["account_id"].map(s.accounts[c]) if c in s.accounts else None
                df["top_driver"] = [
                    next((d["sentence"] for d in ds if d["effect"] > 0), None)
                    for ds in df["drivers_churn_90d"]
                ]
                self._portfolio = df
            return self._portfolio

    def account_view(self, account_id: str) -> dict[str, Any] | None:
        """What the account page shows: record, identity, trends; None if not served."""
        s = self._state()
        if account_id not in s.position:
            return None
        pos = s.position[account_id]
        score = AccountScore.model_validate(self._score(s.rows.take([pos]))[0])
        past = s.history.iloc[s.history_rows.get(account_id, np.array([], int))]
        probs = s.model.bundle.predict(past) if len(past) else pd.DataFrame()
        trends = {c: probs[c].tolist() for c in probs.columns}
        for c in (c for c in past.columns if c.startswith("health_")):
            if c != "health_band":
                trends[c] = past[c].astype("float64").tolist()
        days, seats = score.days_to_renewal, s.rows.col("seats", numeric=True)[pos]
        renewal = None if days is None else (s.as_of + pd.Timedelta(days=days)).date()
        info = s.accounts.loc[account_id] if account_id in s.accounts.index else {}
        return {
            "score": score,
            "info": {c: _text(info.get(c)) for c in ACCOUNT_INFO},
            "seats": None if np.isnan(seats) else float(seats),
            "renewal_date": renewal,
            "trends": trends,
            "trend_points": len(past),
            "trend_from": past["as_of"].min().date() if len(past) else s.as_of.date(),
        }

    # The low-latency endpoints score on the event loop: the work holds the GIL anyway, and a
    # hand-off to BentoML's thread and back costs more than it saves (measured).
    @bentoml.api(route="/v1/score/accounts", output_spec=prebuilt(ScoreResponse))
    async def score_accounts(self, account_ids: AccountIds) -> bytes:
        """Score accounts by id from the latest snapshots: probabilities, drivers, play.

        Unknown ids are reported one by one in ``errors``; the others are scored.
        """
        results, errors = self._by_id(account_ids)
        return to_json({"results": results, "errors": errors})

    @bentoml.api(route="/v1/score/snapshots", output_spec=prebuilt(ScoreResponse))
    async def score_snapshots(
        self,
        snapshots: Annotated[
            list[Snapshot], Field(min_length=1, max_length=MAX_IDS, description="Snapshots.")
        ],
    ) -> bytes:
        """Score feature values sent by the caller (also the what-if path).

        The health score, alerts and triggers are recomputed from the values sent; features
        left out are missing, as in training.
        """
        s = self._state()
        rows = pd.DataFrame(
            [
                {
                    "account_id": snap.account_id,
                    "as_of": pd.Timestamp(snap.as_of or date.today()),
                    **snap.features.model_dump(),
                }
                for snap in snapshots
            ]
        )
        for f in FEATURES:
            if not f.categorical:
                rows[f.name] = rows[f.name].astype("float64")
        full = with_rules(rows, s.feature_cfg)
        results = self._score(Rows.from_frame(full, s.model.bundle))
        return to_json({"results": results, "errors": []})

    @bentoml.api(
        route="/v1/score/bulk",
        batchable=True,
        max_batch_size=MAX_BULK,
        max_latency_ms=1000,
        output_spec=prebuilt(list[BulkItem]),
    )
    def score_bulk(self, account_ids: list[str]) -> list[bytes]:
        """Score many accounts per call (adaptive batching); one item per id, in order."""
        if len(account_ids) > MAX_BULK:
            raise InvalidArgument(f"at most {MAX_BULK} account ids per call")
        results, errors = self._by_id(account_ids)
        found = {r["account_id"]: r for r in results}
        why = {e["account_id"]: e["error"] for e in errors}
        return [
            to_json({"account_id": i, "result": found.get(i), "error": why.get(i)})
            for i in account_ids
        ]

    @bentoml.api(route="/v1/model")
    def model_info(self) -> ModelInfo:
        """The served model: version, training run and window, test metrics, feature catalogue."""
        s = self._state()
        m = s.model
        return ModelInfo(
            model_uri=m.uri,
            model_name=m.name,
            model_version=m.version,
            training_run_id=m.run_id,
            training_window=m.bundle.metadata.get("split", {}),
            test_metrics=s.test_metrics,
            snapshot_as_of=s.as_of.date(),
            accounts=len(s.position),
            features=[
                CatalogueEntry(
                    name=f.name,
                    family=f.family,
                    unit=f.unit,
                    window_days=f.window,
                    description=f.description,
                    levels=list(f.levels),
                )
                for f in FEATURES
            ],
        )


# BentoML's request timeout leaks each request for the length of the timeout (see
# TimeoutMiddleware): the server builds its app with ours instead (bentoml is pinned; a test
# checks the swap).
bentoml_traffic.TimeoutMiddleware = TimeoutMiddleware
# Both read their settings from the environment when the server builds its app.
RenewalRadar.add_asgi_middleware(BodySizeLimitMiddleware)
RenewalRadar.add_asgi_middleware(ApiKeyMiddleware)
RenewalRadar.add_asgi_middleware(WholeResponseMiddleware)
RenewalRadar.add_asgi_middleware(KeepAliveLimitMiddleware)
