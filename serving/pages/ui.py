"""Pages for customer-success managers, mounted on the service under ``/ui``.

Server-rendered HTML (Starlette and Jinja2, no build step, no script): the portfolio ranked by
ARR at risk with filters, and one page per account with its scores, trends, drivers in words
and recommended play. The data are the service's own (:class:`serving.service.RenewalRadar`):
the same scoring records the API returns.

When an API key is configured, the pages ask for it once (a form) and keep it in a cookie.
"""

from __future__ import annotations

import dataclasses
import hmac
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from jinja2 import Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from features import words as w
from features.catalogue import (
    ARR_AT_RISK,
    CHURN_HEAD,
    EXPANSION_ARR,
    EXPANSION_HEAD,
    HEADLINE_HORIZON,
    RENEWAL_STAGES,
)
from features.safe_output import csv_safe
from reports.charts import sparkline
from reports.templating import environment
from serving import auth
from serving.pages.effects_views import account_effects, leader_view
from serving.pages.outlook_columns import (
    FORECAST,
    FORECAST_BAND,
    FORECAST_DAYS,
    OUTLOOK,
    forecast_note,
)
from serving.pages.ui_session import logout, over_https
from serving.pages.views import worklist_capacity
from serving.paths import CTAS_PATH, UI_PATH
from serving.readiness import READINESS

PAGE_SIZE = 50
COOKIE = "radar_key"
# Portfolio columns a CSM can sort by, with the direction that puts the urgent ones first.
SORTS = {
    ARR_AT_RISK: (f"ARR at risk ({HEADLINE_HORIZON} days)", False),
    f"p_{CHURN_HEAD}": (f"churn risk ({HEADLINE_HORIZON} days)", False),
    f"p_{EXPANSION_HEAD}": (f"expansion chance ({HEADLINE_HORIZON} days)", False),
    EXPANSION_ARR: (f"expected expansion ARR ({HEADLINE_HORIZON} days)", False),
    "health_score": ("health score", True),
    FORECAST: (f"health expected in {FORECAST_DAYS} days", True),
    "arr": ("ARR", False),
    "days_to_renewal": ("days to renewal", True),
    "name": ("name", True),
}
FILTERS = {
    "band": "health_band",
    "segment": "segment",
    "owner": "csm_owner",
    "stage": "renewal_stage",
    "play": "play",
    "outlook": FORECAST_BAND,  # the band the health forecast falls in
}
# Filters on a list column of the records: an account passes when the list holds the value.
LIST_FILTERS = {"alert": "alerts", "trigger": "triggers"}
# The portfolio's views: which accounts, and the sort each opens on.
VIEWS = {
    "worklist": ARR_AT_RISK,  # the accounts that need action this week (scoring.plays' rule)
    "expansion": EXPANSION_ARR,  # likely expansions and triggers, the largest expected first
    "all": ARR_AT_RISK,
}
OWNER_COOKIE = "radar_owner"  # "my accounts": the owner a CSM picked, a preference, not a login
LABELS = {
    "band": "Health band",
    "segment": "Segment",
    "owner": "CSM owner",
    "stage": "Renewal stage",
    "alert": "Alert",
    "play": "Recommended play",
    "trigger": "Expansion trigger",
    "outlook": f"Health in {FORECAST_DAYS} days",
}
# Columns of the CSV export, in order.
EXPORT = (
    "account_id",
    "name",
    "csm_owner",
    "segment",
    "plan_tier",
    "arr",
    "health_score",
    "health_band",
    OUTLOOK,
    f"p_{CHURN_HEAD}",
    f"p_{EXPANSION_HEAD}",
    ARR_AT_RISK,
    EXPANSION_ARR,
    "renewal_date",
    "renewal_stage",
    "leading_reason",
    "play",
    "play_title",
    "play_reason",
)


def templates() -> Environment:
    """The page templates, then the shared ones of :mod:`reports.templating`."""
    return environment("serving.pages", trim=False)


