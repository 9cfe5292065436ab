"""partner isolation: each request's one Digital Twin partner, the partner routing table, and the
partner a model_uploader account uploads for

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

``TestRequests.DtPartner`` is the partner whose acks and uploads count for the request (set from
``PartnerRoutes`` when the request goes out, else by the first partner to accept); requests made
before this revision have none and take the first partner to accept. ``PartnerRoutes`` maps a
test name or a UUT code to a partner. ``Users.Partner`` binds a ``model_uploader`` to a partner.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("TestRequests", sa.Column("DtPartner", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_TestRequests_DtPartner"), "TestRequests", ["DtPartner"])
    op.add_column("Users", sa.Column("Partner", sa.String(length=64), nullable=True))
    op.create_table(
        "PartnerRoutes",
        sa.Column("Id", sa.Integer(), nullable=False),
        sa.Column("Kind", sa.String(length=8), nullable=False),
        sa.Column("Value", sa.String(length=200), nullable=False),
        sa.Column("Partner", sa.String(length=64), nullable=False),
        sa.Column("CreatedAt", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("Id", name=op.f("pk_PartnerRoutes")),
        sa.UniqueConstraint("Kind", "Value", name=op.f("uq_PartnerRoutes_Kind_Value")),
    )
    op.create_index(op.f("ix_PartnerRoutes_Partner"), "PartnerRoutes", ["Partner"])


def downgrade() -> None:
    op.drop_index("ix_PartnerRoutes_Partner", table_name="PartnerRoutes")
    op.drop_table("PartnerRoutes")
    op.drop_column("Users", "Partner")
    op.drop_index("ix_TestRequests_DtPartner", table_name="TestRequests")
    op.drop_column("TestRequests", "DtPartner")
