"""The seed's three activities plus dispatch, as plain functions: ``step(context, metadata) ->
metadata``. The workflow (:mod:`.workflow`) runs each as a DBOS step; tests call them directly.

Metadata in and out is small JSON (ids, storage keys, counts, flags: under 10 KB, checked);
files stay in storage (the seed's payload exchange). Every step may run again after a crash
(DBOS re-runs a step that did not record its result), so every effect is idempotent: files are
written whole under fixed names (:mod:`fastlims.intake.files`), status moves say which state
they expect, bookings and dispatches are rows with unique keys, and a virtual run's queue entry
has the run's idempotency key as its workflow id.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fastlims.config import Settings
from fastlims.db import locks
from fastlims.db.engine import Database
from fastlims.doe import DoeError, design, design_to_json, expected_duration_s, resolve_factors
from fastlims.intake import files, layout
from fastlims.intake.service import Intake
from fastlims.intake.storage import BlobStorage
from fastlims.messaging import outbox
from fastlims.messaging.schemas import BenchCommand, seed_time
from fastlims.pipeline import durable, plan
from fastlims.pipeline.errors import PermanentError, Stopped, TransientError
from fastlims.pipeline.models import Channel, RunState, ScheduledRun
from fastlims.pipeline.pause import PausePoints
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest
from fastlims.requests.states import TERMINAL, IllegalTransition, Status
from fastlims.scheduling import Bench, InfeasibleError, NoScheduleFoundError, SolverUnavailableError, solve
from fastlims.scheduling.export import gantt_svg, request_summaries, schedule_to_json
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)

ACTOR = "pipeline"
BOOKING_LOCK = "bench-bookings"
OPTIMISTIC_ATTEMPTS = 4  # then the schedule is solved holding the booking lock: progress is certain
METADATA_LIMIT = 10 * 1024

DOE_INPUT_FILE = "doe_input.json"
DESIGN_FILE = "design.json"
RUNS_FILE = "runs.json"
RUNS_CSV = "runs.csv"
SCHEDULE_FILE = "schedule.json"
GANTT_FILE = "gantt.svg"
FAILURE_FILE = "pipeline-failure.json"

Metadata = dict[str, Any]


@dataclass(frozen=True)
class VirtualRun:
    """One run for a virtual bench's queue: ``key`` is its idempotency key (the queued id)."""

    queue: str
    key: str
    order: dict[str, Any]
    delay_s: float


class BenchLookup(Protocol):
    def __call__(self, session: Session) -> list[Bench]:
        """The benches a schedule may use, as ``session`` sees the bench registry.

        The composition root gives the pipeline ``fastlims.benches.registry.schedulable``: the
        pipeline never imports the benches (they report back through the scheduled runs)."""


class VirtualDispatcher(Protocol):
    def enqueue_virtual(self, runs: list[VirtualRun]) -> None:
        """Queue each run for its bench, once per key however often it is called (all or none)."""


@dataclass
class StepContext:
    settings: Settings
    database: Database
    intake: Intake
    benches: BenchLookup
    dispatcher: VirtualDispatcher
    pause: PausePoints = field(default_factory=lambda: PausePoints(None, None))
    clock: Callable[[], datetime] = utcnow
    # Schedules of one process are made one at a time: each depends on the bookings of the one
    # before, so solving them side by side only wastes solves on clashes (see schedule()).
    schedule_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def storage(self) -> BlobStorage:
        return self.intake.storage


# --- helpers -----------------------------------------------------------------------------------


def _request(session: Session, test_uuid: str, step: str) -> TestRequest:
    try:
        return requests.get_by_uuid(session=session, test_uuid=test_uuid)
    except requests.NotFound:
        raise PermanentError(step, f"no test request has test_UUID {test_uuid}") from None


def _still_active(request: TestRequest, step: str) -> Status:
    status = Status(request.status)
    if status in (Status.Cancelled, Status.Failed):
        raise Stopped(step, f"request {request.request_number} is {status.name}")
    return status


