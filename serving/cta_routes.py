"""Calls to action on the service, under ``/ctas``: a CSM's pages and the same verbs as JSON.

- Pages (a signed cookie after a login with name and password): ``/ctas/`` "My CTAs"
  (overdue and due first, then ARR at stake), ``/ctas/accounts/{id}`` the account's CTA
  timeline with a form per verb; every form carries a CSRF token tied to the session.
- API (``Authorization: Bearer <personal token>``, or the service's shared API key for
  machine clients, which act as an administrator): ``GET /ctas/api/ctas``,
  ``GET /ctas/api/accounts/{id}/timeline``, ``POST /ctas/api/ctas/{id}/{verb}`` with a JSON
  body. Bad input is 400 problem+json, another person's CTA 403.

The store is ``$RADAR_ACTIONS_STORE`` (default ``sqlite:///radar-actions.db``, the store
``radar daily`` writes). Sessions are signed with ``$RADAR_SESSION_SECRET``, else the API key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import os
import secrets
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from jinja2 import Environment
from markupsafe import Markup
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from actions import work
from actions.accounts import check_password, user_of_token
from actions.models import Cta, Event, User
from actions.notify import cause_words
from actions.store import Store, open_store
from serving import auth
from serving.problems import problem

COOKIE = "radar_cta_session"
SESSION_HOURS = 12
DEFAULT_STORE = "sqlite:///radar-actions.db"
MACHINE = User(id=-1, name="api-key", role="admin")  # the shared key: a machine client
VERBS = ("acknowledge", "activity", "note", "start", "done", "snooze", "override", "reassign")

_store: Store | None = None
_lock = threading.Lock()
_secret: bytes | None = None


def store() -> Store:
    """The store, opened (and migrated) on first use."""
    global _store
    with _lock:
        if _store is None:
            _store = open_store(os.environ.get("RADAR_ACTIONS_STORE", DEFAULT_STORE))
        return _store


def secret() -> bytes:
    """The key sessions and CSRF tokens are signed with (random per process without one)."""
    global _secret
    if _secret is None:
        given = os.environ.get("RADAR_SESSION_SECRET")
        _secret = given.encode() if given else (auth.api_key() or secrets.token_bytes(32))
    return _secret


def _sign(text: str) -> str:
    return hmac.new(secret(), text.encode(), hashlib.sha256).hexdigest()


def session_value(user: User, now: float | None = None) -> str:
    """``<user id>.<issued>.<signature>``: the cookie never holds a password or token."""
    body = f"{user.id}.{int(now if now is not None else time.time())}"
    return f"{body}.{_sign('session:' + body)}"


def csrf_token(session: str) -> str:
    """The token every form of this session must send back."""
    return _sign("csrf:" + session)


def _session_user(s, request: Request) -> User | None:
    value = request.cookies.get(COOKIE, "")
    uid, _, rest = value.partition(".")
    issued, _, sig = rest.partition(".")
    if not (uid.isdigit() and issued.isdigit()):
        return None
    if not hmac.compare_digest(sig, _sign(f"session:{uid}.{issued}")):
        return None
    if time.time() - int(issued) > SESSION_HOURS * 3600:
        return None
    return s.get(User, int(uid))


def _credential(request: Request) -> str:
    """The token or key the request carries (Bearer, else X-API-Key), or ''."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    return token or request.headers.get("x-api-key", "")


def _token_user(s, request: Request) -> User | None:
    token = _credential(request)
    if not token:
        return None
    key = auth.api_key()
    if key is not None and hmac.compare_digest(token.encode(), key):
        return MACHINE
    return user_of_token(s, token)


