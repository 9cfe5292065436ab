"""messaging: outbox, processed messages, MQTT users, DT hand-shake columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "MqttUsers",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("Username", sa.String(length=64), nullable=False),
        sa.Column(
            "Role",
            sa.Enum("lims", "partner", "bench", name="mqttrole", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("PasswordHash", sa.String(length=200), nullable=False),
        sa.Column("IsActive", sa.Boolean(), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_MqttUsers")),
        sa.UniqueConstraint("Username", name=op.f("uq_MqttUsers_Username")),
    )
    op.create_table(
        "OutboxMessages",
        sa.Column("Id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("MessageId", sa.String(length=36), nullable=False),
        sa.Column("Topic", sa.String(length=400), nullable=False),
        sa.Column("Payload", sa.Text(), nullable=False),
        sa.Column("Qos", sa.Integer(), nullable=False),
        sa.Column("Retain", sa.Boolean(), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.Column("SentAt", sa.DateTime(), nullable=True),
        sa.Column("Attempts", sa.Integer(), nullable=False),
        sa.Column("LastError", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_OutboxMessages")),
        sa.UniqueConstraint("MessageId", name=op.f("uq_OutboxMessages_MessageId")),
    )
    with op.batch_alter_table("OutboxMessages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_OutboxMessages_SentAt"), ["SentAt"], unique=False)

    op.create_table(
        "ProcessedMessages",
        sa.Column("MessageId", sa.String(length=100), nullable=False),
        sa.Column("Topic", sa.String(length=400), nullable=False),
        sa.Column("ReceivedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("MessageId", name=op.f("pk_ProcessedMessages")),
    )
    with op.batch_alter_table("TestRequests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ModelRequestedAt", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("DtRequestAttempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("DtAcceptedAt", sa.DateTime(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("TestRequests", schema=None) as batch_op:
        batch_op.drop_column("DtAcceptedAt")
        batch_op.drop_column("DtRequestAttempts")
        batch_op.drop_column("ModelRequestedAt")

    op.drop_table("ProcessedMessages")
    with op.batch_alter_table("OutboxMessages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_OutboxMessages_SentAt"))

    op.drop_table("OutboxMessages")
    op.drop_table("MqttUsers")
