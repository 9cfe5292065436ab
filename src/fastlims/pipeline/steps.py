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
import hashlib
import json
import logging
import posixpath
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fastlims.db import locks
from fastlims.doe import DoeError, design, design_to_json, resolve_factors
from fastlims.intake import files, layout
from fastlims.messaging import outbox
from fastlims.messaging.schemas import BenchCommand, RunFile, seed_time
from fastlims.pipeline import booking, durable, plan, procedure
from fastlims.pipeline.context import (
    ACTOR,
    Metadata,
    StepContext,
    VirtualRun,
    check_metadata,
    read_json,
    request_of,
    still_active,
)
from fastlims.pipeline.errors import PermanentError, Stopped, TransientError
from fastlims.requests import service as requests
from fastlims.requests.states import TERMINAL, IllegalTransition, Status
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import Channel, ScheduledRun

log = logging.getLogger(__name__)

OPTIMISTIC_ATTEMPTS = 4  # then the schedule is solved holding the booking lock: progress is certain

DOE_INPUT_FILE = "doe_input.json"
DESIGN_FILE = "design.json"
RUNS_FILE = "runs.json"
RUNS_CSV = "runs.csv"
FAILURE_FILE = "pipeline-failure.json"


# --- 1. Data Processor ------------------------------------------------------------------------------


def processor(ctx: StepContext, meta: Metadata) -> Metadata:
    """The seed's Activity 1. The intake's Data Processor validates the upload set and moves it
    into the simulation folder when the set completes (exactly once, claimed in the database);
    this step makes sure it ran (running it for a set still in the pool) and records its result:
    the folder, the FMUs, the interconnection, the subfolders of the later steps."""
    uuid = meta["test_uuid"]
    ctx.pause.reached(uuid, "processor", "before")
    with ctx.database.transaction() as session:
        status = still_active(request_of(session, uuid, "processor"), "processor")
    if status in (Status.Submitted, Status.ModelRequested):
        outcome = ctx.intake.processor.consider(uuid, trigger="(pipeline)", source="pipeline")
        if outcome.outcome in ("waiting", "duplicate"):
            raise TransientError(f"upload set of {uuid} not processed yet: {outcome.detail}")
        if outcome.outcome != "accepted":
            raise Stopped("processor", f"the upload set was {outcome.outcome}: {outcome.detail}")
    with ctx.database.transaction() as session:
        request = request_of(session, uuid, "processor")
        still_active(request, "processor")
        folder = request.simulation_folder
        number = request.request_number
    if not folder:
        raise PermanentError("processor", f"request {number} has no simulation folder although its models are ready")
    intake_record = read_json(ctx.storage, f"{folder}/{layout.INTAKE_FILE}", "processor")
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


def _parameters(ctx: StepContext, fmus: list[str]) -> tuple[list[Any], str]:
    """The FMUs' parameters, and a digest of the FMU set (its files' contents by name): the
    identity the measured simulation speed of virtual runs is kept under."""
    import fmpy

    found = []
    digest = hashlib.sha256()
    for key in sorted(fmus):
        name = posixpath.basename(key)
        with ctx.storage.materialised([key]) as local:
            digest.update(name.encode() + b"\0" + hashlib.sha256(local[key].read_bytes()).digest())
            try:
                description = fmpy.read_model_description(str(local[key]))
            except Exception as exc:  # noqa: BLE001 - FMPy raises many kinds for a broken FMU
                raise PermanentError("doe", f"cannot read the modelDescription.xml of {name}: {exc}") from None
        found += plan.parameters_from(description, name[: -len(layout.FMU_SUFFIX)])
    return found, digest.hexdigest()


