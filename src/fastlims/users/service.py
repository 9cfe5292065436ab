"""Users and API tokens: plain functions taking the session, as in Dispatch's services."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.timeutil import utcnow
from fastlims.users.models import ApiToken, Role, User
from fastlims.users.security import (
    DEMO_PASSWORD,
    check_password_policy,
    generate_token,
    hash_password,
    token_digest,
    verify_password,
)
from fastlims.users.throttle import LoginThrottle, wait_message

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
    demo: bool = False,
) -> User:
    """Create a user; the username is the login and the requester id on their requests. A
    model_uploader needs ``partner`` (the Digital Twin partner it uploads for; the caller checks
    that the partner exists); the other roles take none.
    ``demo``: the documented demo accounts only (``fastlims up --demo``), whose password is the
    published one that the policy otherwise refuses."""
    if not USERNAME_PATTERN.match(username):
        raise UserError(f"username {username!r} is invalid: use 2-64 lower-case letters, digits, '.', '_' or '-'")
    try:
        role = Role(role)
    except ValueError:
        raise UserError(f"role {role!r} is unknown; expected one of {', '.join(r.value for r in Role)}") from None
    if not (demo and password == DEMO_PASSWORD):
        _check_policy(password, username, display_name)
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


def _check_policy(password: str, username: str, display_name: str | None) -> None:
    try:
        check_password_policy(password, username=username, display_name=display_name)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _existing(session: Session, username: str) -> User:
    user = get_by_username(session=session, username=username)
    if user is None:
        raise UserError(f"user {username!r} does not exist")
    return user


def set_active(*, session: Session, username: str, active: bool) -> User:
    """Disable or enable a user. Disabling takes effect at once: their page sessions and API
    tokens are checked against ``is_active`` on every request (the tokens stay, unrevoked, so
    enabling brings them back)."""
    user = _existing(session, username)
    if user.is_active and not active:
        user.session_generation += 1  # an enabled account later starts with fresh sessions
    user.is_active = active
    return user


def change_password(*, session: Session, username: str, password: str) -> User:
    """Set a new password (policy checked) and end every page session of the user made so far."""
    user = _existing(session, username)
    _check_policy(password, user.username, user.display_name)
    user.password_hash = hash_password(password)
    user.session_generation += 1
    return user


def end_page_sessions(*, session: Session, user: User) -> None:
    """Logging out: every page session of ``user`` made so far ends (its cookie, even copied, no
    longer opens a page); the next login starts a new one."""
    user.session_generation += 1


def create_token(*, session: Session, username: str, name: str = "", expires_at: datetime | None = None) -> str:
    """Create an API token and return it; only its digest is kept, so it is shown once.
    ``expires_at``: refused from then on (None: valid until revoked)."""
    user = _existing(session, username)
    token = generate_token()
    session.add(
        ApiToken(user_id=user.id, name=name, prefix=token[:10], token_hash=token_digest(token), expires_at=expires_at)
    )
    session.flush()
    return token


def get_tokens(*, session: Session, username: str | None = None) -> list[ApiToken]:
    """Every API token (or one user's), oldest first, with its user loaded."""
    query = select(ApiToken).join(User).order_by(ApiToken.id)
    if username is not None:
        query = query.where(User.username == username)
    return list(session.scalars(query))


def revoke_token(*, session: Session, token_ref: str) -> ApiToken:
    """Revoke the token with id or prefix ``token_ref`` (as ``fastlims tokens list`` shows); it is
    refused from the next request on."""
    if token_ref.isdigit():
        found = list(session.scalars(select(ApiToken).where(ApiToken.id == int(token_ref))))
    else:
        found = list(session.scalars(select(ApiToken).where(ApiToken.prefix == token_ref[:10])))
    if not found:
        raise UserError(f"no API token has id or prefix {token_ref!r}: see fastlims tokens list")
    if len(found) > 1:
        ids = ", ".join(str(t.id) for t in found)
        raise UserError(f"prefix {token_ref!r} matches several tokens ({ids}): revoke by id")
    api_token = found[0]
    if api_token.revoked_at is None:
        api_token.revoked_at = utcnow()
    return api_token


def token_state(api_token: ApiToken, now: datetime | None = None) -> str:
    """'active', 'revoked', 'expired' or 'user disabled': whether the token opens the API now."""
    now = now or utcnow()
    if api_token.revoked_at is not None:
        return "revoked"
    if api_token.expires_at is not None and api_token.expires_at <= now:
        return "expired"
    return "active" if api_token.user.is_active else "user disabled"


def user_for_token(*, session: Session, token: str) -> User | None:
    api_token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    now = utcnow()
    if api_token is None or token_state(api_token, now) != "active":
        return None
    # One write a minute at most: a write per API call would serialise readers on SQLite.
    if api_token.last_used_at is None or (now - api_token.last_used_at).total_seconds() > 60:
        api_token.last_used_at = now
    return api_token.user


_DUMMY_HASH = hash_password("timing-equaliser-not-a-real-password")


class LoginLocked(Exception):
    """Too many failed logins for the account or from the address; ``retry_after`` in seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(wait_message(retry_after))


def login(
    *, session: Session, throttle: LoginThrottle, username: str, password: str, address: str | None
) -> User | None:
    """``authenticate`` behind the guessing throttle: raises LoginLocked while the account or the
    address is locked (a correct password too), counts a failure, clears the count on success.
    Slow on purpose (argon2): call it from a worker thread, never on the event loop."""
    wait = throttle.retry_after(username, address)
    if wait is not None:
        raise LoginLocked(wait)
    user = authenticate(session=session, username=username, password=password)
    if user is None:
        throttle.failed(username, address)
        return None
    throttle.succeeded(username)
    return user
