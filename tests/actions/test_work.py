"""What a person does on a CTA: each verb an event, the right people only, bad input refused."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from actions import work
from actions.config import ActionsConfig, Person, TeamConfig
from actions.export import csm_actions
from actions.models import Cta, Event, User
from actions.run import run_once
from tests.actions.conftest import T0, records

TEAM = TeamConfig(
    name="east",
    manager=Person(name="max", email="max@x.io"),
    csms=(Person(name="ann", email="ann@x.io"), Person(name="bob", email="bob@x.io")),
)


@pytest.fixture
def opened(store):
    cfg = ActionsConfig(teams=(TEAM,))
    df = records(
        [
            {"account_id": "A", "alerts": ["usage_decline"], "needs_action": True},
            {"account_id": "B", "alerts": ["usage_decline"], "csm_owner": "bob"},
        ]
    )
    run_once(store, df, T0, cfg, ())
    return store


def _get(s, name=None, account=None, cause=None):
    if name:
        return s.scalars(select(User).where(User.name == name)).one()
    return s.scalars(select(Cta).where(Cta.account_id == account, Cta.cause == cause)).one()


def test_a_csm_works_a_cta_end_to_end_and_the_export_says_so(opened):
    t = T0 + timedelta(hours=1)
    with opened.session() as s:
        ann = _get(s, "ann")
        alert = _get(s, account="A", cause="alert:usage_decline")
        play = _get(s, account="A", cause="play:usage_recovery")
        work.acknowledge(s, alert, ann, t)
        work.log_activity(s, alert, ann, "call", "no_answer", "left a voicemail", t)
        work.snooze(s, alert, ann, date(2026, 3, 14), "budget meeting on the 14th", t)
        work.start_play(s, play, ann, t)
        work.play_done(s, play, ann, "completed", "training booked", t)
        assert (alert.status, alert.snoozed_until, alert.snooze_p_churn_90d) == (
            "snoozed",
            date(2026, 3, 14),
            0.1,
        )
        assert (play.status, play.close_reason) == ("closed", "play done: completed")
    with opened.session() as s:
        mine = s.scalars(select(Event).where(Event.actor == "ann").order_by(Event.id)).all()
        assert [e.kind for e in mine] == [
            "acknowledged",
            "activity",
            "snoozed",
            "play_started",
            "play_done",
            "closed",
        ]
    df = csm_actions(opened)
    done = df[df["action"] == "play_done"].iloc[0]
    assert (done["play"], done["outcome"], done["owner"], done["reason"]) == (
        "usage_recovery",
        "completed",
        "ann",
        "training booked",
    )
    snoozed = df[df["action"] == "snoozed"].iloc[0]
    assert snoozed["reason"] == "budget meeting on the 14th"
    assert str(snoozed["date"].date()) == str(t.date())


def test_another_csms_cta_is_refused_a_managers_is_allowed(opened):
    with opened.session() as s:
        ann, bob, mx = _get(s, "ann"), _get(s, "bob"), _get(s, "max")
        theirs = _get(s, account="B", cause="alert:usage_decline")
        with pytest.raises(PermissionError, match="not in ann's book"):
            work.acknowledge(s, theirs, ann, T0)
        work.reassign(s, theirs, mx, ann, "bob is on leave", T0)
        assert theirs.owner_id == ann.id
        work.acknowledge(s, theirs, ann, T0)
        assert work.may_work(s, mx, theirs) and not work.may_work(s, bob, theirs)


@pytest.mark.parametrize(
    ("verb", "message"),
    [
        (lambda s, c, u: work.snooze(s, c, u, T0.date(), "later", T0), "give a date after"),
        (lambda s, c, u: work.snooze(s, c, u, date(2026, 4, 1), "  ", T0), "reason: required"),
        (lambda s, c, u: work.log_activity(s, c, u, "fax", None, None, T0), "channel 'fax'"),
        (lambda s, c, u: work.override(s, c, u, "weather", "x", T0), "override 'weather'"),
        (lambda s, c, u: work.note(s, c, u, "x" * 2001, T0), "at most 2,000"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(opened, verb, message):
    with opened.session() as s:
        ann = _get(s, "ann")
        c = _get(s, account="A", cause="alert:usage_decline")
        with pytest.raises(ValueError, match=message):
            verb(s, c, ann)
        assert c.status == "open"
        assert s.scalars(select(Event).where(Event.actor == "ann")).all() == []


def test_radar_actions_user_sets_a_password_and_prints_a_token_once(tmp_path):
    from typer.testing import CliRunner

    from actions.accounts import check_password, user_of_token
    from actions.store import open_store
    from radar.cli import app

    url = f"sqlite:///{tmp_path / 'a.db'}"
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    args = ["actions", "user", "ann", "--team", "east", "--store", url]
    got = CliRunner().invoke(app, [*args, "--password-file", str(pw), "--token", "laptop"])
    assert got.exit_code == 0, got.output
    token = got.output.split("shown once): ")[1].split()[0]
    pw.write_text("short\n")
    bad = CliRunner().invoke(app, [*args, "--password-file", str(pw)])
    assert bad.exit_code == 1 and "at least 12 characters" in bad.output
    store = open_store(url)
    with store.session() as s:
        assert user_of_token(s, token).name == "ann"
        assert check_password(s, "ann", "correct horse battery").name == "ann"
        assert check_password(s, "ann", "short") is None and check_password(s, "x", "y") is None
    store.close()
