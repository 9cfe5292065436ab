"""MQTT identities (``fastlims mqtt-users add``): argon2 hashes in the database; the broker checks
them at every CONNECT, so a new partner or bench can connect without a restart."""

from __future__ import annotations

import re

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
        raise IdentityError(f"role {role!r} is unknown; expected partner or bench") from None
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
    """The identity's role when the password is right, else None."""
    user = session.scalar(select(MqttUser).where(MqttUser.username == username))
    if user is None or not user.is_active:
        return None
    return user.role if verify_password(user.password_hash, password) else None


def get_all(*, session: Session) -> list[MqttUser]:
    return list(session.scalars(select(MqttUser).order_by(MqttUser.username)))