def _read_json(storage: BlobStorage, key: str, step: str) -> Any:
    try:
        return files.get_json(storage, key)
    except FileNotFoundError:
        raise PermanentError(step, f"{key} is missing from storage") from None
    except ValueError as exc:
        raise PermanentError(step, f"{key} is not valid JSON: {exc}") from None


def check_metadata(step: str, metadata: Metadata) -> Metadata:
    size = len(json.dumps(metadata))
    if size > METADATA_LIMIT:
        raise PermanentError(step, f"metadata of {size} bytes exceeds {METADATA_LIMIT}: keep payloads in storage")
    return metadata


# --- 1. Data Processor ------------------------------------------------------------------------------


def processor(ctx: StepContext, meta: Metadata) -> Metadata:
    """The seed's Activity 1. The intake's Data Processor validates the upload set and moves it
    into the simulation folder when the set completes (exactly once, claimed in the database);
    this step makes sure it ran (running it for a set still in the pool) and records its result:
    the folder, the FMUs, the interconnection, the subfolders of the later steps."""
    uuid = meta["test_uuid"]
    ctx.pause.reached(uuid, "processor", "before")
    with ctx.database.transaction() as session:
        status = _still_active(_request(session, uuid, "processor"), "processor")
    if status in (Status.Submitted, Status.ModelRequested):
        outcome = ctx.intake.processor.consider(uuid, trigger="(pipeline)", source="pipeline")
        if outcome.outcome in ("waiting", "duplicate"):
            raise TransientError(f"upload set of {uuid} not processed yet: {outcome.detail}")
        if outcome.outcome != "accepted":
            raise Stopped("processor", f"the upload set was {outcome.outcome}: {outcome.detail}")
    with ctx.database.transaction() as session:
        request = _request(session, uuid, "processor")
        _still_active(request, "processor")
        folder = request.simulation_folder
        number = request.request_number
    if not folder:
        raise PermanentError("processor", f"request {number} has no simulation folder although its models are ready")
    intake_record = _read_json(ctx.storage, f"{folder}/{layout.INTAKE_FILE}", "processor")
    fmus = [str(k) for k in intake_record.get("fmus") or []]
    interconnection = str(intake_record.get("interconnection") or "")
    missing = [key for key in [*fmus, interconnection] if not key or ctx.storage.head(key) is None]
    if not fmus or missing:
        raise PermanentError(
            "processor", f"the accepted model files are not all in storage: missing {', '.join(missing) or 'every FMU'}"
        )
    ctx.pause.reached(uuid, "processor", "middle")
    for name in layout.SIMULATION_SUBFOLDERS:
        ctx.storage.ensure_folder(layout.subfolder(folder, name))
    ctx.pause.reached(uuid, "processor", "after")
    return check_metadata(
        "processor",
        {
            **meta,
            "request_number": number,
            "simulation_folder": folder,
            "fmu_folder": layout.fmus_folder(folder) + "/",
            "fmus": fmus,
            "interconnection": interconnection,
            "doe_input": layout.subfolder(folder, layout.DOE_INPUT) + "/",
            "doe_output": layout.subfolder(folder, layout.DOE_OUTPUT) + "/",
            "schedule_output": layout.subfolder(folder, layout.SCHEDULE_OUTPUT) + "/",
            "validation": {"files": len(intake_record.get("files") or []), "fmus": len(fmus), "valid": True},
        },
    )


# --- 2. DoE runner ----------------------------------------------------------------------------------


def _parameters(ctx: StepContext, fmus: list[str]) -> list[Any]:
    import fmpy

    found = []
    for key in fmus:
        name = posixpath.basename(key)
        with ctx.storage.materialised([key]) as local:
            try:
                description = fmpy.read_model_description(str(local[key]))
            except Exception as exc:  # noqa: BLE001 - FMPy raises many kinds for a broken FMU
                raise PermanentError("doe", f"cannot read the modelDescription.xml of {name}: {exc}") from None
        found += plan.parameters_from(description, name[: -len(layout.FMU_SUFFIX)])
    return found