def problem_response(status: int, detail: str) -> JSONResponse:
    """A problem+json answer."""
    return JSONResponse(
        problem(status, detail), status_code=status, media_type="application/problem+json"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _at_stake(c: Cta) -> float:
    arr, p = c.figures.get("arr"), c.figures.get("p_churn_90d")
    return math.nan if arr is None or p is None else arr * p


def visible_ctas(s, user: User) -> list[Cta]:
    """Open and snoozed CTAs the user may work: overdue and due first, then ARR at stake."""
    q = select(Cta).where(Cta.status != "closed")
    if user.role == "csm":
        q = q.where(Cta.owner_id == user.id)
    ctas = [c for c in s.scalars(q) if work.may_work(s, user, c)]
    soon = _now() + timedelta(days=1)

    def key(c: Cta):
        stake = _at_stake(c)
        return (c.due > soon, math.isnan(stake), -stake if not math.isnan(stake) else 0, c.id)

    return sorted(ctas, key=key)


def cta_json(s, c: Cta) -> dict[str, Any]:
    """A CTA as the API answers it."""
    owner = None if c.owner_id is None else s.get(User, c.owner_id)
    return {
        "id": c.id,
        "account_id": c.account_id,
        "cause": c.cause,
        "cause_words": cause_words(c),
        "reason": (c.figures or {}).get("reason"),  # an alert's figures in words, if any
        "play": c.play,
        "severity": c.severity,
        "owner": None if owner is None else owner.name,
        "status": c.status,
        "level": c.level,
        "opened": c.opened.isoformat(),
        "due": c.due.isoformat(),
        "acknowledged": None if c.acknowledged is None else c.acknowledged.isoformat(),
        "snoozed_until": None if c.snoozed_until is None else str(c.snoozed_until),
        "closed": None if c.closed is None else c.closed.isoformat(),
        "close_reason": c.close_reason,
        "arr_at_stake": None if math.isnan(_at_stake(c)) else round(_at_stake(c), 2),
    }


def timeline(s, user: User, account_id: str) -> tuple[list[Cta], list[Event]]:
    """The account's CTAs the user may see and their events, newest first.

    Raises:
        PermissionError: When the account has CTAs and none is the user's to see.
        LookupError: When the account has no CTA.

    """
    ctas = s.scalars(select(Cta).where(Cta.account_id == account_id).order_by(Cta.id)).all()
    if not ctas:
        raise LookupError(f"account {account_id!r} has no call to action")
    mine = [c for c in ctas if work.may_work(s, user, c)]
    if not mine:
        raise PermissionError(f"account {account_id!r} is not in {user.name}'s book")
    ids = [c.id for c in mine]
    events = s.scalars(
        select(Event).where(Event.cta_id.in_(ids)).order_by(Event.at.desc(), Event.id.desc())
    ).all()
    return mine, events


def _text(body: dict, name: str) -> str | None:
    v = body.get(name)
    if v is not None and not isinstance(v, str):
        raise ValueError(f"{name}: expected text")
    return v


def apply(s, user: User, cta: Cta, verb: str, body: dict) -> None:
    """Run ``verb`` on ``cta`` for ``user`` with the fields of ``body`` (form or JSON)."""
    now = _now()
    if verb == "acknowledge":
        work.acknowledge(s, cta, user, now)
    elif verb == "note":
        work.note(s, cta, user, _text(body, "text"), now)
    elif verb == "activity":
        work.log_activity(
            s,
            cta,
            user,
            _text(body, "channel") or "",
            _text(body, "outcome"),
            _text(body, "text"),
            now,
        )
    elif verb == "start":
        work.start_play(s, cta, user, now)
    elif verb == "done":
        work.play_done(s, cta, user, _text(body, "outcome"), _text(body, "text"), now)
    elif verb == "snooze":
        raw = _text(body, "until") or ""
        try:
            until = date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"until: not a date (YYYY-MM-DD): {raw!r}") from None
        work.snooze(s, cta, user, until, _text(body, "reason"), now)
    elif verb == "override":
        work.override(s, cta, user, _text(body, "target") or "", _text(body, "reason"), now)
    elif verb == "reassign":
        name = _text(body, "to") or ""
        to = s.scalars(select(User).where(User.name == name)).first()
        if to is None:
            raise ValueError(f"to: no such user {name!r}")
        work.reassign(s, cta, user, to, _text(body, "reason"), now)
    else:
        raise LookupError(f"unknown action {verb!r}; use one of {', '.join(VERBS)}")


