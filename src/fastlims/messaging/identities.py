"""MQTT identities (``fastlims mqtt-users add``): argon2 hashes in the database; the broker checks
them at every CONNECT, so a new partner or bench can connect without a restart."""

from __future__ import annotations

import functools
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.messaging.models import MqttRole, MqttUser
from fastlims.users.security import check_password_policy, hash_password, verify_password

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class IdentityError(ValueError):
    pass


def add(*, session: Session, username: str, role: MqttRole | str, password: str) -> MqttUser:
    if not NAME.match(username):
        raise IdentityError(
            f"MQTT user name {username!r} is invalid: 1-64 letters, digits, '.', '_' or '-' (it becomes a topic level)"
        )
    try:
        role = MqttRole(role)
    except ValueError:
        raise IdentityError(f"role {role!r} is unknown; expected partner, bench or monitor") from None
    try:
        check_password_policy(password)
    except ValueError as exc:
        raise IdentityError(str(exc)) from None
    if session.scalar(select(MqttUser).where(MqttUser.username == username)):
        raise IdentityError(f"MQTT user {username!r} already exists")
    user = MqttUser(username=username, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def check(*, session: Session, username: str, password: str) -> MqttRole | None:
    """The identity's role when the password is right, else None. An unknown or disabled name
    costs the same argon2 work as a known one, so timing does not tell which names exist."""
    user = session.scalar(select(MqttUser).where(MqttUser.username == username))
    if user is None or not user.is_active:
        verify_password(_dummy_hash(), password)
        return None
    return user.role if verify_password(user.password_hash, password) else None


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def set_active(*, session: Session, username: str, active: bool) -> MqttUser:
    """Disable (or enable again) an identity: a running broker disconnects it within a second
    and refuses its CONNECTs from then on."""
    user = _get(session, username)
    user.is_active = active
    session.flush()
    return user


def remove(*, session: Session, username: str) -> None:
    session.delete(_get(session, username))
    session.flush()


def active_names(*, session: Session, usernames: set[str]) -> set[str]:
    rows = session.scalars(
        select(MqttUser.username).where(MqttUser.username.in_(usernames), MqttUser.is_active.is_(True))
    )
    return set(rows)


def _get(session: Session, username: str) -> MqttUser:
    user = session.scalar(select(MqttUser).where(MqttUser.username == username))
    if user is None:
        raise IdentityError(f"MQTT user {username!r} does not exist (see `fastlims mqtt-users list`)")
    return user


def get_all(*, session: Session) -> list[MqttUser]:
    return list(session.scalars(select(MqttUser).order_by(MqttUser.username)))
