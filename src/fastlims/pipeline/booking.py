"""The schedule step's two halves: propose a schedule for a request's runs beside every other
request's bookings, then book the benches, unless a booking made meanwhile clashes.

:func:`load` reads what both need once (:class:`BookingJob`); :func:`propose` solves against the
bookings one transaction sees and writes ``schedule-output/`` (:class:`Proposal`); :func:`book`,
in a transaction holding the booking lock (:data:`BOOKING_LOCK`), books the runs, sets the
request's optimised start and bench and moves it to ScheduleReady, or returns None on a clash.
The retry loop around them is ``steps.schedule``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.config import Settings
from fastlims.intake import files
from fastlims.pipeline import durable, plan, procedure
from fastlims.pipeline.context import ACTOR, Metadata, StepContext, read_json, request_of, still_active
from fastlims.pipeline.errors import PermanentError
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest
from fastlims.requests.states import Status
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import Channel, ScheduledRun
from fastlims.scheduling import (
    Bench,
    InfeasibleError,
    NoScheduleFoundError,
    Problem,
    Schedule,
    SolverUnavailableError,
    solve,
)
from fastlims.scheduling.export import RequestPlan, gantt_svg, request_summaries, schedule_to_json

log = logging.getLogger(__name__)

BOOKING_LOCK = "bench-bookings"
SCHEDULE_FILE = "schedule.json"
GANTT_FILE = "gantt.svg"
STEP = "schedule"


@dataclass(frozen=True)
class BookingJob:
    """What proposing and booking one request's runs need, read once when the step starts."""

    meta: Metadata
    request_id: int
    facts: plan.RequestFacts
    runs: tuple[plan.PlannedRun, ...]
    benches: tuple[Bench, ...]
    booked_s: Mapping[str, float] = dataclasses.field(default_factory=dict)  # a virtual run's compute time

    @property
    def test_uuid(self) -> str:
        return self.facts.test_uuid

    @property
    def by_id(self) -> Mapping[str, plan.PlannedRun]:
        return {r.run_id: r for r in self.runs}


@dataclass(frozen=True)
class Proposal:
    """A schedule solved against the bookings that one transaction saw after ``origin``."""

    origin: datetime
    result: Schedule
    bookings: tuple[plan.Booking, ...]
    summary: RequestPlan


def load(ctx: StepContext, meta: Metadata) -> BookingJob | Metadata:
    """The request's facts, designed runs and the benches it may use; or, when an earlier run of
    this step already booked (the request is ScheduleReady or later), that step's metadata."""
    uuid = meta["test_uuid"]
    with ctx.database.transaction() as session:
        request = request_of(session, uuid, STEP)
        status = still_active(request, STEP)
        if status >= Status.ScheduleReady:  # an earlier run of this step committed
            rows = list(session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == uuid)))
            if rows:
                return schedule_metadata(meta, rows, request, "(recorded)")
        bench_kind: plan.BenchKindName = "physical" if request.test_bench.lower() == "physical" else "virtual"
        facts = plan.RequestFacts(
            test_uuid=uuid,
            bench_kind=bench_kind,
            preferred_start=request.preferred_test_schedule_date,
            setup_minutes=request.test.setup_minutes or 0,
            teardown_minutes=request.test.teardown_minutes or 0,
            may_pause=bool(request.test.pausable),
        )
        benches = tuple(ctx.benches(session))
        request_id = request.id
        speed = measured_speed(session, meta.get("fmu_set")) if bench_kind == "virtual" else None
    try:
        runs = plan.runs_from_document(read_json(ctx.storage, meta["runs_file"], STEP))
    except ValueError as exc:
        raise PermanentError(STEP, f"{meta['runs_file']}: {exc}") from None
    booked: dict[str, float] = {}
    if bench_kind == "virtual":
        settings = ctx.settings
        rate = speed or settings.virtual_bench_speed
        for run in runs:
            booked[run.run_id] = procedure.virtual_booking_s(
                run.expected_duration_s,
                rate,
                factor=settings.virtual_bench_booking_factor,
                floor_s=settings.virtual_bench_booking_floor_s,
            )
    else:  # benches faster than real time (emulated) are booked for what they take
        facts, booked = plan.scaled_for_benches(facts, runs, plan.physical_time_scale(benches))
    return BookingJob(meta=meta, request_id=request_id, facts=facts, runs=tuple(runs), benches=benches, booked_s=booked)


SPEED_SAMPLES = 20  # the last runs of an FMU set whose speed books its next ones