def doe(ctx: StepContext, meta: Metadata) -> Metadata:
    """The seed's Activity 2: read the FMUs' parameters and the interconnection from storage,
    design the runs (the catalog's DoE section, else the default) and write ``doe-input/`` (what
    went in) and ``doe-output/`` (design.json, runs.json, runs.csv); then DoeComplete."""
    uuid = meta["test_uuid"]
    folder = meta["simulation_folder"]
    doe_input, doe_output = meta["doe_input"], meta["doe_output"]
    runs_key = doe_output + RUNS_FILE
    ctx.pause.reached(uuid, "doe", "before")
    with ctx.database.transaction() as session:
        request = _request(session, uuid, "doe")
        status = _still_active(request, "doe")
        spec_json = request.test.doe_spec_json
        nominal_s = request.test.nominal_duration_minutes * 60.0
        variables = requests.variables_of(request) or {}
        number = request.request_number
    if status > Status.ModelReady and ctx.storage.head(runs_key) is not None:
        document = _read_json(ctx.storage, runs_key, "doe")  # an earlier run of this step finished
        return check_metadata("doe", _doe_metadata(meta, document, runs_key))
    _read_json(ctx.storage, meta["interconnection"], "doe")  # the seed's DoE runner reads it too
    parameters = _parameters(ctx, meta["fmus"])
    custom_profile: dict[str, Any] = variables.get("custom_profile") or {}  # type: ignore[assignment]
    profile = custom_profile.get("values") or []
    try:
        spec = plan.doe_spec(
            json.loads(spec_json) if spec_json else None,
            ctx.settings.pipeline_default_doe,  # type: ignore[arg-type]
            ctx.settings.pipeline_default_doe_runs,
        )
        duration = expected_duration_s([p["timestamp"] for p in profile] or None, nominal_s)
    except (DoeError, ValueError) as exc:
        raise PermanentError("doe", str(exc)) from None
    files.put_json(
        ctx.storage,
        doe_input + DOE_INPUT_FILE,
        {
            "test_UUID": uuid,
            "request_number": number,
            "fmus": meta["fmus"],
            "interconnection": meta["interconnection"],
            "spec": spec.model_dump(mode="json") if spec else {"method": "nominal"},
            "spec_source": "catalog" if spec_json else f"default ({ctx.settings.pipeline_default_doe})",
            "expected_duration_s": duration,
            "parameters": [p.model_dump(mode="json") for p in parameters],
        },
    )
    ctx.pause.reached(uuid, "doe", "middle")
    notes: list[str] = []
    if spec is None:
        runs = plan.nominal_runs(uuid, duration)
        method = "nominal"
        notes.append("the test has no DoE section: one run with the FMUs' start values")
    else:
        try:
            built = design(spec, resolve_factors(parameters, spec), duration)
        except DoeError as exc:
            raise PermanentError("doe", str(exc)) from None
        files.put_text(ctx.storage, doe_output + DESIGN_FILE, design_to_json(built))
        runs = plan.runs_from_design(uuid, built)
        method = built.method
        notes += built.warnings
    document = plan.runs_document(test_uuid=uuid, request_number=number, method=method, runs=runs, notes=notes)
    files.put_text(ctx.storage, doe_output + RUNS_CSV, plan.runs_csv(runs))
    files.put_json(ctx.storage, runs_key, document)
    with ctx.database.transaction() as session:
        request = _request(session, uuid, "doe")
        if _still_active(request, "doe") is Status.ModelReady:
            requests.change_status(
                session=session,
                request=request,
                target=Status.DoeComplete,
                actor=ACTOR,
                expected=Status.ModelReady,
                reason=f"{len(runs)} run(s) designed ({method}): {runs_key}",
            )
    log.info("doe complete", extra={"test_uuid": uuid, "runs": len(runs), "method": method, "folder": folder})
    ctx.pause.reached(uuid, "doe", "after")
    return check_metadata("doe", _doe_metadata(meta, document, runs_key))


def _doe_metadata(meta: Metadata, document: dict[str, Any], runs_key: str) -> Metadata:
    designed = document["method"] != "nominal"
    return {
        **meta,
        "runs_file": runs_key,
        "design_file": meta["doe_output"] + DESIGN_FILE if designed else None,
        "method": document["method"],
        "runs": len(document["runs"]),
    }


# --- 3. Schedule runner --------------------------------------------------------------------------------


