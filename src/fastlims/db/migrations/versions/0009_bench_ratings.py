"""bench ratings: what a bench can run (current, voltage window, channels, temperature chamber)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

The scheduler books a run only on a bench whose ratings cover its procedure. Nullable limits mean
"no limit" (a virtual bench); rows from before this revision keep none, as before. ``Channels``
defaults to 1 and ``TemperatureChamber`` to false.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns() -> list[sa.Column[object]]:
    """Fresh Column objects each call (a Column belongs to one table once added)."""
    return [
        sa.Column("MaxCurrentA", sa.Float(), nullable=True),
        sa.Column("MinVoltageV", sa.Float(), nullable=True),
        sa.Column("MaxVoltageV", sa.Float(), nullable=True),
        sa.Column("Channels", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("TemperatureChamber", sa.Boolean(), nullable=False, server_default=sa.false()),
    ]


def upgrade() -> None:
    for column in _columns():
        op.add_column("Benches", column)


def downgrade() -> None:
    # In place (ALTER TABLE ... DROP COLUMN), not by rebuilding the table.
    for column in reversed(_columns()):
        op.drop_column("Benches", column.name)