# --- the API -------------------------------------------------------------------------------


def _api(handler):
    """Token auth, one transaction, and errors as problem+json."""

    def wrapped(request: Request) -> Response:
        try:
            client = request.client.host if request.client else "?"
            if (wait := auth.THROTTLE.retry_after(client)) is not None:
                return problem_response(
                    429, f"too many wrong tokens or keys from this address; retry in {wait} s"
                )
            with store().session() as s:
                user = _token_user(s, request)
                if user is None:
                    if _credential(request):  # a guess: counted like a wrong API key
                        auth.THROTTLE.failed(client)
                    return problem_response(401, "a personal token or the API key is required")
                return handler(request, s, user)
        except PermissionError as exc:
            return problem_response(403, str(exc))
        except LookupError as exc:
            return problem_response(404, str(exc))
        except ValueError as exc:
            return problem_response(400, str(exc))

    return wrapped


def _get_cta(s, request: Request) -> Cta:
    raw = request.path_params["cta_id"]
    cta = s.get(Cta, int(raw)) if raw.isdigit() else None
    if cta is None:
        raise LookupError(f"no call to action {raw}")
    return cta


async def api_act(request: Request) -> Response:
    """``POST /api/ctas/{id}/{verb}``: the body's JSON read here, the work in a thread."""
    from starlette.concurrency import run_in_threadpool

    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return problem_response(400, "the body is not JSON")
    if not isinstance(body, dict):
        return problem_response(400, "the body must be a JSON object")

    def act(request, s, user):
        cta = _get_cta(s, request)
        apply(s, user, cta, request.path_params["verb"], body)
        s.flush()
        return JSONResponse(cta_json(s, cta))

    return await run_in_threadpool(_api(act), request)


@_api
def api_list(request: Request, s, user: User) -> Response:
    """``GET /api/ctas``: the caller's open and snoozed CTAs, in worklist order."""
    return JSONResponse({"ctas": [cta_json(s, c) for c in visible_ctas(s, user)]})


@_api
def api_timeline(request: Request, s, user: User) -> Response:
    """``GET /api/accounts/{id}/timeline``: the account's CTAs and events."""
    ctas, events = timeline(s, user, request.path_params["account_id"])
    return JSONResponse(
        {
            "ctas": [cta_json(s, c) for c in ctas],
            "events": [
                {"cta_id": e.cta_id, "at": e.at.isoformat(), "actor": e.actor, "kind": e.kind}
                | {"payload": e.payload}
                for e in events
            ],
        }
    )


# --- the pages -----------------------------------------------------------------------------

