"""What a bench reports about a scheduled run, recorded in one place whichever bench ran it.

:func:`run_started` (the request becomes Running with its first run), :func:`set_state` (a
compare-and-set move of the lifecycle) and :func:`run_ended` (the run's end, its outcomes in the
request's ``TestMetricsJson``, and the request's status when this run decides it). They take plain
data in the caller's transaction: the virtual bench calls them from its durable workflow's steps,
the physical bench gateway from its MQTT handlers, and neither imports the pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fastlims.db import locks
from fastlims.requests import service as requests
from fastlims.requests.states import TERMINAL, Status
from fastlims.runs import lifecycle
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import ScheduledRun
from fastlims.timeutil import utcnow

#: How a run can end, as a bench reports it.
END_STATUSES = ("completed", "failed", "cancelled")


def _run(session: Session, run_id: str) -> ScheduledRun:
    run = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == run_id))
    if run is None:
        raise LookupError(f"no scheduled run has run_id {run_id!r}")
    return run


def run_started(*, session: Session, run_id: str, at: datetime | None = None, actor: str = "bench") -> ScheduledRun:
    """A bench started a dispatched run: record it, and move the request from ScheduleReady to
    Running with its first run (later runs leave it Running)."""
    run = _run(session, run_id)
    if run.started_at is None:
        current = lifecycle.state_of(run.state)
        if current is RunState.scheduled:
            # The bench's start can come before dispatch's own record of the hand-over (the bench
            # queue and the runs table are two databases): the run was dispatched, then started.
            current = lifecycle.check(current, RunState.dispatched)
        run.state = lifecycle.check(current, RunState.running).value
        run.started_at = at or utcnow()
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


def set_state(*, session: Session, run_id: str, target: RunState) -> bool:
    """Move the run to ``target`` when the lifecycle allows it from the run's state now (a
    compare-and-set: a run that ended meanwhile stays as it ended). True when it moved."""
    result = session.execute(
        update(ScheduledRun)
        .where(ScheduledRun.run_id == run_id, ScheduledRun.state.in_(sorted(lifecycle.sources_of(target))))
        .values(state=target.value)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as any bench reports it.

    ``status``: completed, failed or cancelled; ``end_cause``: in the runs API's words
    (``procedure_complete``, ``timeout``, ``error``, ...); ``outcomes``: the procedure's outcomes
    (``OutcomesJson``); ``results``: the storage key of the run's results file;
    ``simulated_s``/``wall_s``: the run's own time and the wall time it took.
    """

    status: str
    end_cause: str | None = None
    reason: str | None = None
    outcomes: Mapping[str, Any] = field(default_factory=dict)
    results: str | None = None
    simulated_s: float | None = None
    wall_s: float | None = None

    def __post_init__(self) -> None:
        if self.status not in END_STATUSES:
            raise ValueError(f"a run ends {', '.join(END_STATUSES)}, not {self.status!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RunOutcome:
        """From a bench's outcome document (other keys, such as sample counts, are ignored)."""
        return cls(
            status=str(data.get("status")),
            end_cause=data.get("end_cause") or None,
            reason=data.get("reason") or None,
            outcomes=data.get("outcomes") or {},
            results=data.get("results"),
            simulated_s=data.get("simulated_s"),
            wall_s=data.get("wall_s"),
        )

    @property
    def state(self) -> RunState:
        return RunState(self.status)


def run_ended(
    session: Session,
    *,
    run_id: str,
    test_uuid: str,
    outcome: RunOutcome | Mapping[str, Any],
    actor: str,
    results_folder: str,
    summary: Mapping[str, Any] | None = None,
    fmu_set: str | None = None,
) -> str:
    """Record the end of a run and return the request's status name afterwards.

    The run's row: state, end time, end cause (``cancelled`` for a cancelled run), reason,
    outcomes, the FMU set it ran (virtual runs) and its simulated and wall seconds. The request:
    ``summary`` (the run's summary document without its per-step and per-cycle detail) with the
    run's status, reason and results key under the run id in ``TestMetricsJson``, and
    ``SimulationResultsPath`` the parent of ``results_folder``; then, once every run of the request
    has ended, SimulationComplete → Completed when at least one completed (the reason names each
    failed run and why), Failed when none did (:func:`_decide_request`).

    One writer per request at a time (the lock ``run-record:<test_UUID>``, taken before anything
    is read), so that two runs ending together both land in ``TestMetricsJson``; ``test_uuid`` is
    the request the reporter says the run belongs to, and a run of another request is refused
    (``ValueError``). Recording the same end again (a step
    replayed after a crash) rewrites it; any other move the lifecycle forbids raises
    :class:`~fastlims.runs.lifecycle.IllegalRunTransition`.
    """
    end = outcome if isinstance(outcome, RunOutcome) else RunOutcome.from_mapping(outcome)
    target = end.state
    locks.hold(session, f"run-record:{test_uuid.lower()}")  # one writer of this request's metrics at a time
    run = _run(session, run_id)
    uuid = run.test_uuid
    if uuid.lower() != test_uuid.lower():
        raise ValueError(f"run {run_id!r} belongs to test request {uuid}, not {test_uuid}")
    if run.state != target.value:
        lifecycle.check(run.state, target)
    run.state = target.value
    run.ended_at = utcnow()
    run.end_cause = end.end_cause if target is not RunState.cancelled else "cancelled"
    run.reason = end.reason or None
    run.outcomes_json = json.dumps(dict(end.outcomes), allow_nan=False, default=str)
    run.fmu_set = fmu_set
    run.simulated_seconds = end.simulated_s
    run.wall_seconds = end.wall_s
    session.flush()

    request = requests.get_by_uuid(session=session, test_uuid=uuid)
    metrics = json.loads(request.test_metrics_json) if request.test_metrics_json else {}
    if not isinstance(metrics, dict):
        metrics = {"previous": metrics}
    metrics[run_id] = {**(summary or {}), "status": end.status, "reason": end.reason or None, "results": end.results}
    request.test_metrics_json = json.dumps(metrics, allow_nan=False, default=str)
    request.simulation_results_path = f"{results_folder.rstrip('/').rsplit('/', 1)[0]}/"
    current = Status(request.status)
    if current not in TERMINAL:
        _decide_request(session, request, current, actor)
    return Status(request.status).name


def _decide_request(session: Session, request: Any, current: Status, actor: str) -> None:
    """Once every run of the request has ended: Completed when at least one run completed (the
    reason names each failed run and why), Failed when none did. Until then the request stays
    where it is: one failed run of a design does not stop the others.

    A twin run (``TwinOf``: the Digital Twin's prediction of a physical run, :mod:`.twins`) must
    end too, but it is not a measurement: a completed twin alone does not complete the request,
    and a failed twin is named in the reason without failing it."""
    rows = session.execute(
        select(ScheduledRun.run_id, ScheduledRun.state, ScheduledRun.reason, ScheduledRun.twin_of)
        .where(ScheduledRun.test_uuid == request.test_uuid)
        .order_by(ScheduledRun.run_id)
    ).all()
    if not rows or any(state not in END_STATUSES for _run, state, _reason, _twin in rows):
        return
    failed = [(run, reason) for run, state, reason, _twin in rows if state == RunState.failed.value]
    completed = [run for run, state, _reason, twin in rows if state == RunState.completed.value and twin is None]
    said = "; ".join(f"run {run} failed: {reason or 'no reason given'}" for run, reason in failed)
    measured = [run for run, _state, _reason, twin in rows if twin is None]
    twins_done = [run for run, state, _reason, twin in rows if state == RunState.completed.value and twin is not None]
    if not completed:
        if failed:
            if twins_done:
                said += f"; twin run(s) {', '.join(twins_done)} completed, but a prediction is not a measurement"
            elif len(failed) != len(rows):
                said += "; the other runs were cancelled"
            requests.change_status(
                session=session, request=request, target=Status.Failed, actor=actor, expected=current,
                reason=said[:4000],
            )  # fmt: skip
        return
    if current is not Status.Running:
        return
    request.simulation_progress = 100
    summary = f"{len(completed)} of {len(measured)} run(s) completed"
    if twins_done:
        summary += f" and {len(twins_done)} twin run(s)"
    requests.change_status(
        session=session, request=request, target=Status.SimulationComplete, actor=actor,
        expected=Status.Running, reason=summary + (f"; {said}" if failed else ""),
    )  # fmt: skip
    requests.change_status(
        session=session, request=request, target=Status.Completed, actor=actor,
        expected=Status.SimulationComplete,
        reason=(f"{summary}, {len(failed)} failed ({said}); " if failed else "")
        + f"results in {request.simulation_results_path}",
    )  # fmt: skip