@dataclass(frozen=True)
class Query:
    """The portfolio page's filters, sort and page, from the query string."""

    filters: dict[str, str]
    alert: str
    sort: str
    ascending: bool
    page: int
    view: str = "worklist"  # one of VIEWS
    search: str = ""
    trigger: str = ""

    @classmethod
    def parse(cls, params: Any) -> Query:
        """Read (and bound) the query parameters; unknown values fall back to defaults."""
        view = params.get("view") or "worklist"
        view = view if view in VIEWS else "worklist"
        sort = params.get("sort") or VIEWS[view]
        if sort not in SORTS:
            sort = VIEWS[view]
        order = params.get("order", "")
        ascending = order == "asc" if order in ("asc", "desc") else SORTS[sort][1]
        try:
            page = max(int(params.get("page", "1")), 1)
        except ValueError:
            page = 1
        filters = {k: params.get(k, "") for k in FILTERS if params.get(k)}
        search = params.get("q", "").strip()[:100]
        alert, trigger = params.get("alert", ""), params.get("trigger", "")
        return cls(filters, alert, sort, ascending, page, view, search, trigger)

    def problems(self, options: dict[str, list[str]]) -> list[str]:
        """Filter values that are not among the portfolio's, said plainly."""
        wrong = [(k, v) for k, v in self.filters.items() if v not in options[k]]
        for k, v in (("alert", self.alert), ("trigger", self.trigger)):
            if v and v not in options[k]:
                wrong.append((k, v))
        return [
            f"No {LABELS[k].lower()} {v!r} in this portfolio; choose one of: "
            + (", ".join(options[k]) or "none")
            for k, v in wrong
        ]

    def link(self, **change: Any) -> str:
        """The query string of this query with ``change`` applied."""
        now = {**self.filters, "alert": self.alert, "trigger": self.trigger, "sort": self.sort}
        now |= {"view": "" if self.view == "worklist" else self.view, "q": self.search}
        now["order"] = "asc" if self.ascending else "desc"
        now["page"] = self.page
        now.update(change)
        return "?" + urlencode({k: v for k, v in now.items() if v not in ("", None)})


def select(portfolio: pd.DataFrame, q: Query) -> pd.DataFrame:
    """The portfolio rows that pass the filters, sorted (missing values last).

    A search looks over the whole portfolio, whichever view is open (a CSM looking an account
    up wants it found, worklist or not); the filters chosen still apply.
    """
    keep = pd.Series(True, index=portfolio.index)
    if q.view == "worklist" and not q.search:  # within the team's capacity (Views)
        keep &= portfolio.get("on_worklist", portfolio["needs_action"])
    if q.view == "expansion":  # a likely expansion or a trigger (views.expansion_opportunity)
        keep &= portfolio.get("expansion_opportunity", True)
    if q.search:
        text = q.search.lower()
        name = portfolio["name"].astype("object").fillna("").str.lower()
        keep &= name.str.contains(text, regex=False) | portfolio[
            "account_id"
        ].str.lower().str.contains(text, regex=False)
    for key, value in q.filters.items():
        keep &= portfolio[FILTERS[key]].astype("object").fillna("") == value
    for key, value in (("alert", q.alert), ("trigger", q.trigger)):
        if value:
            keep &= portfolio[LIST_FILTERS[key]].map(lambda a, v=value: v in a)
    rows = portfolio[keep]
    if q.sort not in rows:  # a head the model does not have: unsorted, never a 500
        return rows
    return rows.sort_values(q.sort, ascending=q.ascending, na_position="last", kind="stable")


def choices(portfolio: pd.DataFrame) -> dict[str, list[str]]:
    """The values each filter can take, for its drop-down."""
    none = pd.Series(dtype="object")  # a column the records lack: nothing to choose
    out = {
        key: sorted(v for v in portfolio.get(col, none).dropna().astype(str).unique() if v)
        for key, col in FILTERS.items()
    }
    order = {s: i for i, s in enumerate(RENEWAL_STAGES)}
    out["stage"].sort(key=lambda s: order.get(s, len(order)))
    for key, col in LIST_FILTERS.items():
        out[key] = sorted({a for items in portfolio.get(col, none) for a in items})
    return out


def _total(values: pd.Series) -> float | None:
    """The sum, or None when no row has a value (no ARR, no churn head): a dash, never $0."""
    total = values.sum(min_count=1)
    return None if pd.isna(total) else float(total)


