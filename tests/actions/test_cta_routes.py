"""The CTA pages in a real Chromium and the JSON API over HTTP, on a real server (uvicorn).

The app is mounted under ``/ctas`` as the service mounts it; the store is SQLite or PostgreSQL.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Mount

from actions.accounts import add_user, new_token, set_password
from actions.config import ActionsConfig
from actions.models import Cta, Event
from actions.run import run_once
from serving import cta_routes
from tests.actions.conftest import T0, records
from tests.browser import browser_page

PASSWORD = "correct horse battery"


@pytest.fixture
def server(store, monkeypatch):
    """The app on a free port over a store with two CSMs' CTAs; yields (url, tokens)."""
    monkeypatch.setenv("RADAR_API_KEY", "shared-key")
    monkeypatch.setattr(cta_routes, "_store", store)
    df = records(
        [
            {"account_id": "A1", "alerts": ["usage_decline"], "needs_action": True},
            {"account_id": "B1", "alerts": ["usage_decline"], "csm_owner": "bob"},
        ]
    )
    run_once(store, df, T0, ActionsConfig(), ())
    tokens = {}
    with store.session() as s:
        mx = add_user(s, "max", "manager", T0, team="east")
        for name in ("ann", "bob"):
            u = add_user(s, name, "csm", T0, team="east", manager="max")
            set_password(u, PASSWORD)
            tokens[name] = new_token(s, u, "laptop", T0)
        set_password(mx, PASSWORD)
        tokens["max"] = new_token(s, mx, "laptop", T0)
        a = s.scalars(select(Cta).where(Cta.account_id == "A1")).first()
        a.level = 1  # as escalated: the manager sees it
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = Starlette(routes=[Mount("/ctas", app=cta_routes.app)])
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/ctas", tokens
    srv.should_exit = True
    thread.join(timeout=10)


def _ids(store, account: str) -> list[int]:
    with store.session() as s:
        return s.scalars(select(Cta.id).where(Cta.account_id == account).order_by(Cta.id)).all()


