"""Catalog tables with the seed's §6.5 names (``UUTIDs``, ``UseCases``, ``RelevantStandards``,
``TestNames``, ``TestNameApplicability``).

The seed's copy errors are fixed: ``TestNames`` has its own columns (plus what scheduling needs)
and ``IsApplicable`` is a bit, not a foreign key.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fastlims.db.base import Base, UTCDateTime, enum_column
from fastlims.timeutil import utcnow


class BenchKind(enum.StrEnum):
    """Which kind of bench a test can run on."""

    virtual = "virtual"
    physical = "physical"
    both = "both"

    def allows(self, bench: str) -> bool:
        """``bench`` is the request's ``Virtual``/``Physical`` (seed Figure 2 spelling)."""
        return self is BenchKind.both or self.value == bench.lower()


class UutFormat(enum.StrEnum):
    """How a UUT is built: one cell, cells in a module, or modules in a pack."""

    cell = "cell"
    module = "module"
    pack = "pack"


class UUT(Base):
    """A unit under test and its ratings (what procedures and safety limits are derived from).

    The ratings are nullable: a UUT added without them can still be requested, but no procedure
    resolves for it until the lab manager imports them (``catalog.service.uut_ratings`` says
    which are missing). Currents are magnitudes; temperatures are in degC.
    """

    __tablename__ = "UUTIDs"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    code: Mapped[str] = mapped_column("Code", String(64), unique=True)
    description: Mapped[str] = mapped_column("Description", String(400), default="")
    is_active: Mapped[bool] = mapped_column("IsActive", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
    chemistry: Mapped[str | None] = mapped_column("Chemistry", String(64), nullable=True)
    format: Mapped[UutFormat | None] = mapped_column("Format", enum_column(UutFormat), nullable=True)
    series_count: Mapped[int | None] = mapped_column("SeriesCount", Integer, nullable=True)
    parallel_count: Mapped[int | None] = mapped_column("ParallelCount", Integer, nullable=True)
    nominal_capacity_Ah: Mapped[float | None] = mapped_column("NominalCapacityAh", Float, nullable=True)
    nominal_voltage_V: Mapped[float | None] = mapped_column("NominalVoltageV", Float, nullable=True)
    min_voltage_V: Mapped[float | None] = mapped_column("MinVoltageV", Float, nullable=True)
    max_voltage_V: Mapped[float | None] = mapped_column("MaxVoltageV", Float, nullable=True)
    max_charge_current_A: Mapped[float | None] = mapped_column("MaxChargeCurrentA", Float, nullable=True)
    max_discharge_current_A: Mapped[float | None] = mapped_column("MaxDischargeCurrentA", Float, nullable=True)
    max_pulse_current_A: Mapped[float | None] = mapped_column("MaxPulseCurrentA", Float, nullable=True)
    min_temperature_C: Mapped[float | None] = mapped_column("MinTemperatureC", Float, nullable=True)
    max_temperature_C: Mapped[float | None] = mapped_column("MaxTemperatureC", Float, nullable=True)


class UseCase(Base):
    __tablename__ = "UseCases"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    name: Mapped[str] = mapped_column("Name", String(64), unique=True)
    description: Mapped[str] = mapped_column("Description", String(400), default="")
    is_active: Mapped[bool] = mapped_column("IsActive", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)


class Standard(Base):
    __tablename__ = "RelevantStandards"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    code: Mapped[str] = mapped_column("Code", String(64), unique=True)
    name: Mapped[str] = mapped_column("Name", String(400))
    description: Mapped[str] = mapped_column("Description", Text, default="")
    is_active: Mapped[bool] = mapped_column("IsActive", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)


class TestName(Base):
    __tablename__ = "TestNames"
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    code: Mapped[str] = mapped_column("Code", String(64), unique=True)
    name: Mapped[str] = mapped_column("Name", String(200))
    description: Mapped[str] = mapped_column("Description", Text, default="")
    category: Mapped[str] = mapped_column("Category", String(64))
    bench_kind: Mapped[BenchKind] = mapped_column("BenchKind", enum_column(BenchKind), default=BenchKind.both)
    nominal_duration_minutes: Mapped[int] = mapped_column("NominalDurationMinutes", Integer)
    setup_minutes: Mapped[int] = mapped_column("SetupMinutes", Integer, default=0)
    teardown_minutes: Mapped[int] = mapped_column("TeardownMinutes", Integer, default=0)
    pausable: Mapped[bool] = mapped_column("PausableOverClosedHours", Boolean, default=False)
    doe_spec_json: Mapped[str | None] = mapped_column("DoeSpecJson", Text, nullable=True)
    is_active: Mapped[bool] = mapped_column("IsActive", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)


class TestNameApplicability(Base):
    """One row per (test, standard, use case, UUT); ``IsApplicable`` may document exclusions."""

    __tablename__ = "TestNameApplicability"
    __test__ = False
    __table_args__ = (UniqueConstraint("TestId", "StandardId", "UseCaseId", "UUTIDId"),)

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    test_id: Mapped[int] = mapped_column("TestId", ForeignKey("TestNames.Id", ondelete="CASCADE"), index=True)
    standard_id: Mapped[int] = mapped_column("StandardId", ForeignKey("RelevantStandards.Id", ondelete="CASCADE"))
    use_case_id: Mapped[int] = mapped_column("UseCaseId", ForeignKey("UseCases.Id", ondelete="CASCADE"))
    uut_id: Mapped[int] = mapped_column("UUTIDId", ForeignKey("UUTIDs.Id", ondelete="CASCADE"))
    is_applicable: Mapped[bool] = mapped_column("IsApplicable", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)

    test: Mapped[TestName] = relationship()
    standard: Mapped[Standard] = relationship()
    use_case: Mapped[UseCase] = relationship()
    uut: Mapped[UUT] = relationship()
