"""bench gateway: the samples of physical runs (one row per metrics batch, unique per run and first
record index), the run events as benches report them, and each bench's last reported state

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "RunMetricBatches",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("RunId", sa.String(length=128), nullable=False),
        sa.Column("Bench", sa.String(length=100), nullable=False),
        sa.Column("FirstRecord", sa.Integer(), nullable=False),
        sa.Column("Count", sa.Integer(), nullable=False),
        sa.Column("LastTimeS", sa.Float(), nullable=False),
        sa.Column("ColumnsJson", sa.Text(), nullable=False),
        sa.Column("ReceivedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_RunMetricBatches")),
        sa.UniqueConstraint("RunId", "FirstRecord", name=op.f("uq_RunMetricBatches_RunId_FirstRecord")),
    )
    op.create_index(op.f("ix_RunMetricBatches_RunId"), "RunMetricBatches", ["RunId"])
    op.create_table(
        "RunEvents",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("RunId", sa.String(length=128), nullable=False),
        sa.Column("Bench", sa.String(length=100), nullable=False),
        sa.Column("MessageId", sa.String(length=100), nullable=False),
        sa.Column("Event", sa.String(length=32), nullable=False),
        sa.Column("TestTimeS", sa.Float(), nullable=True),
        sa.Column("DetailsJson", sa.Text(), nullable=False),
        sa.Column("ReceivedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_RunEvents")),
        sa.UniqueConstraint("RunId", "MessageId", name=op.f("uq_RunEvents_RunId_MessageId")),
    )
    op.create_index(op.f("ix_RunEvents_RunId"), "RunEvents", ["RunId"])
    op.create_table(
        "BenchStates",
        sa.Column("Bench", sa.String(length=100), nullable=False),
        sa.Column("State", sa.String(length=16), nullable=False),
        sa.Column("RunId", sa.String(length=128), nullable=True),
        sa.Column("Since", sa.DateTime(), nullable=False),
        sa.Column("CapabilitiesJson", sa.Text(), nullable=True),
        sa.Column("UpdatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Bench", name=op.f("pk_BenchStates")),
    )


def downgrade() -> None:
    op.drop_table("BenchStates")
    op.drop_index("ix_RunEvents_RunId", table_name="RunEvents")
    op.drop_table("RunEvents")
    op.drop_index("ix_RunMetricBatches_RunId", table_name="RunMetricBatches")
    op.drop_table("RunMetricBatches")
