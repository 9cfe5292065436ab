"""User administration API (admins) and who-am-I (everyone)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict

from fastlims.deps import DbSession
from fastlims.users import service
from fastlims.users.deps import ApiUser, require_api_role
from fastlims.users.models import Role, User

router = APIRouter(prefix="/api/v1", tags=["users"])
AdminUser = Annotated[User, Depends(require_api_role(Role.admin))]


class UserOut(BaseModel):
    username: str
    display_name: str
    role: Role
    is_active: bool


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    role: Role
    password: str
    display_name: str | None = None


def _out(user: User) -> UserOut:
    return UserOut(username=user.username, display_name=user.display_name, role=user.role, is_active=user.is_active)


@router.get("/me", response_model=UserOut)
def me(user: ApiUser) -> UserOut:
    return _out(user)


@router.get("/users", response_model=list[UserOut])
def list_users(session: DbSession, _: AdminUser) -> list[UserOut]:
    return [_out(u) for u in service.get_all(session=session)]


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: DbSession, _: AdminUser) -> UserOut:
    try:
        user = service.create(
            session=session,
            username=body.username,
            role=body.role,
            password=body.password,
            display_name=body.display_name,
        )
    except service.UserError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _out(user)
