"""Teams and people from the configuration into the store (the escalation path's table)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.config import ActionsConfig, Person
from actions.models import Team, User


def _user(s: Session, p: Person, role: str, team: Team, at: datetime) -> User:
    u = s.scalars(select(User).where(User.name == p.name)).first()
    if u is None:
        u = User(name=p.name, role=role, created=at)
        s.add(u)
    u.email = p.email if p.email is not None else u.email
    u.team_id = team.id
    if u.role != "admin":  # an admin made by hand stays one
        u.role = role
    s.flush()
    return u


def sync_people(s: Session, cfg: ActionsConfig, at: datetime) -> int:
    """Create or update each team and person of the configuration; returns how many people.

    A CSM reports to the team's manager, the manager to the executive (escalation levels 1
    and 2). People not in the configuration are left as they are.
    """
    n = 0
    for t in cfg.teams:
        team = s.scalars(select(Team).where(Team.name == t.name)).first()
        if team is None:
            team = Team(name=t.name)
            s.add(team)
            s.flush()
        exe = None if t.executive is None else _user(s, t.executive, "manager", team, at)
        mgr = None if t.manager is None else _user(s, t.manager, "manager", team, at)
        if mgr is not None:
            mgr.manager_id = None if exe is None else exe.id
        for p in t.csms:
            u = _user(s, p, "csm", team, at)
            u.manager_id = None if mgr is None else mgr.id
        n += len(t.csms) + (exe is not None) + (mgr is not None)
    return n