def test_the_api_by_token(server, store):
    url, tokens = server
    ann = {"Authorization": f"Bearer {tokens['ann']}"}
    mine = httpx.get(f"{url}/api/ctas", headers=ann).json()["ctas"]
    assert {c["account_id"] for c in mine} == {"A1"} and len(mine) == 2
    assert mine[0]["arr_at_stake"] == 10_000.0 and mine[0]["owner"] == "ann"
    a1, b1 = _ids(store, "A1")[0], _ids(store, "B1")[0]
    done = httpx.post(
        f"{url}/api/ctas/{a1}/snooze",
        headers=ann,
        json={"until": str((T0 + timedelta(days=400)).date()), "reason": "budget meeting"},
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "snoozed"
    bad = httpx.post(f"{url}/api/ctas/{a1}/activity", headers=ann, json={"channel": "fax"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert "channel 'fax'" in bad.json()["detail"]
    assert httpx.post(f"{url}/api/ctas/{a1}/snooze", headers=ann, json=[1]).status_code == 400
    theirs = httpx.post(f"{url}/api/ctas/{b1}/acknowledge", headers=ann, json={})
    assert theirs.status_code == 403 and "not in ann's book" in theirs.json()["detail"]
    assert httpx.get(f"{url}/api/accounts/B1/timeline", headers=ann).status_code == 403
    assert httpx.get(f"{url}/api/ctas", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(f"{url}/api/ctas/999/note", headers=ann, json={}).status_code == 404
    # The manager sees the team's CTAs; the shared key works for machine clients.
    team = httpx.get(f"{url}/api/ctas", headers={"Authorization": f"Bearer {tokens['max']}"})
    assert {c["account_id"] for c in team.json()["ctas"]} == {"A1", "B1"}
    machine = httpx.post(
        f"{url}/api/ctas/{b1}/note", headers={"X-API-Key": "shared-key"}, json={"text": "synced"}
    )
    assert machine.status_code == 200
    line = httpx.get(f"{url}/api/accounts/A1/timeline", headers=ann).json()["events"]
    assert [(e["kind"], e["actor"]) for e in line][:1] == [("snoozed", "ann")]
    with store.session() as s:
        assert s.scalars(select(Event.actor).where(Event.kind == "note")).all() == ["api-key"]


def test_personal_tokens_are_not_key_guesses_but_wrong_ones_are_throttled(server):
    """Tokens pass however often they are used; wrong ones count like wrong API keys."""
    from serving import auth

    url, tokens = server
    auth.THROTTLE.clear()
    try:
        ann = {"Authorization": f"Bearer {tokens['ann']}"}
        assert {httpx.get(f"{url}/api/ctas", headers=ann).status_code for _ in range(30)} == {200}
        guesses = [
            httpx.get(f"{url}/api/ctas", headers={"X-API-Key": f"guess-{i}"}).status_code
            for i in range(25)
        ]
        assert guesses[0] == 401 and guesses[-1] == 429
        assert guesses.index(429) in (20, 21)  # the documented number of tries (docs/serving.md)
    finally:
        auth.THROTTLE.clear()


@pytest.mark.slow  # two Chromium sessions
def test_a_csm_works_a_cta_in_chromium(server, store):
    url, _ = server
    a1_alert, a1_play = _ids(store, "A1")
    with browser_page() as page:
        page.goto(f"{url}/")
        assert page.url.endswith("/ctas/login")
        page.fill("input[name=name]", "ann")
        page.fill("input[name=password]", "wrong password!")
        page.click("button[type=submit]")
        assert "wrong name or password" in page.inner_text("[role=alert]")
        page.fill("input[name=name]", "ann")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        assert "My CTAs (2)" in page.inner_text("h1")
        assert "B1" not in page.inner_text("table")  # only ann's book
        page.click("text=A1 >> nth=0")
        page.wait_for_url(f"{url}/accounts/A1")
        alert = page.locator(f"#cta-{a1_alert}")
        act = alert.locator("form[data-verb=activity]")
        act.locator("select[name=channel]").select_option("call")
        act.locator("input[name=outcome]").fill("no_answer")
        act.locator("input[name=text]").fill("left a voicemail")
        act.locator("button").click()
        page.wait_for_url(f"{url}/accounts/A1")
        snooze = page.locator(f"#cta-{a1_alert} form[data-verb=snooze]")
        snooze.locator("input[name=until]").fill(str((T0 + timedelta(days=400)).date()))
        snooze.locator("input[name=reason]").fill("budget meeting on the 14th")
        snooze.locator("button").click()
        page.wait_for_url(f"{url}/accounts/A1")
        done = page.locator(f"#cta-{a1_play} form[data-verb=done]")
        done.locator("input[name=outcome]").fill("completed")
        done.locator("button").click()
        page.wait_for_url(f"{url}/accounts/A1")
        line = page.inner_text("#timeline")
        assert "activity by ann" in line and "outcome: no_answer" in line
        assert "snoozed by ann" in line and "reason: budget meeting on the 14th" in line
        assert "play_done by ann" in line and "outcome: completed" in line
        assert "play done: completed" in page.inner_text(f"#cta-{a1_play} legend")
        # Another CSM's account: 403; a form posted without the CSRF token: refused.
        assert page.goto(f"{url}/accounts/B1").status == 403
        forged = page.request.post(
            f"{url}/ctas/{a1_alert}/acknowledge", form={"csrf": "forged"}, max_redirects=0
        )
        assert forged.status == 403 and "CSRF" in forged.text()
    with browser_page() as page:  # the manager: the team's CTAs, the escalation shown
        page.goto(f"{url}/login")
        page.fill("input[name=name]", "max")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        rows = page.inner_text("table")
        assert "B1" in rows and "snoozed (escalated 1)" in rows
    with store.session() as s:
        assert s.get(Cta, a1_alert).acknowledged is not None  # by the logged call
        assert s.scalars(select(Event.kind).where(Event.kind == "acknowledged")).all() == []
