"""``TestRequests`` (seed §6.5, every column) and the ``TestRequestEvents`` audit trail.

Columns beyond the seed carry what the seed's message and pipeline need: the request's UUID
(``TestUUID``), the bench kind, the Figure 2 ``variables``, the procedure it runs and its source,
the failure reason, the optimised start and bench from the scheduler, and ``CancelledAt``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fastlims.catalog.models import UUT, Standard, TestName, UseCase
from fastlims.db.base import Base, UTCDateTime
from fastlims.requests.states import Status
from fastlims.timeutil import utcnow


class TestRequest(Base):
    __tablename__ = "TestRequests"
    __test__ = False

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    request_number: Mapped[str] = mapped_column("RequestNumber", String(32), unique=True)
    test_uuid: Mapped[str] = mapped_column("TestUUID", String(36), unique=True)
    requester_id: Mapped[str] = mapped_column("RequesterId", String(64), index=True)
    requester_name: Mapped[str] = mapped_column("RequesterName", String(200))
    preferred_test_schedule_date: Mapped[datetime] = mapped_column("PreferredTestScheduleDate", UTCDateTime)
    uut_id: Mapped[int] = mapped_column("UUTIDId", ForeignKey("UUTIDs.Id"))
    use_case_id: Mapped[int] = mapped_column("UseCaseId", ForeignKey("UseCases.Id"))
    standard_id: Mapped[int] = mapped_column("StandardId", ForeignKey("RelevantStandards.Id"))
    test_id: Mapped[int] = mapped_column("TestId", ForeignKey("TestNames.Id"))
    test_bench: Mapped[str] = mapped_column("TestBench", String(16))
    status: Mapped[int] = mapped_column("Status", Integer, default=int(Status.Submitted), index=True)
    variables_json: Mapped[str | None] = mapped_column("VariablesJson", Text, nullable=True)
    # The procedure the request runs (fastlims-procedure/1 JSON, unresolved: its variables stay for
    # the DoE) and where it came from: default | request | profile (requests.procedures.SOURCES).
    procedure_json: Mapped[str | None] = mapped_column("ProcedureJson", Text, nullable=True)
    procedure_source: Mapped[str | None] = mapped_column("ProcedureSource", String(16), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column("FailureReason", Text, nullable=True)
    workflow_id: Mapped[str | None] = mapped_column("WorkflowId", String(200), nullable=True)
    simulation_folder: Mapped[str | None] = mapped_column("SimulationFolder", String(400), nullable=True)
    fmu_blob_path: Mapped[str | None] = mapped_column("FmuBlobPath", String(400), nullable=True)
    simulation_results_path: Mapped[str | None] = mapped_column("SimulationResultsPath", String(400), nullable=True)
    simulation_progress: Mapped[int] = mapped_column("SimulationProgress", Integer, default=0)
    test_metrics_json: Mapped[str | None] = mapped_column("TestMetricsJson", Text, nullable=True)
    optimised_start_at: Mapped[datetime | None] = mapped_column("OptimisedStartAt", UTCDateTime, nullable=True)
    assigned_bench: Mapped[str | None] = mapped_column("AssignedBench", String(100), nullable=True)
    # The Digital Twin hand-shake (messaging): when the request went out, how often, when it was accepted.
    model_requested_at: Mapped[datetime | None] = mapped_column("ModelRequestedAt", UTCDateTime, nullable=True)
    dt_request_attempts: Mapped[int] = mapped_column("DtRequestAttempts", Integer, default=0, server_default="0")
    dt_accepted_at: Mapped[datetime | None] = mapped_column("DtAcceptedAt", UTCDateTime, nullable=True)
    # The one Digital Twin partner whose acks and uploads count (requests.routing): set from the
    # routing table when the request goes out, else by the first partner to accept.
    dt_partner: Mapped[str | None] = mapped_column("DtPartner", String(64), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("UpdatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)
    fmu_ready_at: Mapped[datetime | None] = mapped_column("FmuReadyAt", UTCDateTime, nullable=True)
    doe_complete_at: Mapped[datetime | None] = mapped_column("DoeCompleteAt", UTCDateTime, nullable=True)
    schedule_ready_at: Mapped[datetime | None] = mapped_column("ScheduleReadyAt", UTCDateTime, nullable=True)
    simulation_started_at: Mapped[datetime | None] = mapped_column("SimulationStartedAt", UTCDateTime, nullable=True)
    simulation_complete_at: Mapped[datetime | None] = mapped_column("SimulationCompleteAt", UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column("CompletedAt", UTCDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column("FailedAt", UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column("CancelledAt", UTCDateTime, nullable=True)

    uut: Mapped[UUT] = relationship(lazy="joined")
    use_case: Mapped[UseCase] = relationship(lazy="joined")
    standard: Mapped[Standard] = relationship(lazy="joined")
    test: Mapped[TestName] = relationship(lazy="joined")
    events: Mapped[list[TestRequestEvent]] = relationship(
        back_populates="request", order_by="TestRequestEvent.id", cascade="all, delete-orphan"
    )

    @property
    def status_enum(self) -> Status:
        return Status(self.status)


class TestRequestEvent(Base):
    """Audit trail: every status change and edit, with who, when, from, to and why."""

    __tablename__ = "TestRequestEvents"
    __test__ = False

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        "TestRequestId", ForeignKey("TestRequests.Id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column("Kind", String(32))  # created | status | edit
    actor: Mapped[str] = mapped_column("Actor", String(64))
    at: Mapped[datetime] = mapped_column("At", UTCDateTime, default=utcnow)
    from_value: Mapped[str | None] = mapped_column("FromValue", Text, nullable=True)
    to_value: Mapped[str | None] = mapped_column("ToValue", Text, nullable=True)
    field: Mapped[str | None] = mapped_column("Field", String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column("Reason", Text, nullable=True)

    request: Mapped[TestRequest] = relationship(back_populates="events")


class PartnerRoute(Base):
    """Which Digital Twin partner serves the requests of a test name or of a UUT
    (``fastlims partners route``); a UUT's route wins over its test's."""

    __tablename__ = "PartnerRoutes"
    __table_args__ = (UniqueConstraint("Kind", "Value"),)

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    kind: Mapped[str] = mapped_column("Kind", String(8))  # test | uut
    value: Mapped[str] = mapped_column("Value", String(200))  # the test name or the UUT code
    partner: Mapped[str] = mapped_column("Partner", String(64), index=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
