"""Who is asking, for the API routes of every capability: a bearer token's user and role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fastlims.deps import DbSession
from fastlims.users import service as users
from fastlims.users.models import Role, User

bearer = HTTPBearer(auto_error=False, description="API token from `fastlims tokens create USER`")


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
