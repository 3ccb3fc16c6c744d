"""The BentoML scoring service: ``bentoml serve serving.service:RenewalRadar``.

Settings come from the environment (``radar serve`` sets them):

- ``RADAR_FEATURES``: output directory of ``radar features``; its latest as-of date is served by
  account id (required);
- ``RADAR_MODEL_URI`` (default ``models:/renewal-radar@champion``) and ``MLFLOW_TRACKING_URI``;
- ``RADAR_API_KEY``: when set, every scoring endpoint needs it (``X-API-Key`` header or
  ``Authorization: Bearer``); health, metrics and the OpenAPI document stay open;
- ``RADAR_MAX_REQUEST_BYTES``: larger request bodies get 413 (default 1 MiB);
- ``RADAR_WORKERS``: worker processes (default 2);
- ``RADAR_KEEPALIVE_REQUESTS``: answers per keep-alive connection before it is closed (32);
- ``RADAR_PREDICTION_LOG``: when set, a prediction log folder the by-id and bulk answers are
  appended to (:mod:`monitoring.service_log`);
- ``RADAR_MONITOR``: the folder ``radar monitor --out`` writes, shown at ``/ui/monitor``.

The CSM pages (:mod:`serving.ui`, their data from :mod:`serving.views`) are mounted under
``/ui``. What is loaded at start is in :mod:`serving.state`; BentoML workarounds are in
:mod:`serving.bentoml_fixes`. This module holds only the API.

If the model or the snapshots cannot be loaded, the service logs exactly what is missing and
never becomes ready (``/readyz`` answers 503); scoring endpoints answer 503 with the reason.
"""

from __future__ import annotations

import gc
import logging
import threading
from datetime import date
from typing import Annotated, Any

import bentoml
import pandas as pd
from bentoml.exceptions import InvalidArgument, ServiceUnavailable
from pydantic import Field

from features.catalogue import features_for
from features.health import with_rules
from monitoring.service_log import PredictionLogWriter, writer_from_env
from serving import bentoml_fixes, brief_views, ui
from serving.api_contract import ApiContractMiddleware, OpenApiMiddleware
from serving.bentoml_fixes import prebuilt
from serving.middleware import (
    ApiKeyMiddleware,
    BodySizeLimitMiddleware,
    KeepAliveLimitMiddleware,
    SecurityHeadersMiddleware,
    WholeResponseMiddleware,
    env_int,
)
from serving.plays import ScoringConfig
from serving.problems import ProblemMiddleware, redact
from serving.readiness import READINESS
from serving.schemas import (
    MAX_BULK,
    MAX_ID_LENGTH,
    MAX_IDS,
    BulkItem,
    CatalogueEntry,
    ModelInfo,
    ScoreResponse,
    Snapshot,
    api_records,
    to_json,
)
from serving.scoring import Rows
from serving.state import Settings, State, load_state
from serving.views import Views, score, score_positions

log = logging.getLogger("renewal_radar.service")


AccountIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]],
    Field(min_length=1, max_length=MAX_IDS, description="Account ids.", examples=[["A000042"]]),
]


@bentoml.service(
    name="renewal-radar",
    traffic={"timeout": 120, "max_concurrency": 64},
    # Scoring is CPU-bound Python: one worker process per core (``radar serve --workers``).
    workers=env_int("RADAR_WORKERS", 2),
)
@bentoml.asgi_app(ui.app, path="/ui")
@bentoml.asgi_app(brief_views.api, path="/v1/accounts")
class RenewalRadar:
    """Churn and expansion scores with drivers, by account id or for a sent snapshot."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.scoring_cfg = ScoringConfig()
        self.state: State | None = None
        self.views: Views | None = None
        self.briefs: brief_views.Briefs | None = None
        self.error: str | None = None
        self.prediction_log: PredictionLogWriter | None = None
        # Loaded beside the event loop, so /livez answers at once and /readyz says why not yet.
        threading.Thread(target=self._load, name="radar-load", daemon=True).start()

    def _load(self) -> None:
        """Load the model and the snapshots; on failure stay unready and say exactly why."""
        try:
            state = load_state(self.settings, self.scoring_cfg)
            self.views = Views(state, self.scoring_cfg)
            self.briefs = brief_views.Briefs(self.views, self.settings.features)
            self.prediction_log = writer_from_env(state.model)
            self.state = state
            READINESS.ready()
            log.info(
                "serving %s for %d accounts at %s",
                state.model.label,
                len(state.position),
                state.as_of.date(),
            )
        except Exception as exc:  # keep running, unready, and say exactly why
            self.error = redact(str(exc))
            READINESS.failed(self.error)
            log.error("renewal-radar is not ready: %s", self.error)
        # What is loaded now lives as long as the worker: keep it out of the collector's full
        # passes, which otherwise stall a request now and then for ~100 ms (measured).
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.state is not None

    def _state(self) -> State:
        if self.state is None:
            why = READINESS.why()
            raise ServiceUnavailable(f"not ready: {why[0] if why else self.error}")
        return self.state

    def _records(self, columns: dict) -> list[dict[str, Any]]:
        return api_records(columns, list(self._state().model.bundle.heads))

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
        if not known:
            return [], errors
        columns = score_positions(s, self.scoring_cfg, known)
        if self.prediction_log is not None:  # RADAR_PREDICTION_LOG: queued, written off-request
            self.prediction_log.add(columns)
        return self._records(columns), errors

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
        # Product-feature columns fit a pattern of the catalogue; only the model's own count.
        served = set(s.model.bundle.spec.names)
        foreign = sorted(
            {k for snap in snapshots for k in snap.features.model_extra or {}} - served
        )
        if foreign:
            raise InvalidArgument(
                f"features.{foreign[0]}: not a feature of the served model (its product-feature "
                "columns are listed by GET /v1/model)"
            )
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
        for f in features_for(s.feature_cfg.product_features):
            if not f.categorical:
                rows[f.name] = rows.get(f.name, pd.Series(float("nan"), index=rows.index))
                rows[f.name] = rows[f.name].astype("float64")
        full = with_rules(rows, s.feature_cfg)
        missing = [[] for _ in range(len(full))]  # what the caller sent is all there is
        results = self._records(
            score(s, self.scoring_cfg, Rows.from_frame(full, s.model.bundle), missing)
        )
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
                for f in features_for(s.feature_cfg.product_features)
            ],
        )


bentoml_fixes.install()
# Outermost first. They read their settings from the environment when the server builds its app.
RenewalRadar.add_asgi_middleware(SecurityHeadersMiddleware)
RenewalRadar.add_asgi_middleware(ProblemMiddleware, unready=READINESS.why)
RenewalRadar.add_asgi_middleware(OpenApiMiddleware)
RenewalRadar.add_asgi_middleware(BodySizeLimitMiddleware)
RenewalRadar.add_asgi_middleware(ApiKeyMiddleware)
RenewalRadar.add_asgi_middleware(ApiContractMiddleware)
RenewalRadar.add_asgi_middleware(WholeResponseMiddleware)
RenewalRadar.add_asgi_middleware(KeepAliveLimitMiddleware)
