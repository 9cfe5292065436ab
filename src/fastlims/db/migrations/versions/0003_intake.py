"""intake: DT partners, uploaded file versions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "DtPartners",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("Name", sa.String(length=64), nullable=False),
        sa.Column("PublicKeys", sa.Text(), nullable=False),
        sa.Column("QuotaBytes", sa.BigInteger(), nullable=True),
        sa.Column("IsActive", sa.Boolean(), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.Column("UpdatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_DtPartners")),
        sa.UniqueConstraint("Name", name=op.f("uq_DtPartners_Name")),
    )
    op.create_table(
        "IntakeUploads",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("UploadKey", sa.String(length=64), nullable=False),
        sa.Column("Path", sa.String(length=1000), nullable=False),
        sa.Column("Version", sa.String(length=200), nullable=False),
        sa.Column("Size", sa.BigInteger(), nullable=False),
        sa.Column("TestUUID", sa.String(length=36), nullable=True),
        sa.Column("Source", sa.String(length=16), nullable=False),
        sa.Column("Partner", sa.String(length=64), nullable=True),
        sa.Column("Outcome", sa.String(length=16), nullable=False),
        sa.Column("Detail", sa.Text(), nullable=True),
        sa.Column("MovedTo", sa.String(length=1000), nullable=True),
        sa.Column("ReceivedAt", sa.DateTime(), nullable=False),
        sa.Column("UpdatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_IntakeUploads")),
        sa.UniqueConstraint("UploadKey", name=op.f("uq_IntakeUploads_UploadKey")),
    )
    with op.batch_alter_table("IntakeUploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_IntakeUploads_Path"), ["Path"], unique=False)
        batch_op.create_index(batch_op.f("ix_IntakeUploads_TestUUID"), ["TestUUID"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("IntakeUploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_IntakeUploads_TestUUID"))
        batch_op.drop_index(batch_op.f("ix_IntakeUploads_Path"))

    op.drop_table("IntakeUploads")
    op.drop_table("DtPartners")
