"""Dependencies of the pages: the session's user and the CSRF check of every form."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from fastlims.deps import DbSession
from fastlims.users import service as users
from fastlims.users.models import User


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def page_user(request: Request, session: DbSession) -> User:
    username = request.session.get("user")
    user = users.get_by_username(session=session, username=username) if username else None
    if (
        user is None
        or not user.is_active
        or not user.is_lab_user  # a partner's model_uploader account has no pages
        or request.session.get("generation") != user.session_generation
    ):
        request.session.clear()  # unknown, disabled, or logged out since this session was made
        raise LoginRequired(request.url.path)
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
