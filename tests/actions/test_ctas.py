"""CTAs from scoring runs: dedupe, severity, capacity, snooze, clearing, escalation."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from sqlalchemy import select

from actions.config import ActionsConfig, Person, TeamConfig
from actions.ctas import CLEARED, causes, choose
from actions.models import Cta, Event, User
from actions.run import run_once
from tests.actions.conftest import T0, records

HIGH = ("usage_collapse", "champion_lost")


def _ctas(store) -> list[Cta]:
    with store.session() as s:
        return s.scalars(select(Cta).order_by(Cta.id)).all()


def _kinds(store) -> list[str]:
    with store.session() as s:
        return [e.kind for e in s.scalars(select(Event).order_by(Event.id))]


def test_severity_from_the_rules_table():
    cfg = ActionsConfig()
    df = records(
        [
            {"account_id": "A", "alerts": ["usage_collapse"], "p_churn_90d": 0.6},
            {"account_id": "B", "alerts": ["usage_collapse"], "p_churn_90d": 0.3},
            {"account_id": "C", "alerts": ["health_drop"], "needs_action": True},
            {"account_id": "D", "alerts": ["usage_collapse"], "p_churn_90d": None, "arr": None},
        ]
    )
    got = causes(df, cfg, HIGH)
    assert list(zip(got["account_id"], got["cause"], got["severity"], strict=True)) == [
        ("A", "alert:usage_collapse", "critical"),
        ("B", "alert:usage_collapse", "high"),
        ("C", "alert:health_drop", "medium"),
        ("C", "play:usage_recovery", "low"),
        ("D", "alert:usage_collapse", "high"),  # no risk figure: meets no risk threshold
    ]
    assert got.loc[0, "at_stake"] == 60_000 and pd.isna(got.loc[4, "at_stake"])
    assert got.loc[0, "figures"]["p_churn_90d"] == 0.6 and got.loc[4, "figures"]["arr"] is None


def test_capacity_ranks_by_severity_then_arr_at_stake_missing_last():
    new = pd.DataFrame(
        {
            "account_id": ["A", "B", "C", "D", "E"],
            "cause": ["alert:x"] * 5,
            "owner": ["ann"] * 5,
            "severity": ["low", "low", "low", "low", "high"],
            "at_stake": [10.0, float("nan"), 30.0, 0.0, 1.0],
        }
    )
    assert list(choose(new, {}, 3)["account_id"]) == ["A", "C", "E"]
    # An account already worked takes its new cause at no cost; one slot is left here.
    got = choose(new, {"ann": {"B", "X"}}, 3)
    assert sorted(got["account_id"]) == ["B", "E"]
    assert list(choose(new, {}, 5)["account_id"]) == ["A", "B", "C", "D", "E"]


def test_one_cta_per_account_and_cause_across_runs(store):
    cfg = ActionsConfig(clear_after_runs=2)
    run1 = records(
        [
            {"account_id": "A", "alerts": ["usage_decline"], "needs_action": True},
            {"account_id": "B", "alerts": []},
        ]
    )
    s1 = run_once(store, run1, T0, cfg, HIGH)
    assert (s1.opened, s1.closed, s1.escalated) == (2, 0, 0)
    assert [(c.account_id, c.cause, c.severity) for c in _ctas(store)] == [
        ("A", "alert:usage_decline", "medium"),
        ("A", "play:usage_recovery", "low"),
    ]
    c = _ctas(store)[0]
    assert c.due == T0 + timedelta(hours=4) and c.figures["as_of"] == "2026-03-01"
    with store.session() as s:
        assert s.scalars(select(User.name)).all() == ["ann"]  # the CSM of the records
    # The same data again: nothing opened; the next date with the same causes: nothing either.
    s2 = run_once(store, run1, T0 + timedelta(minutes=5), cfg, HIGH)
    assert (s2.opened, s2.closed, s2.skipped_sync) == (0, 0, True)
    run2 = run1.assign(as_of=pd.Timestamp("2026-03-02"))
    assert run_once(store, run2, T0 + timedelta(minutes=10), cfg, HIGH).opened == 0
    # The alert clears: open for one run more, closed after the second without it.
    gone = records([{"account_id": "A", "needs_action": True}], "2026-03-03")
    assert run_once(store, gone, T0 + timedelta(minutes=20), cfg, HIGH).closed == 0
    s5 = run_once(store, gone.assign(as_of=pd.Timestamp("2026-03-04")), T0, cfg, HIGH)
    assert s5.closed == 1
    a = _ctas(store)[0]
    assert (a.status, a.close_reason) == ("closed", CLEARED)
    assert _ctas(store)[1].status == "open"
    assert _kinds(store) == ["opened", "opened", "closed"]
    # The alert back: a new CTA (the first one is closed as cleared).
    back = run1.assign(as_of=pd.Timestamp("2026-03-05"))
    assert run_once(store, back, T0, cfg, HIGH).opened == 1


def test_a_cta_a_person_closed_stays_closed_while_its_cause_stays(store):
    cfg = ActionsConfig()
    run1 = records([{"account_id": "A", "alerts": ["usage_decline"]}])
    run_once(store, run1, T0, cfg, HIGH)
    with store.session() as s:
        c = s.scalars(select(Cta)).one()
        c.status, c.closed, c.close_reason = "closed", T0, "done: adoption plan agreed"
    later = run1.assign(as_of=pd.Timestamp("2026-03-08"))
    assert run_once(store, later, T0 + timedelta(days=7), cfg, HIGH).opened == 0


def test_capacity_bounds_the_accounts_opened_per_csm(store):
    cfg = ActionsConfig(capacity_per_csm=2)
    df = records(
        [
            {"account_id": f"A{i}", "alerts": ["usage_decline"], "arr": arr, "csm_owner": o}
            for i, (arr, o) in enumerate(
                [(1e5, "ann"), (3e5, "ann"), (None, "ann"), (2e5, "ann"), (1.0, "bob")]
            )
        ]
    )
    s = run_once(store, df, T0, cfg, HIGH)
    assert (s.opened, s.held_back) == (3, 2)
    assert sorted(c.account_id for c in _ctas(store)) == ["A1", "A3", "A4"]


def test_a_snooze_ends_on_its_date_or_early_when_the_account_worsens(store):
    cfg = ActionsConfig(snooze_wake_margin=0.1)
    df = records(
        [
            {"account_id": "A", "alerts": ["usage_decline"], "p_churn_90d": 0.2},
            {"account_id": "B", "alerts": ["usage_decline"], "p_churn_90d": 0.2},
        ]
    )
    run_once(store, df, T0, cfg, HIGH)
    with store.session() as s:
        for c in s.scalars(select(Cta)):
            c.status, c.snoozed_until, c.snooze_p_churn_90d = "snoozed", date(2026, 3, 14), 0.2
    worse = df.assign(as_of=pd.Timestamp("2026-03-02"), p_churn_90d=[0.35, 0.25])
    got = run_once(store, worse, T0 + timedelta(days=1), cfg, HIGH)
    assert (got.woken, got.opened) == (1, 0)
    assert [c.status for c in _ctas(store)] == ["open", "snoozed"]
    on_date = df.assign(as_of=pd.Timestamp("2026-03-14"))
    assert run_once(store, on_date, T0 + timedelta(days=12), cfg, HIGH).woken == 1
    with store.session() as s:
        woke = s.scalars(select(Event).where(Event.kind == "reopened").order_by(Event.id)).all()
        assert [e.payload["reason"] for e in woke] == ["risk rose", "snooze ended"]


def test_escalation_climbs_the_team_once_per_deadline(store):
    team = TeamConfig(
        name="east",
        executive=Person(name="eve", email="eve@x.io"),
        manager=Person(name="max", email="max@x.io"),
        csms=(Person(name="ann", email="ann@x.io"),),
    )
    cfg = ActionsConfig(teams=(team,))
    df = records([{"account_id": "A", "alerts": ["usage_collapse"], "p_churn_90d": 0.3}])
    assert run_once(store, df, T0, cfg, HIGH).escalated == 0  # high: 1 hour to answer
    t1 = T0 + timedelta(hours=1, minutes=1)
    assert run_once(store, df, t1, cfg, HIGH).escalated == 1
    assert run_once(store, df, t1, cfg, HIGH).escalated == 0  # the same step twice: nothing
    t2 = t1 + timedelta(hours=2)
    assert run_once(store, df, t2, cfg, HIGH).escalated == 1
    assert run_once(store, df, t2 + timedelta(days=3), cfg, HIGH).escalated == 0  # top level
    with store.session() as s:
        ups = s.scalars(select(Event).where(Event.kind == "escalated").order_by(Event.id)).all()
        assert [(e.payload["level_name"], e.payload["to"]) for e in ups] == [
            ("manager", "max"),
            ("executive", "eve"),
        ]
        assert s.scalars(select(Cta)).one().level == 2


def test_an_acknowledged_cta_is_not_escalated_and_critical_waits_the_grace(store):
    cfg = ActionsConfig(immediate_grace_minutes=15)
    df = records(
        [
            {"account_id": "A", "alerts": ["usage_collapse"], "p_churn_90d": 0.7},
            {"account_id": "B", "alerts": ["usage_collapse"], "p_churn_90d": 0.7},
        ]
    )
    run_once(store, df, T0, cfg, HIGH)
    assert [c.severity for c in _ctas(store)] == ["critical", "critical"]
    assert run_once(store, df, T0 + timedelta(minutes=10), cfg, HIGH).escalated == 0
    with store.session() as s:
        s.scalars(select(Cta).where(Cta.account_id == "A")).one().acknowledged = T0
    assert run_once(store, df, T0 + timedelta(minutes=16), cfg, HIGH).escalated == 1
    assert [c.level for c in _ctas(store)] == [0, 1]


def test_an_account_without_a_csm_still_gets_its_cta():
    """Found by issue 31's forecast test: pandas 3 read a missing owner back as NaN, so the
    capacity step dropped every tech-touch account's new cause."""
    new = pd.DataFrame(
        {
            "account_id": ["A", "B"],
            "cause": ["alert:x"] * 2,
            "owner": [None, "ann"],
            "severity": ["low", "low"],
            "at_stake": [1.0, 2.0],
        }
    )
    assert choose(new, {}, 5)["account_id"].tolist() == ["A", "B"]
