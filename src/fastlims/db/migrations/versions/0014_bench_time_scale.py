"""bench time scale: test seconds a bench runs per wall-clock second (1 for a real cycler; an
emulated bench's ``--speed``), so the scheduler books what the bench really takes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("Benches", sa.Column("TimeScale", sa.Float(), nullable=False, server_default="1"))


def downgrade() -> None:
    op.drop_column("Benches", "TimeScale")  # in place, as 0009 does
