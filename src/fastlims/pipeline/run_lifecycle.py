"""What a bench reports about a scheduled run, as the pipeline's tables record it.

Today only the start: :func:`run_started`. The virtual bench worker calls it; the physical bench
gateway will too. This module and the ``ScheduledRun`` table move to the ``fastlims.runs``
capability when it exists (both bench kinds report there; neither reaches into the pipeline).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.pipeline.models import RunState, ScheduledRun
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.timeutil import utcnow


def run_started(*, session: Session, run_id: str, at: datetime | None = None, actor: str = "bench") -> ScheduledRun:
    """A bench started a dispatched run: record it, and move the request from ScheduleReady to
    Running with its first run (later runs leave it Running)."""
    run = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == run_id))
    if run is None:
        raise LookupError(f"no scheduled run has run_id {run_id!r}")
    if run.started_at is None:
        run.started_at = at or utcnow()
        run.state = RunState.running.value
    request = requests.get_by_uuid(session=session, test_uuid=run.test_uuid)
    if Status(request.status) is Status.ScheduleReady:
        requests.change_status(
            session=session,
            request=request,
            target=Status.Running,
            actor=actor,
            expected=Status.ScheduleReady,
            reason=f"run {run_id} started on {run.bench}",
        )
    return run
