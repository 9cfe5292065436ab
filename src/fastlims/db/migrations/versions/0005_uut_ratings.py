"""UUT ratings: chemistry, format, series/parallel counts, voltage, current and temperature limits

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

The columns are nullable (a UUT may exist before its ratings are known). The six seed UUTs get
the same representative values as ``catalog/seed_catalog.yaml`` when they exist; other rows stay
empty. Downgrade drops the columns in place (``ALTER TABLE ... DROP COLUMN``, SQLite 3.35+), not
by rebuilding ``UUTIDs``: a rebuild would drop the table that ``TestNameApplicability`` (ON DELETE
CASCADE) and ``TestRequests`` reference, with foreign keys on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns() -> list[sa.Column[object]]:
    """Fresh Column objects each call (a Column belongs to one table once added)."""
    return [
        sa.Column("Chemistry", sa.String(length=64), nullable=True),
        sa.Column(
            "Format", sa.Enum("cell", "module", "pack", name="uutformat", native_enum=False, length=16), nullable=True
        ),
        sa.Column("SeriesCount", sa.Integer(), nullable=True),
        sa.Column("ParallelCount", sa.Integer(), nullable=True),
        sa.Column("NominalCapacityAh", sa.Float(), nullable=True),
        sa.Column("NominalVoltageV", sa.Float(), nullable=True),
        sa.Column("MinVoltageV", sa.Float(), nullable=True),
        sa.Column("MaxVoltageV", sa.Float(), nullable=True),
        sa.Column("MaxChargeCurrentA", sa.Float(), nullable=True),
        sa.Column("MaxDischargeCurrentA", sa.Float(), nullable=True),
        sa.Column("MaxPulseCurrentA", sa.Float(), nullable=True),
        sa.Column("MinTemperatureC", sa.Float(), nullable=True),
        sa.Column("MaxTemperatureC", sa.Float(), nullable=True),
    ]


_GEN3B = "NMC811/graphite (liquid electrolyte)"
_GEN4 = "NMC811/Li-metal (oxide-polymer solid electrolyte)"
# Code: (Chemistry, Format, SeriesCount, ParallelCount, NominalCapacityAh, NominalVoltageV, MinVoltageV,
#        MaxVoltageV, MaxChargeCurrentA, MaxDischargeCurrentA, MaxPulseCurrentA, MinTemperatureC, MaxTemperatureC)
# Frozen copy of the seed catalog's values at this revision (a migration must not read the live file).
SEED_RATINGS: dict[str, tuple[object, ...]] = {
    "Gen3b - Cell": (_GEN3B, "cell", 1, 1, 5.0, 3.65, 2.5, 4.2, 5.0, 15.0, 30.0, -20.0, 60.0),
    "Gen3b - Module": (_GEN3B, "module", 12, 4, 20.0, 43.8, 30.0, 50.4, 20.0, 60.0, 120.0, -20.0, 60.0),
    "Gen3b - Pack": (_GEN3B, "pack", 96, 4, 20.0, 350.4, 240.0, 403.2, 20.0, 60.0, 120.0, -20.0, 55.0),
    "Gen4 - Cell": (_GEN4, "cell", 1, 1, 10.0, 3.7, 3.0, 4.3, 5.0, 10.0, 20.0, 0.0, 55.0),
    "Gen4 - Module": (_GEN4, "module", 10, 3, 30.0, 37.0, 30.0, 43.0, 15.0, 30.0, 60.0, 0.0, 55.0),
    "Gen4 - Pack": (_GEN4, "pack", 100, 3, 30.0, 370.0, 300.0, 430.0, 15.0, 30.0, 60.0, 0.0, 50.0),
}


def upgrade() -> None:
    # add_column needs no table rebuild on SQLite either.
    with op.batch_alter_table("UUTIDs", schema=None) as batch_op:
        for column in _columns():
            batch_op.add_column(column)
    uuts = sa.table("UUTIDs", sa.column("Code", sa.String()), *(sa.column(c.name, c.type) for c in _columns()))
    names = [c.name for c in _columns()]
    for code, values in SEED_RATINGS.items():
        op.execute(uuts.update().where(uuts.c.Code == code).values(dict(zip(names, values, strict=True))))


def downgrade() -> None:
    for column in reversed(_columns()):
        op.drop_column("UUTIDs", column.name)
