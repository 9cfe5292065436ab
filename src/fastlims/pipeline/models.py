"""Tables of the pipeline: the executors that run workflows (heartbeats, for recovering the work
of a process that died). The scheduled runs the pipeline books and dispatches are
:mod:`fastlims.runs.models`; the lock rows that make booking benches one writer at a time are
:mod:`fastlims.db.locks`.

The workflows' own state (inputs, step outputs, status) is DBOS's, in its system database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fastlims.db.base import Base, UTCDateTime
from fastlims.timeutil import utcnow


class Executor(Base):
    """A process that runs workflows. Its heartbeat says it is alive; once it is older than
    ``FASTLIMS_PIPELINE_EXECUTOR_TIMEOUT_S`` the others resume its pending workflows."""

    __tablename__ = "PipelineExecutors"

    executor_id: Mapped[str] = mapped_column("ExecutorId", String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column("Hostname", String(200))
    pid: Mapped[int] = mapped_column("Pid", Integer)
    role: Mapped[str] = mapped_column("Role", String(16))
    application_version: Mapped[str] = mapped_column("ApplicationVersion", String(100))
    started_at: Mapped[datetime] = mapped_column("StartedAt", UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column("HeartbeatAt", UTCDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column("StoppedAt", UTCDateTime, nullable=True)
