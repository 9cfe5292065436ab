"""users: API tokens may expire (``fastlims tokens create NAME --expires 90d``)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

``ApiTokens.ExpiresAt`` is NULL for a token without expiry (every token made before the upgrade);
a token past it is refused like a revoked one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ApiTokens", sa.Column("ExpiresAt", sa.DateTime(), nullable=True))


def downgrade() -> None:
    # In place (ALTER TABLE ... DROP COLUMN), as 0006 does, so foreign keys to Users stay.
    op.drop_column("ApiTokens", "ExpiresAt")
