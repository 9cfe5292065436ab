"""catalog, test requests, audit trail, users

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "RelevantStandards",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("Code", sa.String(length=64), nullable=False),
        sa.Column("Name", sa.String(length=400), nullable=False),
        sa.Column("Description", sa.Text(), nullable=False),
        sa.Column("IsActive", sa.Boolean(), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_RelevantStandards")),
        sa.UniqueConstraint("Code", name=op.f("uq_RelevantStandards_Code")),
    )
    op.create_table(
        "TestNames",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("Code", sa.String(length=64), nullable=False),
        sa.Column("Name", sa.String(length=200), nullable=False),
        sa.Column("Description", sa.Text(), nullable=False),
        sa.Column("Category", sa.String(length=64), nullable=False),
        sa.Column(
            "BenchKind",
            sa.Enum("virtual", "physical", "both", name="benchkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("NominalDurationMinutes", sa.Integer(), nullable=False),
        sa.Column("SetupMinutes", sa.Integer(), nullable=False),
        sa.Column("TeardownMinutes", sa.Integer(), nullable=False),
        sa.Column("PausableOverClosedHours", sa.Boolean(), nullable=False),
        sa.Column("DoeSpecJson", sa.Text(), nullable=True),
        sa.Column("IsActive", sa.Boolean(), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_TestNames")),
        sa.UniqueConstraint("Code", name=op.f("uq_TestNames_Code")),
    )
    op.create_table(
        "UUTIDs",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("Code", sa.String(length=64), nullable=False),
        sa.Column("Description", sa.String(length=400), nullable=False),
        sa.Column("IsActive", sa.Boolean(), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_UUTIDs")),
        sa.UniqueConstraint("Code", name=op.f("uq_UUTIDs_Code")),
    )
    op.create_table(
        "UseCases",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("Name", sa.String(length=64), nullable=False),
        sa.Column("Description", sa.String(length=400), nullable=False),
        sa.Column("IsActive", sa.Boolean(), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_UseCases")),
        sa.UniqueConstraint("Name", name=op.f("uq_UseCases_Name")),
    )
    op.create_table(
        "Users",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("Username", sa.String(length=64), nullable=False),
        sa.Column("DisplayName", sa.String(length=200), nullable=False),
        sa.Column(
            "Role",
            sa.Enum("requester", "lab_manager", "admin", name="role", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("PasswordHash", sa.String(length=200), nullable=False),
        sa.Column("IsActive", sa.Boolean(), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_Users")),
        sa.UniqueConstraint("Username", name=op.f("uq_Users_Username")),
    )
    op.create_table(
        "ApiTokens",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("UserId", sa.Integer(), nullable=False),
        sa.Column("Name", sa.String(length=100), nullable=False),
        sa.Column("Prefix", sa.String(length=16), nullable=False),
        sa.Column("TokenHash", sa.String(length=64), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.Column("LastUsedAt", sa.DateTime(), nullable=True),
        sa.Column("RevokedAt", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["UserId"], ["Users.Id"], name=op.f("fk_ApiTokens_UserId_Users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_ApiTokens")),
        sa.UniqueConstraint("TokenHash", name=op.f("uq_ApiTokens_TokenHash")),
    )
    with op.batch_alter_table("ApiTokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ApiTokens_UserId"), ["UserId"], unique=False)

    op.create_table(
        "TestNameApplicability",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("TestId", sa.Integer(), nullable=False),
        sa.Column("StandardId", sa.Integer(), nullable=False),
        sa.Column("UseCaseId", sa.Integer(), nullable=False),
        sa.Column("UUTIDId", sa.Integer(), nullable=False),
        sa.Column("IsApplicable", sa.Boolean(), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["StandardId"],
            ["RelevantStandards.Id"],
            name=op.f("fk_TestNameApplicability_StandardId_RelevantStandards"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["TestId"],
            ["TestNames.Id"],
            name=op.f("fk_TestNameApplicability_TestId_TestNames"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["UUTIDId"],
            ["UUTIDs.Id"],
            name=op.f("fk_TestNameApplicability_UUTIDId_UUTIDs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["UseCaseId"],
            ["UseCases.Id"],
            name=op.f("fk_TestNameApplicability_UseCaseId_UseCases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_TestNameApplicability")),
        sa.UniqueConstraint(
            "TestId",
            "StandardId",
            "UseCaseId",
            "UUTIDId",
            name=op.f("uq_TestNameApplicability_TestId_StandardId_UseCaseId_UUTIDId"),
        ),
    )
    with op.batch_alter_table("TestNameApplicability", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_TestNameApplicability_TestId"), ["TestId"], unique=False)

    op.create_table(
        "TestRequests",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("RequestNumber", sa.String(length=32), nullable=False),
        sa.Column("TestUUID", sa.String(length=36), nullable=False),
        sa.Column("RequesterId", sa.String(length=64), nullable=False),
        sa.Column("RequesterName", sa.String(length=200), nullable=False),
        sa.Column("PreferredTestScheduleDate", sa.DateTime(), nullable=False),
        sa.Column("UUTIDId", sa.Integer(), nullable=False),
        sa.Column("UseCaseId", sa.Integer(), nullable=False),
        sa.Column("StandardId", sa.Integer(), nullable=False),
        sa.Column("TestId", sa.Integer(), nullable=False),
        sa.Column("TestBench", sa.String(length=16), nullable=False),
        sa.Column("Status", sa.Integer(), nullable=False),
        sa.Column("VariablesJson", sa.Text(), nullable=True),
        sa.Column("FailureReason", sa.Text(), nullable=True),
        sa.Column("WorkflowId", sa.String(length=200), nullable=True),
        sa.Column("SimulationFolder", sa.String(length=400), nullable=True),
        sa.Column("FmuBlobPath", sa.String(length=400), nullable=True),
        sa.Column("SimulationResultsPath", sa.String(length=400), nullable=True),
        sa.Column("SimulationProgress", sa.Integer(), nullable=False),
        sa.Column("TestMetricsJson", sa.Text(), nullable=True),
        sa.Column("OptimisedStartAt", sa.DateTime(), nullable=True),
        sa.Column("AssignedBench", sa.String(length=100), nullable=True),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.Column("UpdatedAt", sa.DateTime(), nullable=False),
        sa.Column("FmuReadyAt", sa.DateTime(), nullable=True),
        sa.Column("DoeCompleteAt", sa.DateTime(), nullable=True),
        sa.Column("ScheduleReadyAt", sa.DateTime(), nullable=True),
        sa.Column("SimulationStartedAt", sa.DateTime(), nullable=True),
        sa.Column("SimulationCompleteAt", sa.DateTime(), nullable=True),
        sa.Column("CompletedAt", sa.DateTime(), nullable=True),
        sa.Column("FailedAt", sa.DateTime(), nullable=True),
        sa.Column("CancelledAt", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["StandardId"],
            ["RelevantStandards.Id"],
            name=op.f("fk_TestRequests_StandardId_RelevantStandards"),
        ),
        sa.ForeignKeyConstraint(["TestId"], ["TestNames.Id"], name=op.f("fk_TestRequests_TestId_TestNames")),
        sa.ForeignKeyConstraint(["UUTIDId"], ["UUTIDs.Id"], name=op.f("fk_TestRequests_UUTIDId_UUTIDs")),
        sa.ForeignKeyConstraint(["UseCaseId"], ["UseCases.Id"], name=op.f("fk_TestRequests_UseCaseId_UseCases")),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_TestRequests")),
        sa.UniqueConstraint("RequestNumber", name=op.f("uq_TestRequests_RequestNumber")),
        sa.UniqueConstraint("TestUUID", name=op.f("uq_TestRequests_TestUUID")),
    )
    with op.batch_alter_table("TestRequests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_TestRequests_RequesterId"), ["RequesterId"], unique=False)
        batch_op.create_index(batch_op.f("ix_TestRequests_Status"), ["Status"], unique=False)

    op.create_table(
        "TestRequestEvents",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("TestRequestId", sa.Integer(), nullable=False),
        sa.Column("Kind", sa.String(length=32), nullable=False),
        sa.Column("Actor", sa.String(length=64), nullable=False),
        sa.Column("At", sa.DateTime(), nullable=False),
        sa.Column("FromValue", sa.Text(), nullable=True),
        sa.Column("ToValue", sa.Text(), nullable=True),
        sa.Column("Field", sa.String(length=64), nullable=True),
        sa.Column("Reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["TestRequestId"],
            ["TestRequests.Id"],
            name=op.f("fk_TestRequestEvents_TestRequestId_TestRequests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_TestRequestEvents")),
    )
    with op.batch_alter_table("TestRequestEvents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_TestRequestEvents_TestRequestId"), ["TestRequestId"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("TestRequestEvents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_TestRequestEvents_TestRequestId"))

    op.drop_table("TestRequestEvents")
    with op.batch_alter_table("TestRequests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_TestRequests_Status"))
        batch_op.drop_index(batch_op.f("ix_TestRequests_RequesterId"))

    op.drop_table("TestRequests")
    with op.batch_alter_table("TestNameApplicability", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_TestNameApplicability_TestId"))

    op.drop_table("TestNameApplicability")
    with op.batch_alter_table("ApiTokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ApiTokens_UserId"))

    op.drop_table("ApiTokens")
    op.drop_table("Users")
    op.drop_table("UseCases")
    op.drop_table("UUTIDs")
    op.drop_table("TestNames")
    op.drop_table("RelevantStandards")