def doe(ctx: StepContext, meta: Metadata) -> Metadata:
    """The seed's Activity 2: read the FMUs' parameters and the interconnection from storage,
    design the runs and write ``doe-input/`` (what went in) and ``doe-output/`` (design.json,
    runs.json, runs.csv, and each run's resolved procedure under ``procedures/``); then DoeComplete.

    The design is the test name's DoE section (over the FMUs' parameters) when it has one, else a
    design over the procedure's variables (ambient temperature, C-rate, ... within the UUT's
    ratings; ``FASTLIMS_PIPELINE_PROCEDURE_DOE``): each run is the request's procedure with those
    values, resolved against the UUT's ratings, and lasts what that procedure takes."""
    uuid = meta["test_uuid"]
    folder = meta["simulation_folder"]
    doe_input, doe_output = meta["doe_input"], meta["doe_output"]
    runs_key = doe_output + RUNS_FILE
    ctx.pause.reached(uuid, "doe", "before")
    with ctx.database.transaction() as session:
        request = request_of(session, uuid, "doe")
        status = still_active(request, "doe")
        spec_json = request.test.doe_spec_json
        number = request.request_number
        try:
            chosen = procedure.of_request(session, request)
        except procedure.ProcedureUnavailable as exc:
            raise PermanentError("doe", str(exc)) from None
    if status > Status.ModelReady and ctx.storage.head(runs_key) is not None:
        document = read_json(ctx.storage, runs_key, "doe")  # an earlier run of this step finished
        return check_metadata("doe", _doe_metadata(meta, document, runs_key))
    read_json(ctx.storage, meta["interconnection"], "doe")  # the seed's DoE runner reads it too
    parameters, fmu_set = _parameters(ctx, meta["fmus"])
    variables = procedure.variable_factors(chosen)
    try:
        nominal = procedure.duration_s(procedure.resolve_run(chosen), chosen.ratings)
        spec = (
            plan.doe_spec(json.loads(spec_json), ctx.settings.pipeline_default_doe, 0)  # type: ignore[arg-type]
            if spec_json
            else procedure.variable_design(ctx.settings.pipeline_procedure_doe, variables)
        )
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
            "procedure": json.loads(chosen.procedure.model_dump_json(exclude_defaults=True)),
            "procedure_source": chosen.source,
            "uut_ratings": chosen.ratings.as_columns(),
            "spec": spec.model_dump(mode="json") if spec else {"method": "nominal"},
            "spec_source": "catalog" if spec_json else f"procedure variables ({ctx.settings.pipeline_procedure_doe})",
            "expected_duration_s": nominal,
            "parameters": [p.model_dump(mode="json") for p in parameters],
            "variables": [v.model_dump(mode="json") for v in variables],
        },
    )
    ctx.pause.reached(uuid, "doe", "middle")
    notes: list[str] = []
    try:
        if spec is None:
            runs = plan.nominal_runs(uuid, nominal)
            method = "nominal"
            notes.append("one run with the procedure's own values and the FMUs' start values")
        elif spec_json:
            built = design(spec, resolve_factors(parameters, spec), nominal)
            runs = plan.runs_from_design(uuid, built)
        else:

            def duration_of(values: Mapping[str, float]) -> float:
                return procedure.duration_s(procedure.resolve_run(chosen, values), chosen.ratings)

            built = design(spec, resolve_factors(variables, spec), nominal, duration_of=duration_of)
            runs = plan.runs_from_design(uuid, built, procedure_variables=True)
        if spec is not None:
            files.put_text(ctx.storage, doe_output + DESIGN_FILE, design_to_json(built))
            method = built.method
            notes += built.warnings
        runs = [_with_procedure(ctx, chosen, run, doe_output) for run in runs]
    except (DoeError, procedure.ProcedureUnavailable) as exc:
        raise PermanentError("doe", str(exc)) from None
    document = plan.runs_document(test_uuid=uuid, request_number=number, method=method, runs=runs, notes=notes)
    document["fmu_set"] = fmu_set
    files.put_text(ctx.storage, doe_output + RUNS_CSV, plan.runs_csv(runs))
    files.put_json(ctx.storage, runs_key, document)
    with ctx.database.transaction() as session:
        request = request_of(session, uuid, "doe")
        if still_active(request, "doe") is Status.ModelReady:
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


def _with_procedure(
    ctx: StepContext, chosen: procedure.RequestProcedure, run: plan.PlannedRun, doe_output: str
) -> plan.PlannedRun:
    """The run's procedure resolved with its values, written whole under a fixed name, and the
    run's expected length taken from it."""
    resolved = procedure.resolve_run(chosen, run.values)
    key = procedure.procedure_key(doe_output, run.design_run_id)
    given = procedure.run_file(chosen, resolved)
    files.put_text(ctx.storage, key, given.to_json())
    return dataclasses.replace(
        run,
        procedure=key,
        expected_duration_s=given.expected_duration_s,
        values=dict(resolved.values),
        needs=procedure.run_needs(chosen, resolved),
    )


