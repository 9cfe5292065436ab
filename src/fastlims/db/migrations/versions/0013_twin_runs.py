"""twin runs: a physical run's twin (the same procedure and factors on a virtual bench, run on the
request's Digital Twin models) names the run it shadows, and the physical run keeps the comparison
of the two (the residual: measured − predicted voltage and temperature, per step and overall)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

``TwinOf`` is the physical run id a twin run shadows (None for every other run); ``ComparisonJson``
is set on the physical run once both it and its twin ended with results. Both nullable: runs booked
before this revision have neither.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("PipelineRuns", sa.Column("TwinOf", sa.String(length=128), nullable=True))
    op.add_column("PipelineRuns", sa.Column("ComparisonJson", sa.Text(), nullable=True))
    op.create_index("ix_PipelineRuns_TwinOf", "PipelineRuns", ["TwinOf"])


def downgrade() -> None:
    op.drop_index("ix_PipelineRuns_TwinOf", table_name="PipelineRuns")
    op.drop_column("PipelineRuns", "ComparisonJson")
    op.drop_column("PipelineRuns", "TwinOf")
