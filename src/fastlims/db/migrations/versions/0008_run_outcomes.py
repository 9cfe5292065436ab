"""pipeline runs: what each run ran and how it ended (procedure, values, end cause, outcomes) and
the FMU set's measured speed, which books the next virtual runs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

``ProcedureKey`` is the run's resolved procedure in storage and ``ValuesJson`` the values of the
procedure's variables it ran with (the DoE factors); ``EndedAt``, ``EndCause`` (procedure_complete,
safety_limit, error, timeout, cancelled), ``Reason`` and ``OutcomesJson`` (the outcomes a battery
engineer reads) say how it ended; ``FmuSet`` (a digest of the FMUs), ``SimulatedSeconds`` and
``WallSeconds`` measure a virtual run's speed. All nullable: runs booked before this revision have
none of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns() -> list[sa.Column[object]]:
    """Fresh Column objects each call (a Column belongs to one table once added)."""
    return [
        sa.Column("ProcedureKey", sa.String(length=1000), nullable=True),
        sa.Column("ValuesJson", sa.Text(), nullable=True),
        sa.Column("EndedAt", sa.DateTime(), nullable=True),
        sa.Column("EndCause", sa.String(length=32), nullable=True),
        sa.Column("Reason", sa.Text(), nullable=True),
        sa.Column("OutcomesJson", sa.Text(), nullable=True),
        sa.Column("FmuSet", sa.String(length=64), nullable=True),
        sa.Column("SimulatedSeconds", sa.Float(), nullable=True),
        sa.Column("WallSeconds", sa.Float(), nullable=True),
    ]


def upgrade() -> None:
    for column in _columns():
        op.add_column("PipelineRuns", column)
    op.create_index("ix_PipelineRuns_FmuSet", "PipelineRuns", ["FmuSet"])


def downgrade() -> None:
    # In place (ALTER TABLE ... DROP COLUMN), not by rebuilding the table.
    op.drop_index("ix_PipelineRuns_FmuSet", table_name="PipelineRuns")
    for column in reversed(_columns()):
        op.drop_column("PipelineRuns", column.name)