def worklist_load(portfolio: pd.DataFrame) -> dict[str, int] | None:
    """The week's worklist per named CSM (fewest, median, most) and without one; None if empty.

    What each CSM has to work, so a leader sees whether the shared rule
    (``scoring.plays.needs_action``) fits the team's week.
    """
    work = portfolio[portfolio.get("on_worklist", portfolio["needs_action"])]
    named = work["csm_owner"].dropna()
    per = named[named != ""].value_counts()
    if per.empty and work.empty:
        return None
    return {
        "fewest": int(per.min()) if len(per) else 0,
        "median": int(round(per.median())) if len(per) else 0,
        "most": int(per.max()) if len(per) else 0,
        "csms": len(per),
        "tech_touch": len(work) - int(per.sum()),
    }


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """NaN (pandas' missing) as None, which the templates show as a dash or a default."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}


def _key() -> bytes | None:
    return auth.api_key()


def _signed_in(request: Request) -> bool:
    key = _key()
    if key is None:
        return True
    if auth.valid_session(key, request.cookies.get(COOKIE, "")):
        return True  # the cookie holds a signed session value, never the key
    return hmac.compare_digest(request.headers.get("x-api-key", "").encode(), key)


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    # The header links to the calls to action, mounted beside the pages (serving.cta_routes).
    root = str(context.get("root", ""))
    context.setdefault("ctas", root.removesuffix(UI_PATH) + CTAS_PATH + "/" if root else None)
    return HTMLResponse(templates().get_template(name).render(**context), status_code=status)


def _service():
    import bentoml

    return bentoml.get_current_service()


def _page(request: Request) -> tuple[Any, Response | None]:
    """The service, or instead the answer to give: the key form, or "not ready"."""
    if not _signed_in(request):
        root = request.scope.get("root_path", "")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = f"{root}/login?{urlencode({'next': target})}"
        return None, RedirectResponse(login, status_code=303)
    svc = _service()
    if getattr(svc, "table", None) is not None:  # a table's model: rows only, no pages
        return svc, _render("error.html", 404, message=f"No pages here: {svc.error}.")
    if svc.state is None:
        why = READINESS.why()
        message = f"The service is not ready: {why[0] if why else svc.error}"
        return svc, _render("error.html", 503, message=message)
    return svc, None


# Plain functions: Starlette runs them in its thread pool, off the event loop (the first
# portfolio view scores every account).
def _selected(request: Request) -> tuple[Any, Query | None, pd.DataFrame | None, Response | None]:
    """The portfolio rows the query string asks for, or the answer to give instead."""
    svc, instead = _page(request)
    if instead is not None:
        return svc, None, None, instead
    portfolio = svc.views.portfolio()
    q = Query.parse(request.query_params)
    problems = q.problems(choices(portfolio))
    if problems:
        return svc, q, None, _render("error.html", 400, message=" ".join(problems))
    return svc, q, select(portfolio, q), None


def portfolio_page(request: Request) -> Response:
    """The worklist, the expansion view or every account: filtered, searched and sorted.

    Choosing a CSM owner remembers it (a cookie) for the "My accounts" link.
    """
    svc, q, rows, instead = _selected(request)
    if instead is not None:
        return instead
    portfolio = svc.views.portfolio()
    pages = max(math.ceil(len(rows) / PAGE_SIZE), 1)
    q = dataclasses.replace(q, page=min(q.page, pages))
    shown = rows.iloc[(q.page - 1) * PAGE_SIZE : q.page * PAGE_SIZE]
    root = request.scope.get("root_path", "")
    owners = choices(portfolio)["owner"]
    me = q.filters.get("owner") or request.cookies.get(OWNER_COOKIE, "")
    me = me if me in owners else ""
    counts = {
        "worklist": int(portfolio.get("on_worklist", portfolio["needs_action"]).sum()),
        # Need action but beyond a CSM's week: they come in as the worklist clears.
        "beyond": int(
            (
                portfolio["needs_action"] & ~portfolio.get("on_worklist", portfolio["needs_action"])
            ).sum()
        ),
        "capacity": worklist_capacity(),
        "expansion": int(portfolio.get("expansion_opportunity", pd.Series(dtype=bool)).sum()),
        "all": len(portfolio),
        "mine": int((portfolio["csm_owner"] == me).sum()) if me else 0,
    }
    response = _render(
        "portfolio.html",
        root=root,
        q=q,
        rows=[_plain(r) for r in shown.to_dict(orient="records")],
        matched=len(rows),
        total=len(portfolio),
        worklist=counts["worklist"],
        counts=counts,
        load=worklist_load(portfolio),
        forecast_days=FORECAST_DAYS,
        forecast_sort=FORECAST,
        forecast_note=forecast_note(portfolio, _has_forecasts(svc.state.model)),
        me=me,
        arr_at_risk=_total(rows[ARR_AT_RISK]),
        expansion_arr=_total(rows[EXPANSION_ARR]) if EXPANSION_ARR in rows else None,
        pages=pages,
        sorts=SORTS,
        labels=LABELS,
        choices=choices(portfolio),
        export=f"{root}/export.csv{q.link(page=1)}",
        as_of=svc.state.as_of.date(),
        model=svc.state.model.label,
    )
    if q.filters.get("owner") and me:  # a year: a preference, not a credential
        response.set_cookie(
            OWNER_COOKIE, me, max_age=365 * 86400, samesite="strict", path=root or "/"
        )
    return response


def _has_forecasts(model) -> bool:
    """Whether the model forecasts the health score (a bundle trained before: no)."""
    forecasts = getattr(model.bundle, "forecasts", None)
    return bool(forecasts is not None and forecasts.health)


def export_csv(request: Request) -> Response:
    """The accounts of the current view, filters and search as CSV (every page)."""
    svc, q, rows, instead = _selected(request)
    if instead is not None:
        return instead
    table = rows[[c for c in EXPORT if c in rows]].copy()
    for c in ("as_of", "renewal_date"):
        if c in table and pd.api.types.is_datetime64_any_dtype(table[c]):
            table[c] = table[c].dt.strftime("%Y-%m-%d")
    name = f"renewal-radar-{q.view}-{svc.state.as_of.date()}.csv"
    return Response(
        csv_safe(table).to_csv(index=False),  # no cell a spreadsheet would run
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def account_page(request: Request) -> Response:
    """One account: who it is, scores with trends, drivers in words, play, alerts."""
    svc, instead = _page(request)
    if instead is not None:
        return instead
    account_id = request.path_params["account_id"]
    view = svc.views.account(account_id)
    if view is None:
        message = f"No account {account_id!r} among the customers active at the latest date."
        return _render("error.html", 404, message=message)
    return _render(
        "account.html",
        root=request.scope.get("root_path", ""),
        heads={h: w.outcome_words(h) for h in svc.state.model.bundle.heads},
        sparkline=sparkline,
        play_effects=account_effects(account_id, view["score"].play),
        **view,
    )


def brief_page(request: Request) -> Response:
    """One account's brief, print-friendly (the same page ``radar brief`` writes).

    ``?audience=customer``: the version for the customer (``radar brief --audience customer``).
    """
    from reports.brief_render import render_html

    svc, instead = _page(request)
    if instead is not None:
        return instead
    account_id = request.path_params["account_id"]
    try:
        brief = svc.briefs.brief(account_id)
    except RuntimeError as exc:  # the store's raw tables are not there: say which
        return _render("error.html", 503, message=str(exc))
    if brief is None:
        message = f"No account {account_id!r} among the customers active at the latest date."
        return _render("error.html", 404, message=message)
    audience = "customer" if request.query_params.get("audience") == "customer" else "internal"
    root = request.scope.get("root_path", "")
    return HTMLResponse(render_html(brief, root=root, audience=audience))


def kpis_page(request: Request) -> Response:
    """The CS leader's view: realised and expected retention, health against the targets."""
    from reports.kpis import compute_kpis, render_kpis_html

    svc, instead = _page(request)
    if instead is not None:
        return instead
    try:
        kpis = compute_kpis(svc.views.portfolio(), svc.briefs.portfolio())
    except RuntimeError as exc:  # the store's raw tables are not there: say which
        return _render("error.html", 503, message=str(exc))
    root = request.scope.get("root_path", "")
    return HTMLResponse(render_kpis_html(kpis, root=root, model=svc.state.model.label))


