"""The BentoML scoring service: ``bentoml serve serving.service:RenewalRadar``.

Settings come from the environment (``radar serve`` sets them):

- ``RADAR_FEATURES``: output directory of ``radar features``; its latest as-of date is served by
  account id (required, except for a model trained with ``radar train --table``: that one is
  served without a store and scores rows only, at ``/v1/score/rows``);
- ``RADAR_MODEL_URI`` (default ``models:/renewal-radar@champion``) and ``MLFLOW_TRACKING_URI``;
- ``RADAR_API_KEY``: when set, every scoring endpoint needs it (``X-API-Key`` header or
  ``Authorization: Bearer``); health, metrics and the OpenAPI document stay open;
- ``RADAR_MAX_REQUEST_BYTES``: larger request bodies get 413 (default 1 MiB);
- ``RADAR_WORKERS``: worker processes (default 2);
- ``RADAR_KEEPALIVE_REQUESTS``: answers per keep-alive connection before it is closed (32);
- ``RADAR_PREDICTION_LOG``: when set, a prediction log folder the by-id and bulk answers are
  appended to (:mod:`monitoring.service_log`);
- ``RADAR_MONITOR``: the folder ``radar monitor --out`` writes, shown at ``/ui/monitor``.

The CSM pages (:mod:`serving.pages.ui`, their data from :mod:`serving.pages.views`) are
mounted under ``/ui``. What is loaded at start is in :mod:`serving.state`; BentoML workarounds
are in :mod:`serving.bentoml_fixes`. This module holds only the API.

If the model or the snapshots cannot be loaded, the service logs exactly what is missing and
never becomes ready (``/readyz`` answers 503); scoring endpoints answer 503 with the reason.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

import bentoml
import numpy as np
import pandas as pd
from bentoml.exceptions import NotFound, ServiceUnavailable
from pydantic import BeforeValidator, Field
from starlette.responses import StreamingResponse

from features.catalogue import PRODUCT_FEATURE_PREFIX, features_for
from features.health import with_rules
from monitoring.service_log import PredictionLogWriter, writer_from_env
from scoring.plays import ScoringConfig
from scoring.records import Rows, score_rows
from scoring.schema import Portfolio, api_records
from scoring.table_rows import rows_only_reason
from serving import bentoml_fixes, cta_routes
from serving.api_contract import ApiContractMiddleware, OpenApiMiddleware
from serving.bentoml_fixes import prebuilt
from serving.middleware import (
    ApiKeyMiddleware,
    BodySizeLimitMiddleware,
    KeepAliveLimitMiddleware,
    SecurityHeadersMiddleware,
    ServerTimingMiddleware,
    WholeResponseMiddleware,
    env_int,
)
from serving.pages import brief_views, ui
from serving.pages.views import Views, portfolio_of, score, what_if_rows
from serving.paths import CTAS_PATH, UI_PATH
from serving.problems import ProblemMiddleware, invalid, redact
from serving.readiness import READINESS
from serving.schemas import (
    MAX_ID_LENGTH,
    MAX_IDS,
    NDJSON,
    BulkItem,
    CatalogueEntry,
    FeatureValues,
    Include,
    ModelInfo,
    ScoreResponse,
    Snapshot,
    records_with,
    to_json,
)
from serving.state import DateRows, Settings, State, UnknownDateError, load_state
from serving.strict_inputs import forbid_extra_inputs, iso_date
from serving.table_rows import RowsResponse, table_rows_answer
from training.registry import ScoringModel
from training.table import trained_on_table

log = logging.getLogger("renewal_radar.service")


AccountId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
AccountIds = Annotated[
    list[AccountId],
    Field(min_length=1, max_length=MAX_IDS, description="Account ids.", examples=[["A000042"]]),
]
Overrides = Annotated[
    dict[AccountId, FeatureValues] | None,  # type: ignore[valid-type]
    Field(
        description="What-if by account: feature values to try instead of the snapshot's, per "
        "account id of `account_ids`; health score, alerts and triggers are recomputed, and "
        "the record's `what_if` names what changed. Names and plausible ranges as in "
        "`/v1/score/snapshots`.",
        examples=[{"A000042": {"seat_utilisation": 0.2}}],
    ),
]
AsOf = Annotated[
    date | None,
    BeforeValidator(iso_date),  # YYYY-MM-DD only: "0" was 1970-01-01
    Field(
        description="Snapshot date to score (default: the latest); any of `snapshot_dates` "
        "in `/v1/model`."
    ),
]
BULK_CHUNK = 1_000  # accounts scored per piece of an NDJSON answer
HEADS_HISTOGRAM = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class Timed:
    """Milliseconds spent scoring, for the ``Server-Timing`` header (``score;dur=...``)."""

    def __init__(self, ctx: bentoml.Context) -> None:
        self.ctx = ctx

    def __enter__(self) -> Timed:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        ms = (time.perf_counter() - self.start) * 1000
        self.ctx.response.metadata["server-timing"] = f"score;dur={ms:.1f}"


@bentoml.service(
    name="renewal-radar",
    traffic={"timeout": 120, "max_concurrency": 64},
    # Scoring is CPU-bound Python: one worker process per core (``radar serve --workers``).
    workers=env_int("RADAR_WORKERS", 2),
)
@bentoml.asgi_app(ui.app, path=UI_PATH)
@bentoml.asgi_app(cta_routes.app, path=CTAS_PATH)
@bentoml.asgi_app(brief_views.api, path="/v1/accounts")
class RenewalRadar:
    """Churn and expansion scores with drivers, by account id or for a sent snapshot."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.scoring_cfg = ScoringConfig()
        self.state: State | None = None
        self.table: ScoringModel | None = None  # a table's model, served for rows only
        self.views: Views | None = None
        self.briefs: brief_views.Briefs | None = None
        self.error: str | None = None
        self.prediction_log: PredictionLogWriter | None = None
        self.served: Any = None  # the /metrics histogram of served probabilities
        # Loaded beside the event loop, so /livez answers at once and /readyz says why not yet.
        threading.Thread(target=self._load, name="radar-load", daemon=True).start()

    def _load(self) -> None:
        """Load the model and the snapshots; on failure stay unready and say exactly why."""
        try:
            state = load_state(self.settings, self.scoring_cfg)
            if isinstance(state, ScoringModel):  # a table's model: rows only, no store
                self._serve_table_model(state)
                return
            self.views = Views(state, self.scoring_cfg)
            self.briefs = brief_views.Briefs(self.views, self.settings.features)
            self.prediction_log = writer_from_env(state.model)
            self.served = served_histogram()
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

    def _serve_table_model(self, model: ScoringModel) -> None:
        """Serve a ``radar train --table`` model: ``/v1/score/rows`` only, said elsewhere."""
        self.table = model
        self.error = rows_only_reason(model.label, trained_on_table(model.bundle.metadata) or {})
        self.served = served_histogram()
        READINESS.ready()
        log.info("serving %s (a table's model) for rows only", model.label)
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.state is not None or self.table is not None

    def _state(self) -> State:
        if self.table is not None:  # a 404 that says why, not "not ready" nor a 500
            raise NotFound(self.error or "")
        if self.state is None:
            why = READINESS.why()
            raise ServiceUnavailable(f"not ready: {why[0] if why else self.error}")
        return self.state

    def _records(self, columns: dict) -> list[dict[str, Any]]:
        self._observe(columns)
        return api_records(columns, list(self._state().model.bundle.heads))

    def _observe(self, columns: dict) -> None:
        """Add the served probabilities to the ``/metrics`` histogram, per head."""
        if self.served is None:
            return
        model = self.table if self.table is not None else self._state().model
        for head in model.bundle.heads:
            if f"p_{head}" not in columns:
                continue
            p = np.asarray(columns[f"p_{head}"], dtype="float64")
            child = self.served.labels(head=head)
            for v in p[~np.isnan(p)].tolist():
                child.observe(v)

    def _at(self, as_of: date | None) -> DateRows:
        """The snapshots at ``as_of``; a date not held is a 400 naming the nearest held."""
        try:
            return self._state().at(as_of)
        except UnknownDateError as exc:
            raise invalid("as_of", [(("as_of",), str(exc))]) from None

    def _by_id(
        self,
        ids: list[str],
        at: DateRows,
        overrides: dict[str, dict[str, Any]] | None = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """Records of the accounts ``ids`` at one date, in order, and why not for the others.

        Accounts in ``overrides`` are scored with those feature values (a what-if).
        """
        s = self._state()
        wanted = list(dict.fromkeys(ids))
        known = [i for i in wanted if i in at.position]
        errors = [
            {
                "account_id": i,
                "error": f"not an active customer at {at.as_of.date()}"
                if i in at.older
                else "unknown account",
            }
            for i in wanted
            if i not in at.position
        ]
        if not known:
            return [], errors
        changed = {i: overrides[i] for i in known if overrides and i in overrides}
        plain = [at.position[i] for i in known if i not in changed]
        records: dict[str, dict[str, Any]] = {}
        if plain:
            columns = score_rows(
                at.rows.take(plain),
                s.model,
                self.scoring_cfg,
                missing=[at.missing[i] for i in plain],
                uplift=at.uplift,
                risk_cut=at.risk_cut,
            )
            if self.prediction_log is not None:  # queued, written off-request
                self.prediction_log.add(columns)
            records |= {r["account_id"]: r for r in self._records(columns)}
        if changed:  # what-ifs are not logged: they are not the account's prediction
            rows, missing = what_if_rows(at, [at.position[i] for i in changed], changed, s)
            columns = score_rows(
                rows,
                s.model,
                self.scoring_cfg,
                missing=missing,
                uplift=at.uplift,
                risk_cut=at.risk_cut,
            )
            for r in self._records(columns):
                r["what_if"] = changed[r["account_id"]]
                records[r["account_id"]] = r
        return [records[i] for i in known], errors

    def _refuse_foreign(self, sent: list[dict[str, Any]], where: str) -> None:
        """400 for product-feature columns the served model does not have.

        They fit a pattern of the catalogue, so the schema lets them through; only the
        model's own count.
        """
        served = set(self._state().model.bundle.spec.names)
        foreign = sorted(
            {k for values in sent for k in values if k.startswith(PRODUCT_FEATURE_PREFIX)} - served
        )
        if foreign:
            raise invalid(
                where,
                [
                    (
                        (where, k),
                        f"{k}: not a feature of the served model (its product-feature "
                        "columns are listed by GET /v1/model)",
                    )
                    for k in foreign
                ],
            )

    # The low-latency endpoints score on the event loop: the work holds the GIL anyway, and a
    # hand-off to BentoML's thread and back costs more than it saves (measured).
    @bentoml.api(route="/v1/score/accounts", output_spec=prebuilt(ScoreResponse))
    async def score_accounts(
        self,
        account_ids: AccountIds,
        ctx: bentoml.Context,
        overrides: Overrides = None,
        as_of: AsOf = None,
    ) -> bytes:
        """Score accounts by id from the snapshots: probabilities, drivers, play.

        Unknown ids are reported one by one in ``errors``; the others are scored. With
        ``overrides``, the accounts named are scored with those feature values instead
        (a what-if on the account's own snapshot).
        """
        with Timed(ctx):
            changes: dict[str, dict[str, Any]] = {}
            for i, values in (overrides or {}).items():
                changes[i] = values.model_dump(exclude_unset=True)
            self._refuse_foreign(list(changes.values()), "overrides")  # as on /snapshots
            stray = [i for i in changes if i not in set(account_ids)]
            if stray:
                raise invalid(
                    "overrides",
                    [(("overrides", i), f"{i} is not in account_ids") for i in stray],
                )
            results, errors = self._by_id(account_ids, self._at(as_of), changes)
            return to_json({"results": results, "errors": errors})

    @bentoml.api(route="/v1/score/snapshots", output_spec=prebuilt(ScoreResponse))
    async def score_snapshots(
        self,
        snapshots: Annotated[
            list[Snapshot], Field(min_length=1, max_length=MAX_IDS, description="Snapshots.")
        ],
        ctx: bentoml.Context,
    ) -> bytes:
        """Score feature values sent by the caller (also the what-if path).

        The health score, alerts and triggers are recomputed from the values sent; features
        left out are missing, as in training, and listed in the record's ``missing_inputs``.
        """
        with Timed(ctx):
            s = self._state()
            sent = [snap.features.model_dump(exclude_unset=True) for snap in snapshots]
            self._refuse_foreign(sent, "features")
            rows = pd.DataFrame(
                [
                    {
                        "account_id": snap.account_id,
                        # Without a date, the served snapshot's (what the values are set
                        # against), not today's.
                        "as_of": pd.Timestamp(snap.as_of) if snap.as_of else s.as_of,
                        **snap.features.model_dump(),
                    }
                    for snap in snapshots
                ]
            )
            catalogue = features_for(s.feature_cfg.product_features)
            for f in catalogue:
                if not f.categorical:
                    rows[f.name] = rows.get(f.name, pd.Series(float("nan"), index=rows.index))
                    rows[f.name] = rows[f.name].astype("float64")
            full = with_rules(rows, s.feature_cfg)
            # What was not sent is missing, and said so (not a claim of full coverage).
            missing = [[f.name for f in catalogue if f.name not in values] for values in sent]
            results = self._records(
                score(s, self.scoring_cfg, Rows.from_frame(full, s.model.bundle), missing)
            )
            return to_json({"results": results, "errors": []})

    @bentoml.api(route="/v1/score/rows", output_spec=prebuilt(RowsResponse))
    async def score_rows(
        self,
        rows: Annotated[
            list[dict[str, Any]],
            Field(
                min_length=1,
                max_length=MAX_IDS,
                description="Rows of the table a `radar train --table` model was trained on: "
                "column -> value, as in the table (numbers, number text, blank or null for "
                "missing, true/false, category text). A column left out is missing.",
                examples=[[{"tenure": 12, "Contract": "Month-to-month", "TotalCharges": " "}]],
            ),
        ],
        ctx: bentoml.Context,
    ) -> bytes:
        """Score rows of a feature table with the model trained on one: probabilities, drivers.

        Only a model from ``radar train --table`` answers here; the values are read as its
        training read the table, and a value it cannot read is a 400 naming the row and
        column. Each result has ``p_<head>`` and ``drivers_<head>`` (feature, value, effect in
        probability) per head.
        """
        if self.table is None:
            self._state()  # not ready: 503 with the reason
            raise NotFound(
                "the served model was trained on `radar features` snapshots: score accounts "
                "at /v1/score/accounts, or feature values at /v1/score/snapshots"
            )
        with Timed(ctx):
            model = self.table
            frame = pd.DataFrame(rows, index=range(len(rows)))
            try:
                got = table_rows_answer(frame, model)
            except ValueError as exc:
                raise invalid("rows", [(("rows",), str(exc))]) from None
            self._observe({c: got.records[c] for c in got.records if c.startswith("p_")})
            return to_json({"model": model.label, "results": got.records.to_dict("records")})

    @bentoml.api(route="/v1/score/bulk", output_spec=prebuilt(list[BulkItem]))
    def score_bulk(
        self,
        account_ids: list[str],
        ctx: bentoml.Context,
        as_of: AsOf = None,
        include: Include | None = None,
    ) -> bytes | StreamingResponse:
        """Score many accounts per call (up to 10,000); one item per id, in order.

        ``include`` leaves parts of each record out (drivers and reasons are most of its
        size). With ``Accept: application/x-ndjson`` the answer is one item per line,
        scored and sent in pieces of 1,000 accounts.
        """
        at = self._at(as_of)
        if NDJSON in ctx.request.headers.get("accept", ""):
            return StreamingResponse(self._lines(account_ids, at, include), media_type=NDJSON)
        with Timed(ctx):
            return b"[" + b",".join(self._items(account_ids, at, include)) + b"]"

    def _items(self, ids: list[str], at: DateRows, include: list[str] | None) -> list[bytes]:
        """The bulk items of ``ids``, as JSON each."""
        results, errors = self._by_id(ids, at)
        found = {r["account_id"]: r for r in records_with(results, include)}
        why = {e["account_id"]: e["error"] for e in errors}
        return [
            to_json({"account_id": i, "result": found.get(i), "error": why.get(i)}) for i in ids
        ]

    def _lines(self, ids: list[str], at: DateRows, include: list[str] | None) -> Iterator[bytes]:
        """The bulk items of ``ids`` as NDJSON, scored a piece at a time."""
        for start in range(0, len(ids), BULK_CHUNK):
            items = self._items(ids[start : start + BULK_CHUNK], at, include)
            yield b"\n".join(items) + b"\n"

    @bentoml.api(route="/v1/portfolio", output_spec=prebuilt(Portfolio))
    def portfolio(
        self,
        ctx: bentoml.Context,
        segment: Annotated[
            str | None,
            Field(max_length=MAX_ID_LENGTH, description="Only this segment (default: all)."),
        ] = None,
        as_of: AsOf = None,
    ) -> bytes:
        """The portfolio summary that ``radar score`` prints (also ``GET``).

        Health distribution, expected churned and expanded ARR, expected GRR and NRR, for all
        accounts and by segment, plays and disagreements. The whole portfolio of the date is
        scored on first use, then kept.
        """
        with Timed(ctx):
            s = self._state()
            at = self._at(as_of)
            assert self.views is not None  # set with the state
            records = self.views.portfolio_at(at)
            if segment is not None:
                known = sorted(str(v) for v in records["segment"].dropna().unique())
                if segment not in known:
                    raise invalid(
                        "segment",
                        [(("segment",), f"no segment {segment!r}; one of {', '.join(known)}")],
                    )
                records = records[records["segment"] == segment]
            return to_json(portfolio_of(records, at.as_of, segment, s.model))

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
            snapshot_dates=[d.date() for d in s.dates],
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


def served_histogram() -> Any:
    """The histogram of served probabilities per head (``radar_served_probability``).

    Created in the worker, after BentoML set up Prometheus's multiprocess folder (imported
    earlier, the client would count in this process only and ``/metrics`` never see it).
    """
    import prometheus_client

    try:
        return prometheus_client.Histogram(
            "radar_served_probability",
            "Calibrated probabilities served, per head (by id, bulk and what-if answers).",
            labelnames=["head"],
            buckets=HEADS_HISTOGRAM,
        )
    except ValueError:  # already registered in this process (a test client built twice)
        return prometheus_client.REGISTRY._names_to_collectors["radar_served_probability"]


bentoml_fixes.install(api_routes=[m.route for m in RenewalRadar.apis.values()], pages=ui.app)
forbid_extra_inputs(RenewalRadar)  # "as_off", "overides": 400 naming the closest field
# Outermost first. They read their settings from the environment when the server builds its app.
RenewalRadar.add_asgi_middleware(ServerTimingMiddleware)
RenewalRadar.add_asgi_middleware(SecurityHeadersMiddleware)
RenewalRadar.add_asgi_middleware(ProblemMiddleware, unready=READINESS.why)
RenewalRadar.add_asgi_middleware(OpenApiMiddleware)
RenewalRadar.add_asgi_middleware(ApiKeyMiddleware)  # from the headers, before the body is read
RenewalRadar.add_asgi_middleware(BodySizeLimitMiddleware)
RenewalRadar.add_asgi_middleware(ApiContractMiddleware)
RenewalRadar.add_asgi_middleware(WholeResponseMiddleware)
RenewalRadar.add_asgi_middleware(KeepAliveLimitMiddleware)
