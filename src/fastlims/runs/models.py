"""The scheduled runs: one row per designed run of a request, booked on a bench by the pipeline's
schedule step, handed over by its dispatch step, and reported on by the bench that runs it (the
virtual bench today, the physical bench gateway next) through :mod:`fastlims.runs.service`.

The table keeps its name from when the pipeline owned it (``PipelineRuns``, migrations 0004 and
0008). The states a run moves through are :mod:`fastlims.runs.lifecycle`'s.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fastlims.db.base import Base, UTCDateTime
from fastlims.runs.lifecycle import RunState
from fastlims.timeutil import utcnow


class Channel(enum.StrEnum):
    queue = "queue"  # a virtual bench's DBOS queue
    mqtt = "mqtt"  # a physical bench's command topic


class ScheduledRun(Base):
    """One designed run of a request, booked on a bench over ``[StartAt, EndAt)`` (setup and
    teardown included; the test itself starts at ``TestStartAt``), and what dispatch did with it.

    ``IdempotencyKey`` (workflow id + run id) is what the bench queue and physical benches
    de-duplicate on; ``DispatchedAt`` is set in the same transaction that hands the run over.
    """

    __tablename__ = "PipelineRuns"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column("RunId", String(128), unique=True)
    request_id: Mapped[int] = mapped_column(
        "TestRequestId", ForeignKey("TestRequests.Id", ondelete="CASCADE"), index=True
    )
    test_uuid: Mapped[str] = mapped_column("TestUUID", String(36), index=True)
    workflow_id: Mapped[str] = mapped_column("WorkflowId", String(200))
    design_run_id: Mapped[str] = mapped_column("DesignRunId", String(32))
    bench: Mapped[str] = mapped_column("Bench", String(100), index=True)
    bench_kind: Mapped[str] = mapped_column("BenchKind", String(16))
    start_at: Mapped[datetime] = mapped_column("StartAt", UTCDateTime)
    end_at: Mapped[datetime] = mapped_column("EndAt", UTCDateTime, index=True)
    test_start_at: Mapped[datetime] = mapped_column("TestStartAt", UTCDateTime)
    parameters_json: Mapped[str] = mapped_column("ParametersJson", Text, default="{}")
    idempotency_key: Mapped[str] = mapped_column("IdempotencyKey", String(400), unique=True)
    channel: Mapped[str] = mapped_column("Channel", String(16))
    state: Mapped[str] = mapped_column("State", String(16), default=RunState.scheduled.value)
    dispatched_at: Mapped[datetime | None] = mapped_column("DispatchedAt", UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column("StartedAt", UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
    # What the run ran and how it ended (see migration 0007).
    procedure_key: Mapped[str | None] = mapped_column("ProcedureKey", String(1000), nullable=True)
    values_json: Mapped[str | None] = mapped_column("ValuesJson", Text, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column("EndedAt", UTCDateTime, nullable=True)
    end_cause: Mapped[str | None] = mapped_column("EndCause", String(32), nullable=True)
    reason: Mapped[str | None] = mapped_column("Reason", Text, nullable=True)
    outcomes_json: Mapped[str | None] = mapped_column("OutcomesJson", Text, nullable=True)
    fmu_set: Mapped[str | None] = mapped_column("FmuSet", String(64), nullable=True, index=True)
    simulated_seconds: Mapped[float | None] = mapped_column("SimulatedSeconds", Float, nullable=True)
    wall_seconds: Mapped[float | None] = mapped_column("WallSeconds", Float, nullable=True)
    # Hybrid runs (migration 0013): a twin run names the physical run it shadows; the physical run
    # keeps the comparison of the two once both ended (:mod:`fastlims.runs.twins`).
    twin_of: Mapped[str | None] = mapped_column("TwinOf", String(128), nullable=True, index=True)
    comparison_json: Mapped[str | None] = mapped_column("ComparisonJson", Text, nullable=True)
