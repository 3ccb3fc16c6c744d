"""The account brief in the service: the page ``/ui/accounts/ID/brief`` and its JSON.

The JSON is ``GET /v1/accounts/ID/brief`` (mounted by :mod:`serving.service`).
The brief's portfolio (the store's last year of snapshots and the raw tables of the store's
input folder) is read on the first brief asked for, then kept: the snapshots are fixed.
"""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from features.store import SnapshotStore
from reports.brief import Brief, Portfolio, build_brief
from scoring.schema import api_records
from serving.pages.views import Views, score_positions
from serving.problems import PROBLEM_TYPE, problem

log = logging.getLogger("renewal_radar.brief")


class Briefs:
    """Briefs of the accounts a service's state serves."""

    def __init__(self, views: Views, features: Path, warm: bool = True) -> None:
        self.views, self.features = views, features
        self._portfolio: Portfolio | None = None
        self._lock = threading.Lock()
        if warm:  # read the raw tables now, in the background: the first brief is then fast
            threading.Thread(target=self._warm, name="brief-warm", daemon=True).start()

    def _warm(self) -> None:
        from reports.brief_render import render_html

        try:
            self.portfolio()
            # One brief rendered: the templates compiled, matplotlib imported and its fonts
            # loaded, so the first page asked for does not pay for them.
            first = next(iter(self.views.state.position), None)
            if first is not None:
                render_html(self.brief(first))
        except Exception as exc:  # the pages will say it again, with the reason
            log.warning("account briefs unavailable: %s", exc)
        # What the warm-up loaded (raw tables, matplotlib) lives as long as the worker: keep it
        # out of the collector's full passes, as the service does after loading the model
        # (without this, paced p99 rose from 17 to 124 ms).
        gc.collect()
        gc.freeze()

    def portfolio(self) -> Portfolio:
        """The brief's portfolio at the served date (read once)."""
        from reports.brief_store import from_store

        with self._lock:
            if self._portfolio is None:
                store = SnapshotStore.open(self.features)
                self._portfolio = from_store(store, self.views.state.as_of)
            return self._portfolio

    def brief(self, account_id: str) -> Brief | None:
        """The account's brief at the served date; None if it is not served."""
        s = self.views.state
        if account_id not in s.position:
            return None
        columns = score_positions(s, self.views.cfg, [s.position[account_id]])
        record = api_records(columns, list(s.model.bundle.heads))[0]
        return build_brief(record, self.portfolio())


def _service():
    import bentoml

    return bentoml.get_current_service()


def _problem(status: int, detail: str) -> Response:
    """An error in the API's one format (RFC 9457 problem details, serving/problems.py)."""
    return JSONResponse(problem(status, detail), status_code=status, media_type=PROBLEM_TYPE)


def brief_json(request: Request) -> Response:
    """``GET /v1/accounts/{id}/brief``: the brief as JSON."""
    svc = _service()
    if getattr(svc, "table", None) is not None:  # a table's model: rows only, no briefs
        return _problem(404, svc.error)
    if svc.state is None:
        return _problem(503, f"not ready: {svc.error}")
    account_id = request.path_params["account_id"]
    try:
        brief = svc.briefs.brief(account_id)
    except RuntimeError as exc:  # the store's raw tables are not there: say which
        return _problem(503, str(exc))
    if brief is None:
        s = svc.state
        why = f"not an active customer at {s.as_of.date()}" if account_id in s.older else "unknown"
        return _problem(404, f"account {account_id!r}: {why}")
    return JSONResponse(brief.model_dump(mode="json"))


api = Starlette(routes=[Route("/{account_id:path}/brief", brief_json)])
