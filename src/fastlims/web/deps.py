"""Dependencies of the pages: the session's user and the CSRF check of every form."""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from fastlims.deps import DbSession, SystemDep
from fastlims.users import service as users
from fastlims.users.models import User


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


SEEN_EVERY_S = 60  # how often an active session's last-seen time (and its cookie) is renewed


def _now() -> int:
    return int(time.time())


def start_page_session(request: Request, user: User) -> None:
    """A fresh session (and CSRF token) for ``user``, stamped with the login time."""
    request.session.clear()
    now = _now()
    request.session.update(user=user.username, generation=user.session_generation, login_at=now, seen=now)


def page_user(request: Request, session: DbSession, system: SystemDep) -> User:
    """The session's user. A session ends when the user is unknown or disabled, logged out or
    changed the password since (generation), was idle longer than FASTLIMS_SESSION_MAX_AGE_S, or
    began longer than FASTLIMS_SESSION_ABSOLUTE_S ago, however active."""
    username = request.session.get("user")
    user = users.get_by_username(session=session, username=username) if username else None
    now = _now()
    login_at, seen = request.session.get("login_at"), request.session.get("seen")
    settings = system.settings
    if (
        user is None
        or not user.is_active
        or not user.is_lab_user  # a partner's model_uploader account has no pages
        or request.session.get("generation") != user.session_generation
        or not isinstance(login_at, int)
        or not isinstance(seen, int)
        or now - login_at > settings.session_absolute_s
        or now - seen > settings.session_max_age_s
    ):
        request.session.clear()
        raise LoginRequired(request.url.path)
    if now - seen >= SEEN_EVERY_S:
        request.session["seen"] = now  # re-issues the cookie: the idle time starts again
    request.state.user = user.username
    return user


PageUser = Annotated[User, Depends(page_user)]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Synchroniser-token check for every state-changing page request (form field or header)."""
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not secrets.compare_digest(str(expected), sent):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong: reload the page and try again")