def measured_speed(session: Session, fmu_set: str | None) -> float | None:
    """Simulated seconds per wall-clock second of the FMU set's last completed virtual runs
    (their median), or None before it has run."""
    if not fmu_set:
        return None
    rows = session.execute(
        select(ScheduledRun.simulated_seconds, ScheduledRun.wall_seconds)
        .where(
            ScheduledRun.fmu_set == fmu_set,
            ScheduledRun.state == RunState.completed.value,
            ScheduledRun.simulated_seconds.is_not(None),
            ScheduledRun.wall_seconds > 0,
        )
        .order_by(ScheduledRun.ended_at.desc())
        .limit(SPEED_SAMPLES)
    ).all()
    speeds = sorted(float(simulated) / float(wall) for simulated, wall in rows)
    return speeds[len(speeds) // 2] if speeds else None


def propose(ctx: StepContext, job: BookingJob, session: Session) -> Proposal:
    """Solve against the bookings visible in ``session``; write schedule-output/."""
    uuid = job.test_uuid
    now = ctx.clock()
    origin = plan.schedule_origin(now, job.facts.preferred_start, virtual=job.facts.bench_kind == "virtual")
    problem = plan.build_problem(
        job.facts, job.runs, job.benches, bookings_after(session, origin, uuid), now, booked_s=job.booked_s
    )
    try:
        result = solve_problem(problem, ctx.settings)
    except (InfeasibleError, NoScheduleFoundError, SolverUnavailableError) as exc:
        raise PermanentError(STEP, str(exc)) from None
    # The request's own runs only: the other requests' bookings are in their own folders.
    own_problem = dataclasses.replace(problem, frozen=())
    by_id = job.by_id
    own = dataclasses.replace(result, assignments=tuple(a for a in result.assignments if a.run_id in by_id))
    out = job.meta["schedule_output"]
    files.put_text(ctx.storage, out + SCHEDULE_FILE, schedule_to_json(own_problem, own))
    files.put_text(ctx.storage, out + GANTT_FILE, gantt_svg(own_problem, own))
    bookings = tuple(plan.new_bookings(problem, result))
    return Proposal(origin, result, bookings, request_summaries(problem, result)[uuid])


def book(session: Session, job: BookingJob, proposal: Proposal) -> Metadata | None:
    """In a transaction holding the booking lock: book, or None when another request took a slot."""
    uuid, meta = job.test_uuid, job.meta
    request = request_of(session, uuid, STEP)
    status = still_active(request, STEP)
    existing = list(session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == uuid)))
    if existing:  # a duplicate execution of this step booked first: keep its bookings
        return schedule_metadata(meta, existing, request, "(recorded)")
    clash = plan.conflicts(proposal.bookings, bookings_after(session, proposal.origin, uuid))
    if clash:
        log.info("bookings changed while solving; solving again", extra={"test_uuid": uuid, "clash": clash[:3]})
        return None
    by_id, kind = job.by_id, job.facts.bench_kind
    rows = [booked_run(job.request_id, uuid, meta["workflow_id"], b, by_id[b.run_id], kind) for b in proposal.bookings]
    session.add_all(rows)
    summary, result = proposal.summary, proposal.result
    request.optimised_start_at = summary.optimised_start
    request.assigned_bench = summary.bench_name
    if status is Status.DoeComplete:
        requests.change_status(
            session=session,
            request=request,
            target=Status.ScheduleReady,
            actor=ACTOR,
            expected=Status.DoeComplete,
            reason=f"{len(rows)} run(s) on {', '.join(sorted({r.bench for r in rows}))} from"
            f" {summary.optimised_start:%Y-%m-%d %H:%M} UTC ({result.solver}, {result.status})",
        )
    session.flush()
    return schedule_metadata(meta, rows, request, result.solver)


def bookings_after(session: Session, after: datetime, exclude: str | None = None) -> list[plan.Booking]:
    """Benches held by live requests' runs ending after ``after`` (but request ``exclude``'s)."""
    query = (
        select(ScheduledRun)
        .join(TestRequest, TestRequest.id == ScheduledRun.request_id)
        .where(
            ScheduledRun.end_at > after,
            TestRequest.status.not_in([int(Status.Failed), int(Status.Cancelled), int(Status.Completed)]),
            ScheduledRun.state.not_in([RunState.cancelled.value, RunState.failed.value, RunState.completed.value]),
        )
    )
    if exclude is not None:
        query = query.where(ScheduledRun.test_uuid != exclude)
    return [plan.Booking(r.run_id, r.bench, r.start_at, r.end_at) for r in session.scalars(query)]


def schedule_metadata(meta: Metadata, rows: list[ScheduledRun], request: TestRequest, solver: str) -> Metadata:
    return {
        **meta,
        "schedule_file": meta["schedule_output"] + SCHEDULE_FILE,
        "optimised_start": request.optimised_start_at.isoformat() if request.optimised_start_at else None,
        "bench": request.assigned_bench,
        "benches": sorted({r.bench for r in rows}),
        "scheduled_runs": len(rows),
        "solver": solver,
    }


def solve_problem(problem: Problem, settings: Settings) -> Schedule:
    """Greedy first (milliseconds, with a proven lower bound); the configured solver only when
    the greedy schedule is not provably within ``FASTLIMS_PIPELINE_SOLVER_GAP`` of optimal.
    CP-SAT otherwise spends its whole time limit failing to close the last fraction of a
    per cent that the weak lateness bounds leave open (see FASTLIMS_PIPELINE_SOLVER_GAP in
    docs/scheduling.md)."""
    greedy = solve(problem, "greedy", settings.pipeline_solver_time_limit_s)
    if settings.pipeline_solver == "greedy" or greedy.gap <= settings.pipeline_solver_gap:
        return greedy
    return solve(problem, settings.pipeline_solver, settings.pipeline_solver_time_limit_s)  # type: ignore[arg-type]


def booked_run(
    request_id: int, uuid: str, workflow: str, booking: plan.Booking, run: plan.PlannedRun, kind: str
) -> ScheduledRun:
    return ScheduledRun(
        run_id=booking.run_id,
        request_id=request_id,
        test_uuid=uuid,
        workflow_id=workflow,
        design_run_id=run.design_run_id,
        bench=booking.bench,
        bench_kind=kind,
        start_at=booking.start,
        end_at=booking.end,
        test_start_at=booking.test_start or booking.start,
        parameters_json=json.dumps(dict(run.parameters)),
        values_json=json.dumps(dict(run.values)),
        procedure_key=run.procedure,
        idempotency_key=durable.idempotency_key(workflow, booking.run_id),
        channel=Channel.queue.value if kind == "virtual" else Channel.mqtt.value,
        state=RunState.scheduled.value,
    )