def effects_page(request: Request) -> Response:
    """The CS leader's view of the plays: observed success, causal effects, ARR saved, ROI."""
    _, instead = _page(request)
    if instead is not None:
        return instead
    return _render("effects.html", root=request.scope.get("root_path", ""), **leader_view())


def monitor_page(request: Request) -> Response:
    """The latest `radar monitor` report: verdict, realised vs predicted, forecasts, drift."""
    from reports.monitor_view import latest_report, monitor_view

    _, instead = _page(request)
    if instead is not None:
        return instead
    view = monitor_view(latest_report())
    return _render("monitor.html", root=request.scope.get("root_path", ""), **view)


async def login(request: Request) -> Response:
    """The key form; a right key sets the cookie and goes on to the page asked for."""
    root = request.scope.get("root_path", "")
    target = request.query_params.get("next", "")
    if not target.startswith(f"{root}/") or target.startswith("//"):
        target = f"{root}/"  # only pages of this app: never an open redirect
    if request.method == "POST":
        client = request.client.host if request.client else "?"
        if (wait := auth.THROTTLE.retry_after(client)) is not None:
            message = f"Too many wrong keys from this address: try again in {wait} s."
            response = _render("error.html", 429, message=message)
            response.headers["retry-after"] = str(wait)
            return response
        form = await request.form()
        key = _key()
        given = str(form.get("key", "")).encode()
        if key is not None and hmac.compare_digest(given, key):
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                COOKIE,
                auth.session_value(key),
                max_age=auth.SESSION_HOURS * 3600,
                httponly=True,
                samesite="strict",
                path=root or "/",
                secure=over_https(request),  # never sent back over plain HTTP
            )
            return response
        auth.THROTTLE.failed(client)
        return _render("login.html", 401, root=root, target=target, wrong=True)
    return _render("login.html", root=root, target=target, wrong=False)


app = Starlette(
    routes=[
        Route("/", portfolio_page),
        Route("/export.csv", export_csv),
        # The brief first: an id may hold "/" (its links encode it; the server decodes it).
        Route("/accounts/{account_id:path}/brief", brief_page),
        Route("/accounts/{account_id:path}", account_page),
        Route("/portfolio/kpis", kpis_page),
        Route("/monitor", monitor_page),
        Route("/effects", effects_page),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
)
