"""Sign-in: argon2-hashed passwords, personal API tokens (kept as SHA-256), user records."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.models import ROLES, Team, Token, User

MIN_PASSWORD = 12


def _hasher():
    from argon2 import PasswordHasher  # only sign-in needs it

    return PasswordHasher()


def add_user(
    s: Session,
    name: str,
    role: str,
    at: datetime,
    email: str | None = None,
    team: str | None = None,
    manager: str | None = None,
) -> User:
    """Create or update a user (a CSM's name is the accounts' ``csm_owner``)."""
    if role not in ROLES:
        raise ValueError(f"role {role!r}: use one of {', '.join(ROLES)}")
    u = s.scalars(select(User).where(User.name == name)).first()
    if u is None:
        u = User(name=name, role=role, created=at)
        s.add(u)
    u.role, u.email = role, email if email is not None else u.email
    if team is not None:
        t = s.scalars(select(Team).where(Team.name == team)).first()
        if t is None:
            t = Team(name=team)
            s.add(t)
            s.flush()
        u.team_id = t.id
    if manager is not None:
        m = s.scalars(select(User).where(User.name == manager)).first()
        if m is None:
            raise ValueError(f"manager {manager!r}: no such user")
        u.manager_id = m.id
    s.flush()
    return u


def set_password(user: User, password: str) -> None:
    """Store the argon2 hash of a new password (at least ``MIN_PASSWORD`` characters)."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: at least {MIN_PASSWORD} characters")
    user.password_hash = _hasher().hash(password)


def check_password(s: Session, name: str, password: str) -> User | None:
    """The user when ``password`` is theirs, else None (the same work either way)."""
    from argon2.exceptions import VerificationError

    u = s.scalars(select(User).where(User.name == name)).first()
    h = _hasher()
    stored = u.password_hash if u is not None and u.password_hash else None
    try:
        # Without a hash, verify against a throwaway one: the answer takes as long.
        ok = h.verify(stored or h.hash(secrets.token_hex(8)), password) and stored is not None
    except VerificationError:
        return None
    if ok and h.check_needs_rehash(stored):
        u.password_hash = h.hash(password)
    return u if ok else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(s: Session, user: User, name: str, at: datetime) -> str:
    """A new personal token for ``user``, returned once; the store keeps its SHA-256."""
    token = "rr_" + secrets.token_urlsafe(32)
    s.add(Token(user_id=user.id, name=name, token_hash=_digest(token), created=at))
    s.flush()
    return token


def user_of_token(s: Session, token: str) -> User | None:
    """The user a token belongs to (random 256-bit tokens: a plain hash is enough)."""
    t = s.scalars(select(Token).where(Token.token_hash == _digest(token))).first()
    return None if t is None else s.get(User, t.user_id)
