"""Users and API tokens: plain functions taking the session, as in Dispatch's services."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.timeutil import utcnow
from fastlims.users.models import ApiToken, Role, User
from fastlims.users.security import (
    check_password_policy,
    generate_token,
    hash_password,
    token_digest,
    verify_password,
)

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class UserError(ValueError):
    """A user or token operation that cannot be done, with a message for the operator."""


def get_by_username(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def get_all(*, session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def count(*, session: Session) -> int:
    return len(session.scalars(select(User.id)).all())


def create(
    *,
    session: Session,
    username: str,
    role: Role | str,
    password: str,
    display_name: str | None = None,
    partner: str | None = None,
) -> User:
    """Create a user; the username is the login and the requester id on their requests. A
    model_uploader needs ``partner`` (the Digital Twin partner it uploads for; the caller checks
    that the partner exists); the other roles take none."""
    if not USERNAME_PATTERN.match(username):
        raise UserError(f"username {username!r} is invalid: use 2-64 lower-case letters, digits, '.', '_' or '-'")
    try:
        role = Role(role)
    except ValueError:
        raise UserError(f"role {role!r} is unknown; expected one of {', '.join(r.value for r in Role)}") from None
    try:
        check_password_policy(password)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if role is Role.model_uploader and not partner:
        raise UserError("a model_uploader uploads for one Digital Twin partner: give --partner NAME")
    if role is not Role.model_uploader and partner:
        raise UserError(f"only a model_uploader is bound to a partner, not a {role.value}")
    if get_by_username(session=session, username=username):
        raise UserError(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        partner=partner,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    user = get_by_username(session=session, username=username)
    if user is None or not user.is_active:
        # Spend the same time as a real check so timing does not reveal which usernames exist.
        verify_password(_DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


def end_page_sessions(*, session: Session, user: User) -> None:
    """Logging out: every page session of ``user`` made so far ends (its cookie, even copied, no
    longer opens a page); the next login starts a new one."""
    user.session_generation += 1


def create_token(*, session: Session, username: str, name: str = "") -> str:
    """Create an API token and return it; only its digest is kept, so it is shown once."""
    user = get_by_username(session=session, username=username)
    if user is None:
        raise UserError(f"user {username!r} does not exist")
    token = generate_token()
    session.add(ApiToken(user_id=user.id, name=name, prefix=token[:10], token_hash=token_digest(token)))
    session.flush()
    return token


def user_for_token(*, session: Session, token: str) -> User | None:
    api_token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if api_token is None or api_token.revoked_at is not None or not api_token.user.is_active:
        return None
    now = utcnow()
    # One write a minute at most: a write per API call would serialise readers on SQLite.
    if api_token.last_used_at is None or (now - api_token.last_used_at).total_seconds() > 60:
        api_token.last_used_at = now
    return api_token.user


_DUMMY_HASH = hash_password("timing-equaliser-not-a-real-password")
