"""requests: the procedure a request runs (ProcedureJson) and where it came from (ProcedureSource)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

``ProcedureJson`` is the procedure in the ``fastlims-procedure/1`` JSON form, unresolved (its
variables stay for the DoE); ``ProcedureSource`` is ``default`` (the test name's default),
``request`` (the requester's ``variables.test_procedures``) or ``profile`` (the requester's
role-named ``custom_profile`` run as the test). Both are nullable: requests made before this
revision have none, and whoever runs them says so. Downgrade drops the columns in place
(``ALTER TABLE ... DROP COLUMN``, SQLite 3.35+), not by rebuilding ``TestRequests``, which
``TestRequestEvents`` references ON DELETE CASCADE.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("TestRequests", sa.Column("ProcedureJson", sa.Text(), nullable=True))
    op.add_column("TestRequests", sa.Column("ProcedureSource", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("TestRequests", "ProcedureSource")
    op.drop_column("TestRequests", "ProcedureJson")
