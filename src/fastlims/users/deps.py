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


def token_user(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The token's user, whatever its role (only the model upload route takes a model_uploader)."""
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


TokenUser = Annotated[User, Depends(token_user)]


def api_user(user: TokenUser) -> User:
    """A lab user's token: a partner's model_uploader token opens nothing but the model upload."""
    if not user.is_lab_user:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a {user.role.value} token may only upload model files (PUT /api/v1/requests/<test_UUID>/models/<file>)",
        )
    return user


ApiUser = Annotated[User, Depends(api_user)]


def require_api_role(role: Role) -> Callable[[User], User]:
    def check(user: ApiUser) -> User:
        if not user.can(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {role.value} role or higher")
        return user

    return check