ENV = Environment(autoescape=True)
BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{{ title }} - Renewal Radar</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}
table{border-collapse:collapse}td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;
text-align:left}.overdue{color:#b00020;font-weight:600}form{display:inline-block;
margin:.2rem .6rem .2rem 0}fieldset{margin:.5rem 0}.err{color:#b00020}</style></head><body>
{% if user %}<p>Signed in as <b>{{ user.name }}</b> ({{ user.role }}) -
<a href="{{ root }}/">My CTAs</a> - <a href="{{ root }}/logout">sign out</a></p>{% endif %}
{% if error %}<p class="err" role="alert">{{ error }}</p>{% endif %}
{{ body }}</body></html>"""
LOGIN = """<h1>Sign in</h1><form method="post" action="{{ root }}/login">
<label>Name <input name="name" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password">
</label><button type="submit">Sign in</button></form>"""
MINE = """<h1>My CTAs ({{ ctas|length }})</h1>
{% if not ctas %}<p>Nothing open.</p>{% else %}<table><thead><tr><th>Account</th>
<th>Severity</th><th>Cause</th><th>Play</th><th>Owner</th><th>Due</th><th>Status</th>
<th>ARR at stake</th></tr></thead><tbody>{% for c in ctas %}<tr>
<td><a href="{{ root }}/accounts/{{ c.account_id|urlencode }}">{{ c.account_id }}</a></td>
<td>{{ c.severity }}</td><td>{{ c.cause_words }}</td><td>{{ c.play or "-" }}</td>
<td>{{ c.owner or "-" }}</td>
<td class="{{ 'overdue' if c.due < now else '' }}">{{ c.due[:16].replace('T', ' ') }}</td>
<td>{{ c.status }}{% if c.level %} (escalated {{ c.level }}){% endif %}</td>
<td>{{ "${:,.0f}".format(c.arr_at_stake) if c.arr_at_stake is not none else "-" }}</td>
</tr>{% endfor %}</tbody></table>{% endif %}"""
ACCOUNT = """<h1>Account {{ account_id }}: calls to action</h1>
{% for c in ctas %}<fieldset id="cta-{{ c.id }}"><legend>CTA {{ c.id }}: [{{ c.severity }}]
{{ c.cause_words }} - {{ c.status }}{% if c.close_reason %} ({{ c.close_reason }}){% endif %}
</legend><p>Play: {{ c.play or "-" }}; owner {{ c.owner or "-" }}; due
{{ c.due[:16].replace('T', ' ') }}</p>{% if c.status != "closed" %}
{% for verb, label, fields in forms %}<form method="post"
action="{{ root }}/ctas/{{ c.id }}/{{ verb }}" data-verb="{{ verb }}">
<input type="hidden" name="csrf" value="{{ csrf }}">{% for f in fields %}
{% if f[1] == "select" %}<select name="{{ f[0] }}" aria-label="{{ f[0] }}">{% for o in f[2] %}
<option>{{ o }}</option>{% endfor %}</select>{% else %}<input name="{{ f[0] }}"
type="{{ f[1] }}" placeholder="{{ f[0] }}" aria-label="{{ verb }} {{ f[0] }}">{% endif %}
{% endfor %}<button type="submit">{{ label }}</button></form>{% endfor %}{% endif %}
</fieldset>{% endfor %}
<h2>Timeline</h2><ol id="timeline">{% for e in events %}<li>{{ e.at.strftime("%Y-%m-%d %H:%M") }}
<b>{{ e.kind }}</b> by {{ e.actor }} (CTA {{ e.cta_id }}){% for k, v in e.payload.items()
if k in shown %}; {{ k }}: {{ v }}{% endfor %}</li>{% endfor %}</ol>"""
FORMS = (
    ("acknowledge", "Acknowledge", ()),
    (
        "activity",
        "Log activity",
        (("channel", "select", work.ACTIVITY_CHANNELS), ("outcome", "text"), ("text", "text")),
    ),
    ("note", "Add note", (("text", "text"),)),
    ("start", "Start play", ()),
    ("done", "Play done", (("outcome", "text"), ("text", "text"))),
    ("snooze", "Snooze", (("until", "date"), ("reason", "text"))),
    ("override", "Override", (("target", "select", work.OVERRIDE_TARGETS), ("reason", "text"))),
    ("reassign", "Reassign", (("to", "text"), ("reason", "text"))),
)
SHOWN = ("reason", "outcome", "channel", "until", "to", "level_name", "play", "target")


@functools.cache
def _template(source: str):
    """A page template, compiled once."""
    return ENV.from_string(source)


def _page(request: Request, title: str, body: str, user=None, error=None, status=200, **kw):
    root = request.scope.get("root_path", "")
    inner = _template(body).render(root=root, user=user, **kw)
    html = _template(BASE).render(
        title=title, body=Markup(inner), user=user, root=root, error=error
    )
    return HTMLResponse(html, status_code=status)


def _signed_in(request: Request, s) -> User | None:
    return _session_user(s, request)


def _to_login(request: Request) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}/login", status_code=303)


async def login(request: Request) -> Response:
    """The sign-in form; a right name and password sets the session cookie."""
    if request.method == "GET":
        return _page(request, "Sign in", LOGIN)
    form = await request.form()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    from starlette.concurrency import run_in_threadpool

    def check():
        with store().session() as s:
            return check_password(s, name, password)

    user = await run_in_threadpool(check)
    if user is None:
        return _page(request, "Sign in", LOGIN, error="wrong name or password", status=401)
    resp = RedirectResponse(f"{request.scope.get('root_path', '')}/", status_code=303)
    resp.set_cookie(
        COOKIE,
        session_value(user),
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        path=request.scope.get("root_path", "") or "/",
    )
    return resp


def logout(request: Request) -> Response:
    """Forget the session."""
    resp = _to_login(request)
    resp.delete_cookie(COOKIE, path=request.scope.get("root_path", "") or "/")
    return resp


def my_ctas(request: Request) -> Response:
    """The landing page: "My CTAs"."""
    with store().session() as s:
        user = _signed_in(request, s)
        if user is None:
            return _to_login(request)
        ctas = [cta_json(s, c) for c in visible_ctas(s, user)]
        return _page(request, "My CTAs", MINE, user=user, ctas=ctas, now=_now().isoformat())


def account_page(request: Request) -> Response:
    """An account's CTAs, a form per verb, and the timeline of what was done."""
    account_id = request.path_params["account_id"]
    with store().session() as s:
        user = _signed_in(request, s)
        if user is None:
            return _to_login(request)
        try:
            ctas, events = timeline(s, user, account_id)
        except PermissionError as exc:
            return _page(request, "Not yours", "", user=user, error=str(exc), status=403)
        except LookupError as exc:
            return _page(request, "Not found", "", user=user, error=str(exc), status=404)
        return _page(
            request,
            f"Account {account_id}",
            ACCOUNT,
            user=user,
            account_id=account_id,
            ctas=[cta_json(s, c) for c in ctas],
            events=events,
            forms=FORMS,
            shown=SHOWN,
            csrf=csrf_token(request.cookies.get(COOKIE, "")),
        )


async def form_act(request: Request) -> Response:
    """A form's verb: refused without the session's CSRF token; back to the account page."""
    from starlette.concurrency import run_in_threadpool

    form = {k: str(v) for k, v in (await request.form()).items()}
    session = request.cookies.get(COOKIE, "")
    if not session or not hmac.compare_digest(form.pop("csrf", ""), csrf_token(session)):
        return _page(request, "Refused", "", error="missing or wrong CSRF token", status=403)

    def act() -> Response:
        with store().session() as s:
            user = _signed_in(request, s)
            if user is None:
                return _to_login(request)
            raw = request.path_params["cta_id"]
            cta = s.get(Cta, int(raw)) if raw.isdigit() else None
            if cta is None:
                return _page(request, "Not found", "", user=user, error="no such CTA", status=404)
            try:
                with s.begin_nested():
                    apply(s, user, cta, request.path_params["verb"], form)
            except PermissionError as exc:
                return _page(request, "Not yours", "", user=user, error=str(exc), status=403)
            except (ValueError, LookupError) as exc:
                return _page(request, "Not done", "", user=user, error=str(exc), status=400)
            root = request.scope.get("root_path", "")
            return RedirectResponse(f"{root}/accounts/{cta.account_id}", status_code=303)

    return await run_in_threadpool(act)


app = Starlette(
    routes=[
        Route("/", my_ctas),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout),
        Route("/accounts/{account_id}", account_page),
        Route("/ctas/{cta_id}/{verb}", form_act, methods=["POST"]),
        Route("/api/ctas", api_list),
        Route("/api/accounts/{account_id}/timeline", api_timeline),
        Route("/api/ctas/{cta_id}/{verb}", api_act, methods=["POST"]),
    ]
)
