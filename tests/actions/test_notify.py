"""Notifications: a real SMTP server (aiosmtpd) and a real webhook receiver on loopback.

A channel down for one run loses nothing; once back, every message arrives exactly once.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from actions.config import ActionsConfig, Channel, Person, TeamConfig
from actions.models import Event, Outbox
from actions.run import run_once
from tests.actions.conftest import T0, records

HIGH = ("usage_collapse",)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler: every message received, parsed."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def webhook():
    """A JSON webhook receiver on loopback: yields (port, list of bodies received)."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], got
    server.shutdown()
    server.server_close()


def test_an_smtp_outage_loses_nothing_and_repeats_nothing(store, webhook):
    hook_port, hooked = webhook
    smtp_port = _free_port()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    cfg = ActionsConfig(
        teams=(
            TeamConfig(
                name="east",
                manager=Person(name="max", email="max@example.com"),
                csms=(Person(name="ann", email="ann@example.com"),),
            ),
        ),
        channels=(
            Channel(
                name="email",
                url=f"mailto://127.0.0.1:{smtp_port}?from=radar@example.com&to={{email}}"
                "&mode=insecure",
            ),
            Channel(name="team-hook", url=f"json://127.0.0.1:{hook_port}/radar/{{name}}"),
        ),
    )
    df = records(
        [
            {"account_id": "A", "alerts": ["usage_collapse"], "p_churn_90d": 0.7},  # critical
            {"account_id": "B", "alerts": ["usage_decline"]},  # medium
        ]
    )
    # Run 1, SMTP down: the critical message and ann's digest on both channels; e-mail fails.
    first = run_once(store, df, T0, cfg, HIGH)
    assert (first.opened, first.queued, first.sent, first.failed) == (2, 4, 2, 2)
    assert sorted(h["title"] for h in hooked) == [
        "Critical: A: Usage collapsed (down more than 50% in 30 days)",
        "Your accounts today: 2 open call(s) to action",
    ]
    with store.session() as s:
        waiting = s.scalars(select(Outbox).where(Outbox.sent_at.is_(None))).all()
        assert [(m.channel, m.attempts) for m in waiting] == [("email", 1), ("email", 1)]
        assert all("Connection error" in m.last_error for m in waiting)
    # Run 2 before the backoff: not tried again.
    early = run_once(store, df, T0 + timedelta(minutes=1), cfg, HIGH)
    assert (early.sent, early.failed) == (0, 0)
    # SMTP back; run 3 after the backoff (and past the critical CTA's grace: escalated to max).
    smtp.start()
    try:
        later = run_once(store, df, T0 + timedelta(minutes=20), cfg, HIGH)
        assert (later.escalated, later.sent, later.failed) == (1, 4, 0)
        again = run_once(store, df, T0 + timedelta(minutes=25), cfg, HIGH)
        assert (again.queued, again.sent, again.failed) == (0, 0, 0)
    finally:
        smtp.stop()
    subjects = sorted((m["To"], m["Subject"]) for m in inbox.messages)
    assert subjects == [
        ("ann@example.com", "Critical: A: Usage collapsed (down more than 50% in 30 days)"),
        ("ann@example.com", "Your accounts today: 2 open call(s) to action"),
        (
            "max@example.com",
            "Escalated to you (manager): A: Usage collapsed (down more than 50% in 30 days)",
        ),
    ]
    assert len(hooked) == 3  # critical + digest + escalation, each once
    assert "B [medium] Usage fell more than 30% in 30 days" in inbox.messages[1].as_string()
    with store.session() as s:
        notified = s.scalars(select(Event).where(Event.kind == "notified")).all()
        assert sorted((e.payload["to"], e.payload["channel"]) for e in notified) == [
            ("ann", "email"),
            ("ann", "team-hook"),
            ("max", "email"),
            ("max", "team-hook"),
        ]
        assert s.scalars(select(Outbox).where(Outbox.sent_at.is_(None))).all() == []