def _bookings(session: Session, *, after: datetime, exclude: str | None = None) -> list[plan.Booking]:
    """Benches held by live requests' runs ending after ``after``."""
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


def _schedule_metadata(meta: Metadata, rows: list[ScheduledRun], request: TestRequest, solver: str) -> Metadata:
    return {
        **meta,
        "schedule_file": meta["schedule_output"] + SCHEDULE_FILE,
        "optimised_start": request.optimised_start_at.isoformat() if request.optimised_start_at else None,
        "bench": request.assigned_bench,
        "benches": sorted({r.bench for r in rows}),
        "scheduled_runs": len(rows),
        "solver": solver,
    }


def schedule(ctx: StepContext, meta: Metadata) -> Metadata:
    """The seed's Activity 3: place the designed runs on benches beside every other request's
    bookings, write ``schedule-output/`` (schedule.json, gantt.svg), book the benches and set the
    request's optimised start and bench, then ScheduleReady, in one transaction."""
    uuid = meta["test_uuid"]
    out = meta["schedule_output"]
    settings = ctx.settings
    ctx.pause.reached(uuid, "schedule", "before")
    with ctx.database.transaction() as session:
        request = _request(session, uuid, "schedule")
        status = _still_active(request, "schedule")
        if status >= Status.ScheduleReady:  # an earlier run of this step committed
            rows = list(session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == uuid)))
            if rows:
                return check_metadata("schedule", _schedule_metadata(meta, rows, request, "(recorded)"))
        bench_kind: plan.BenchKindName = "physical" if request.test_bench.lower() == "physical" else "virtual"
        facts = plan.RequestFacts(
            test_uuid=uuid,
            bench_kind=bench_kind,
            preferred_start=request.preferred_test_schedule_date,
            setup_minutes=request.test.setup_minutes or 0,
            teardown_minutes=request.test.teardown_minutes or 0,
            may_pause=bool(request.test.pausable),
        )
        benches = ctx.benches(session)
        request_id = request.id
    try:
        runs = plan.runs_from_document(_read_json(ctx.storage, meta["runs_file"], "schedule"))
    except ValueError as exc:
        raise PermanentError("schedule", f"{meta['runs_file']}: {exc}") from None
    by_id = {r.run_id: r for r in runs}

    def propose(session: Session) -> tuple[datetime, Any, list[plan.Booking], Any]:
        """Solve against the bookings visible in ``session``; write schedule-output/."""
        now = ctx.clock()
        origin = plan.schedule_origin(now, facts.preferred_start)
        problem = plan.build_problem(facts, runs, benches, _bookings(session, after=origin, exclude=uuid), now)
        try:
            result = _solve(problem, settings)
        except (InfeasibleError, NoScheduleFoundError, SolverUnavailableError) as exc:
            raise PermanentError("schedule", str(exc)) from None
        # The request's own runs only: the other requests' bookings are in their own folders.
        own_problem = dataclasses.replace(problem, frozen=())
        own = dataclasses.replace(result, assignments=tuple(a for a in result.assignments if a.run_id in by_id))
        files.put_text(ctx.storage, out + SCHEDULE_FILE, schedule_to_json(own_problem, own))
        files.put_text(ctx.storage, out + GANTT_FILE, gantt_svg(own_problem, own))
        return origin, result, plan.new_bookings(problem, result), request_summaries(problem, result)[uuid]

    def book(
        session: Session, origin: datetime, result: Any, proposed: list[plan.Booking], summary: Any
    ) -> Metadata | None:
        """In a transaction holding the booking lock: book, or None when another request took a slot."""
        request = _request(session, uuid, "schedule")
        status = _still_active(request, "schedule")
        existing = list(session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == uuid)))
        if existing:  # a duplicate execution of this step booked first: keep its bookings
            return _schedule_metadata(meta, existing, request, "(recorded)")
        clash = plan.conflicts(proposed, _bookings(session, after=origin, exclude=uuid))
        if clash:
            log.info("bookings changed while solving; solving again", extra={"test_uuid": uuid, "clash": clash[:3]})
            return None
        rows = [_booked_run(request_id, uuid, meta["workflow_id"], b, by_id[b.run_id], bench_kind) for b in proposed]
        session.add_all(rows)
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
        return _schedule_metadata(meta, rows, request, result.solver)

    # Within this process schedules are made one at a time (ctx.schedule_lock). Across processes
    # they are optimistic: solve without the database lock, then book holding it only if no
    # booking made meanwhile clashes; after OPTIMISTIC_ATTEMPTS clashes, solve holding it.
    metadata: Metadata | None = None
    with ctx.schedule_lock:
        for attempt in range(1, OPTIMISTIC_ATTEMPTS + 2):
            if attempt <= OPTIMISTIC_ATTEMPTS:
                with ctx.database.transaction() as session:
                    proposal = propose(session)
                if attempt == 1 and ctx.pause.wants("schedule", "middle"):
                    ctx.schedule_lock.release()  # a test holds this step here: let the others schedule
                    try:
                        ctx.pause.reached(uuid, "schedule", "middle")
                    finally:
                        ctx.schedule_lock.acquire()
                with ctx.database.transaction() as session:
                    locks.hold(session, BOOKING_LOCK)
                    metadata = book(session, *proposal)
            else:
                with ctx.database.transaction() as session:
                    locks.hold(session, BOOKING_LOCK)
                    metadata = book(session, *propose(session))
            if metadata is not None:
                break
    assert metadata is not None, "the last attempt holds the booking lock and cannot clash"
    log.info(
        "schedule ready", extra={"test_uuid": uuid, "runs": metadata["scheduled_runs"], "solver": metadata["solver"]}
    )
    ctx.pause.reached(uuid, "schedule", "after")
    return check_metadata("schedule", metadata)


