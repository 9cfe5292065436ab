"""Users and API tokens. Passwords are argon2 hashes; tokens are stored only as SHA-256 digests."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fastlims.db.base import Base, UTCDateTime, enum_column
from fastlims.timeutil import utcnow


class Role(enum.StrEnum):
    requester = "requester"
    lab_manager = "lab_manager"
    admin = "admin"
    # A Digital Twin partner's HTTP upload account: bound to one partner (``User.partner``), it may
    # upload model files for that partner's requests and do nothing else (no pages, no requests).
    model_uploader = "model_uploader"


# What each role may do beyond its own requests; checked by ``users.auth.require``. The
# model_uploader is outside the ladder: it is not even a requester.
ROLE_RANK = {Role.requester: 0, Role.lab_manager: 1, Role.admin: 2}
LAB_ROLES = frozenset(ROLE_RANK)


class User(Base):
    __tablename__ = "Users"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    username: Mapped[str] = mapped_column("Username", String(64), unique=True)
    display_name: Mapped[str] = mapped_column("DisplayName", String(200))
    role: Mapped[Role] = mapped_column("Role", enum_column(Role))
    password_hash: Mapped[str] = mapped_column("PasswordHash", String(200))
    is_active: Mapped[bool] = mapped_column("IsActive", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
    # A page session (the signed cookie) holds the generation it was made in; logging out moves
    # the user to the next one, so a copy of an old cookie no longer opens a page.
    session_generation: Mapped[int] = mapped_column("SessionGeneration", Integer, default=0, server_default="0")
    # The Digital Twin partner (``DtPartners.Name``) a model_uploader uploads for; None otherwise.
    partner: Mapped[str | None] = mapped_column("Partner", String(64), nullable=True)

    def can(self, role: Role) -> bool:
        """True when this user's role is at least ``role`` (never for a model_uploader)."""
        return self.role in ROLE_RANK and ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def is_lab_user(self) -> bool:
        """A person of the lab (requester, lab manager, admin), not a partner's upload account."""
        return self.role in LAB_ROLES


class ApiToken(Base):
    __tablename__ = "ApiTokens"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column("UserId", ForeignKey("Users.Id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column("Name", String(100), default="")
    prefix: Mapped[str] = mapped_column("Prefix", String(16))
    token_hash: Mapped[str] = mapped_column("TokenHash", String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column("LastUsedAt", UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column("RevokedAt", UTCDateTime, nullable=True)
    # None: valid until revoked (``fastlims tokens create NAME --expires 90d`` sets it).
    expires_at: Mapped[datetime | None] = mapped_column("ExpiresAt", UTCDateTime, nullable=True)

    user: Mapped[User] = relationship()
