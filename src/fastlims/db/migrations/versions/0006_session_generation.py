"""users: the page-session generation (logging out ends the session on the server)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Page sessions are signed cookies: a copy of one stays valid until it expires unless the server
can tell it is over. Each user's ``SessionGeneration`` goes up at logout; a session holds the
generation it was made in. Existing rows start at 0 (sessions made before the upgrade carry no
generation, so everyone logs in once more).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("Users", sa.Column("SessionGeneration", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    # In place (ALTER TABLE ... DROP COLUMN, SQLite 3.35+), not by rebuilding Users: a rebuild
    # would drop the table that ApiTokens references ON DELETE CASCADE, with foreign keys on.
    op.drop_column("Users", "SessionGeneration")
