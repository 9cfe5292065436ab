"""FastAPI dependencies: database session, bearer-token users for the API, session users and
CSRF checks for the pages."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from fastlims.bootstrap import System
from fastlims.users import service as users
from fastlims.users.models import Role, User

bearer = HTTPBearer(auto_error=False, description="API token from `fastlims tokens create USER`")


def get_system(request: Request) -> System:
    system: System = request.app.state.system
    return system


def db_session(system: Annotated[System, Depends(get_system)]) -> Iterator[Session]:
    with system.database.transaction() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session)]


def api_user(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API token is required: send 'Authorization: Bearer <token>' (fastlims tokens create USER)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = users.user_for_token(session=session, token=credentials.credentials)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API token is unknown, revoked or belongs to a disabled user",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    request.state.user = user.username
    return user


ApiUser = Annotated[User, Depends(api_user)]


def require_api_role(role: Role) -> Callable[[User], User]:
    def check(user: ApiUser) -> User:
        if not user.can(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {role.value} role or higher")
        return user

    return check


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def page_user(request: Request, session: DbSession) -> User:
    username = request.session.get("user")
    user = users.get_by_username(session=session, username=username) if username else None
    if user is None or not user.is_active:
        request.session.clear()
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