def _doe_metadata(meta: Metadata, document: dict[str, Any], runs_key: str) -> Metadata:
    designed = document["method"] != "nominal"
    return {
        **meta,
        "runs_file": runs_key,
        "design_file": meta["doe_output"] + DESIGN_FILE if designed else None,
        "method": document["method"],
        "runs": len(document["runs"]),
        "fmu_set": document.get("fmu_set"),
    }


# --- 3. Schedule runner --------------------------------------------------------------------------------


def schedule(ctx: StepContext, meta: Metadata) -> Metadata:
    """The seed's Activity 3: place the designed runs on benches beside every other request's
    bookings, write ``schedule-output/`` (schedule.json, gantt.svg), book the benches and set the
    request's optimised start and bench, then ScheduleReady, in one transaction (:mod:`.booking`).

    Within this process schedules are made one at a time (``ctx.schedule_lock``). Across
    processes they are optimistic: solve without the database lock, then book holding it only if
    no booking made meanwhile clashes; after ``OPTIMISTIC_ATTEMPTS`` clashes, solve holding it."""
    uuid = meta["test_uuid"]
    ctx.pause.reached(uuid, "schedule", "before")
    job = booking.load(ctx, meta)
    if not isinstance(job, booking.BookingJob):
        return check_metadata("schedule", job)  # booked by an earlier run of this step
    metadata: Metadata | None = None
    with ctx.schedule_lock:
        for attempt in range(1, OPTIMISTIC_ATTEMPTS + 2):
            if attempt <= OPTIMISTIC_ATTEMPTS:
                with ctx.database.transaction() as session:
                    proposal = booking.propose(ctx, job, session)
                if attempt == 1:
                    _pause_between_proposal_and_booking(ctx, uuid)
                with ctx.database.transaction() as session:
                    locks.hold(session, booking.BOOKING_LOCK)
                    metadata = booking.book(session, job, proposal)
            else:
                with ctx.database.transaction() as session:
                    locks.hold(session, booking.BOOKING_LOCK)
                    metadata = booking.book(session, job, booking.propose(ctx, job, session))
            if metadata is not None:
                break
    assert metadata is not None, "the last attempt holds the booking lock and cannot clash"
    log.info(
        "schedule ready", extra={"test_uuid": uuid, "runs": metadata["scheduled_runs"], "solver": metadata["solver"]}
    )
    ctx.pause.reached(uuid, "schedule", "after")
    return check_metadata("schedule", metadata)


def _pause_between_proposal_and_booking(ctx: StepContext, uuid: str) -> None:
    """The schedule step's "middle" pause point (tests only). The step holds the process's
    schedule lock; a test holding it here releases that lock meanwhile, so that other requests
    schedule (and clash with this one's proposal)."""
    if not ctx.pause.wants("schedule", "middle"):
        return
    ctx.schedule_lock.release()
    try:
        ctx.pause.reached(uuid, "schedule", "middle")
    finally:
        ctx.schedule_lock.acquire()


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
        "values": json.loads(row.values_json or "{}"),
        "procedure": row.procedure_key,
        "fmu_set": meta.get("fmu_set"),
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
        still_active(request_of(session, uuid, "dispatch"), "dispatch")
        rows = list(
            session.scalars(
                select(ScheduledRun)
                .where(ScheduledRun.test_uuid == uuid)
                .order_by(ScheduledRun.start_at, ScheduledRun.run_id)
            )
        )
    if not rows:
        raise PermanentError("dispatch", "the request has no booked runs")
    without = [row.run_id for row in rows if not row.procedure_key]
    if without:  # never a silent open-loop run: a bench runs a procedure or nothing
        raise PermanentError("dispatch", f"run(s) {', '.join(without)} have no test procedure to run")
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
                    # Bench contract v1: ``start`` from idle loads and starts the run file in one command.
                    assert row.procedure_key is not None  # checked above: no run without a procedure
                    command = BenchCommand(
                        command_id=f"{row.idempotency_key}:start",
                        command="start",
                        run_id=row.run_id,
                        test_UUID=row.test_uuid,
                        expected_state="idle",
                        run_file=RunFile.model_validate_json(ctx.storage.get(row.procedure_key)),
                        factors=json.loads(row.parameters_json),
                        scheduled_start=seed_time(row.test_start_at),
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
        request = request_of(session, uuid, "fail")
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