def _solve(problem: Any, settings: Settings) -> Any:
    """Greedy first (milliseconds, with a proven lower bound); the configured solver only when
    the greedy schedule is not provably within ``FASTLIMS_PIPELINE_SOLVER_GAP`` of optimal.
    CP-SAT otherwise spends its whole time limit failing to close the last fraction of a
    per cent that the weak lateness bounds leave open (see FINDINGS.md)."""
    greedy = solve(problem, "greedy", settings.pipeline_solver_time_limit_s)
    if settings.pipeline_solver == "greedy" or greedy.gap <= settings.pipeline_solver_gap:
        return greedy
    return solve(problem, settings.pipeline_solver, settings.pipeline_solver_time_limit_s)  # type: ignore[arg-type]


def _booked_run(
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
        idempotency_key=durable.idempotency_key(workflow, booking.run_id),
        channel=Channel.queue.value if kind == "virtual" else Channel.mqtt.value,
        state=RunState.scheduled.value,
    )


# --- 4. Dispatch ---------------------------------------------------------------------------------------


def run_order(row: ScheduledRun, meta: Metadata) -> dict[str, Any]:
    """What a virtual bench gets for one run (small JSON; the files stay in storage)."""
    return {
        "run_id": row.run_id,
        "design_run_id": row.design_run_id,
        "test_UUID": row.test_uuid,
        "workflow_id": row.workflow_id,
        "bench": row.bench,
        "bench_start": row.start_at.isoformat(),
        "bench_end": row.end_at.isoformat(),
        "scheduled_start": row.test_start_at.isoformat(),
        "parameters": json.loads(row.parameters_json),
        "idempotency_key": row.idempotency_key,
        "simulation_folder": meta.get("simulation_folder"),
        "fmus": meta.get("fmus"),
        "interconnection": meta.get("interconnection"),
        "results_folder": f"{meta.get('simulation_folder')}/{layout.SIMULATION_RESULTS}/{row.run_id}/",
    }


def dispatch(ctx: StepContext, meta: Metadata) -> Metadata:
    """Hand each booked run to its bench: a virtual bench's DBOS queue (released at the booked
    start), or a physical bench's MQTT command (through the outbox, in the transaction that
    marks the run dispatched). A run already marked is skipped; the queue de-duplicates on the
    idempotency key, so a run handed over before a crash is not queued twice."""
    uuid = meta["test_uuid"]
    ctx.pause.reached(uuid, "dispatch", "before")
    with ctx.database.transaction() as session:
        _still_active(_request(session, uuid, "dispatch"), "dispatch")
        rows = list(
            session.scalars(
                select(ScheduledRun)
                .where(ScheduledRun.test_uuid == uuid)
                .order_by(ScheduledRun.start_at, ScheduledRun.run_id)
            )
        )
    if not rows:
        raise PermanentError("dispatch", "the request has no booked runs")
    pending = [row for row in rows if row.dispatched_at is None]
    counts = {"dispatched": 0, "already": len(rows) - len(pending), "virtual": 0, "physical": 0}
    half = (len(pending) + 1) // 2
    for index, part in enumerate((pending[:half], pending[half:])):  # "middle" is between the halves
        if not part:
            continue
        now = ctx.clock()
        virtual = [row for row in part if row.channel == Channel.queue.value]
        if virtual:  # queued first, marked after: a crash in between queues nothing twice (same keys)
            ctx.dispatcher.enqueue_virtual(
                [
                    VirtualRun(
                        queue=durable.bench_queue(row.bench),
                        key=row.idempotency_key,
                        order=run_order(row, meta),
                        delay_s=max(0.0, (row.start_at - now).total_seconds()),
                    )
                    for row in virtual
                ]
            )
        with ctx.database.transaction() as session:
            for row in part:
                marked = _mark_dispatched(session, row.id, now)
                if row.channel == Channel.queue.value:
                    counts["virtual"] += 1
                elif marked:  # the command goes out in the transaction that marks the run, once
                    command = BenchCommand(
                        command="start",
                        run_id=row.run_id,
                        test_UUID=row.test_uuid,
                        scheduled_start=seed_time(row.test_start_at),
                        parameters=json.loads(row.parameters_json),
                        idempotency_key=row.idempotency_key,
                    )
                    outbox.enqueue(session, f"benches/{row.bench}/commands", command, qos=1)
                    counts["physical"] += 1
                counts["dispatched"] += 1
        if index == 0:
            ctx.pause.reached(uuid, "dispatch", "middle")
    ctx.pause.reached(uuid, "dispatch", "after")
    return check_metadata("dispatch", {**meta, "dispatch": counts})


def _mark_dispatched(session: Session, row_id: int, now: datetime) -> bool:
    """Compare-and-set: True for the one transaction that marks the run."""
    result = session.execute(
        update(ScheduledRun)
        .where(ScheduledRun.id == row_id, ScheduledRun.dispatched_at.is_(None))
        .values(dispatched_at=now, state=RunState.dispatched.value)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- failure -------------------------------------------------------------------------------------------


def fail(ctx: StepContext, meta: Metadata, step: str, reason: str) -> Metadata:
    """End the request Failed with the step and the reason (unless it already ended); leave the
    workflow's inputs and outputs in storage with ``pipeline-failure.json`` beside them."""
    uuid = meta["test_uuid"]
    text = f"pipeline step {step}: {reason}"[:4000]
    with ctx.database.transaction() as session:
        request = _request(session, uuid, "fail")
        current = Status(request.status)
        folder = request.simulation_folder
        if current not in TERMINAL:
            try:
                requests.change_status(
                    session=session, request=request, target=Status.Failed, actor=ACTOR, reason=text, expected=current
                )
            except IllegalTransition:  # pragma: no cover - every active state may fail
                log.warning("request could not be failed", extra={"test_uuid": uuid})
        final = Status(request.status).name
    if folder:
        files.put_json(
            ctx.storage,
            f"{folder}/{FAILURE_FILE}",
            {"test_UUID": uuid, "workflow_id": meta.get("workflow_id"), "step": step, "reason": reason,
             "failed_at": ctx.clock().isoformat(), "metadata": meta},
        )  # fmt: skip
    log.warning("pipeline failed", extra={"test_uuid": uuid, "step": step, "reason": reason[:500]})
    return {**meta, "outcome": "failed", "failed_step": step, "reason": reason[:2000], "status": final}


STEPS: dict[str, Callable[[StepContext, Metadata], Metadata]] = {
    "processor": processor,
    "doe": doe,
    "schedule": schedule,
    "dispatch": dispatch,
}
