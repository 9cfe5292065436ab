"""The virtual run: what a virtual bench does with each run that dispatch puts on its
``bench-<name>`` DBOS queue, as the durable workflow ``fastlims.benches.virtual_run`` (one per
run, its id the run's idempotency key).

One run, step by step (each a DBOS step; a finished step never runs again after a crash):

1. wait, durably, until the run's scheduled start (the queue already held it until the booking);
2. ``start``: stop here when the request is Cancelled or Failed; else record the run started
   (ScheduleReady → Running with the request's first run) and publish the ``started`` event;
3. ``simulate``: fetch the FMUs and ``inter_connection.json`` from storage, run the co-simulation
   in a sandboxed child process (a segfaulting FMU fails the run, not the worker; the partner's
   code reaches nothing of the host: docs/security.md), its simulated time capped
   (:func:`.sandboxing.duration_cap`), publish metrics batches and progress live, poll the request
   every ``FASTLIMS_VIRTUAL_BENCH_PROGRESS_S`` so a Failed or Cancelled request stops the run, stop
   it past ``FASTLIMS_VIRTUAL_BENCH_TIMEOUT_S``; stream the Parquet file (every sample, the
   parameters in its metadata) to disk as the batches come, then store it and the summary in
   ``simulation-results/<run_id>/`` under fixed names, each written whole (a re-run overwrites);
4. ``record``: the run's state and summary (``TestMetricsJson`` keyed by run id,
   ``SimulationResultsPath``), then the request: any failed run → Failed with its reason; every
   run completed → SimulationComplete → Completed (:func:`fastlims.runs.service.run_ended`, where
   the physical bench gateway records its runs too).

Concurrency: each bench queue runs one run at a time (across processes); a process runs at most
``FASTLIMS_VIRTUAL_BENCH_CONCURRENCY`` simulations at once (default: its cores).

The steps find their :class:`BenchContext` in :data:`CONTEXT` (DBOS is process-global), bound by
the pipeline engine when it launches; :mod:`.worker` takes the runs off the queues and gives the
context its publisher for live messages.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import posixpath
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from dbos import DBOS
from sqlalchemy import select, update

from fastlims.config import Settings
from fastlims.contexts import Slot
from fastlims.db.engine import Database
from fastlims.intake.service import Intake
from fastlims.intake.storage import BlobStorage
from fastlims.messaging.schemas import RunEvent, seed_time
from fastlims.messaging.topics import Topics
from fastlims.procedures.runfile import RunFileError, RunProcedure
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest
from fastlims.requests.states import Status
from fastlims.runs import queues, twins
from fastlims.runs import service as runs
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import ScheduledRun
from fastlims.runs.results import RESULTS_FILE, SUMMARY_FILE
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)

ACTOR = "virtual-bench"
DEFAULT_STEP_S = 1.0
# How a run ended, in the runs API's words (the co-simulation's causes folded into them).
_END_CAUSES = {"crash": "error", "nan": "error", "callback": "error", "invalid": "error", "missing": "error",
               "sandbox": "error"}  # fmt: skip


# --- the context -------------------------------------------------------------------------


class Publisher(Protocol):
    """Where live messages go (:mod:`fastlims.benches.worker` has the two kinds)."""

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Send without blocking on the broker (thread-safe; called from DBOS step threads)."""

    def flush(self, timeout_s: float) -> None:
        """Wait until what was sent is acknowledged (or ``timeout_s`` passes)."""


@dataclass
class BenchContext:
    """What the virtual run's steps work with: built by the composition root, bound by the
    pipeline engine at launch (:data:`CONTEXT`); the worker sets ``publisher`` when it starts."""

    settings: Settings
    database: Database
    intake: Intake
    topics: Topics
    publisher: Publisher | None = None
    slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(1))
    sandbox: Any = None  # the worker's :class:`~.cosim.isolated.Sandbox` (:func:`.sandboxing.require`)

    @property
    def storage(self) -> BlobStorage:
        return self.intake.storage

    partners: dict[str, str | None] = field(default_factory=dict)  # test_UUID -> the DT partner serving it

    def send(self, topic: str, message: Any, qos: int = 1) -> None:
        if self.publisher is not None:
            self.publisher.publish(topic, message.model_dump_json().encode(), qos)

    def partner_of(self, test_uuid: str) -> str | None:
        """The Digital Twin partner serving the request (it gets a copy of the run's live messages
        on its own level; partners cannot read the benches' topics)."""
        if test_uuid not in self.partners:
            if len(self.partners) > 10_000:  # a long-lived worker forgets requests it ran long ago
                self.partners.clear()
            with self.database.transaction() as session:
                self.partners[test_uuid] = requests.get_by_uuid(session=session, test_uuid=test_uuid).dt_partner
        return self.partners[test_uuid]

    def send_run(self, order: dict[str, Any], kind: str, message: Any, qos: int = 1) -> None:
        """A run's event or metrics batch under its bench, and the same to the request's partner."""
        if self.publisher is None:
            return
        run_id, bench = order["run_id"], order["bench"]
        payload = message.model_dump_json().encode()
        own = self.topics.run_events(bench, run_id) if kind == "events" else self.topics.run_metrics(bench, run_id)
        self.publisher.publish(own, payload, qos)
        partner = self.partner_of(order["test_UUID"])
        if partner is not None:
            relay = (
                self.topics.partner_run_events(partner, run_id)
                if kind == "events"
                else self.topics.partner_run_metrics(partner, run_id)
            )
            self.publisher.publish(relay, payload, qos)

    def event(self, order: dict[str, Any], event: str, progress: float = 0.0, reason: str | None = None) -> None:
        self.send_run(
            order,
            "events",
            RunEvent(
                run_id=order["run_id"],
                test_UUID=order["test_UUID"],
                event=event,  # type: ignore[arg-type]
                progress=max(0.0, min(100.0, progress)),
                reason=reason[:2000] if reason else None,
                at=seed_time(utcnow()),
            ),
        )


CONTEXT: Slot[BenchContext] = Slot("virtual bench worker")


def context() -> BenchContext:
    return CONTEXT.get()


def concurrency(settings: Settings) -> int:
    """Simulations this process runs at once (``FASTLIMS_VIRTUAL_BENCH_CONCURRENCY``, else its cores)."""
    return settings.virtual_bench_concurrency or os.cpu_count() or 1


# --- the steps ------------------------------------------------------------------------------------


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _status(ctx: BenchContext, test_uuid: str) -> Status:
    with ctx.database.transaction() as session:
        return Status(requests.get_by_uuid(session=session, test_uuid=test_uuid).status)


def _set_run_state(ctx: BenchContext, run_id: str, state: RunState) -> None:
    with ctx.database.transaction() as session:
        runs.set_state(session=session, run_id=run_id, target=state)


def start_step(order: dict[str, Any]) -> dict[str, Any]:
    """Record the run started (and the request Running), unless the request stopped meanwhile."""
    ctx = context()
    status = _status(ctx, order["test_UUID"])
    if status in (Status.Cancelled, Status.Failed, Status.Completed):
        _set_run_state(ctx, order["run_id"], RunState.cancelled)
        ctx.event(order, "cancelled", reason=f"the request is {status.name}")
        return {"go": False, "reason": f"the request is {status.name}"}
    with ctx.database.transaction() as session:
        run = runs.run_started(session=session, run_id=order["run_id"], actor=ACTOR)
        started = run.started_at.isoformat() if run.started_at else utcnow().isoformat()
    ctx.event(order, "started")
    return {"go": True, "started_at": started}


def _legacy_profiles(ctx: BenchContext, order: dict[str, Any]) -> tuple[Any, ...]:
    """A custom_profile that names an FMU port (``FMU/Port``, the form before port roles) drives
    that port in open loop beside the procedure; a role-named one is the procedure's own."""
    from fastlims.messaging.variables import Variables

    with ctx.database.transaction() as session:
        request = requests.get_by_uuid(session=session, test_uuid=order["test_UUID"])
        variables = Variables.model_validate(requests.variables_of(request) or {})
    profile = variables.custom_profile
    return (profile,) if profile is not None and "/" in profile.Name else ()


def _step_size(ctx: BenchContext, system: Any, run: RunProcedure) -> float:
    """The communication step: ``FASTLIMS_VIRTUAL_BENCH_STEP_S``, else the FMUs' own default step
    (their DefaultExperiment), never longer than the procedure's sampling period."""
    if ctx.settings.virtual_bench_step_s is not None:
        return float(ctx.settings.virtual_bench_step_s)
    own = system.default_step_size() or DEFAULT_STEP_S
    return float(min(own, run.procedure.sampling.period_s))


def simulate_step(order: dict[str, Any]) -> dict[str, Any]:
    """Run the run's procedure in closed loop on the FMUs, in the sandbox, and store its results;
    returns the outcome (small JSON). A run without a procedure is refused: there is no open-loop
    run to a nominal duration. The samples go from the child to the Parquet file batch by batch."""
    from fastlims.benches import sandboxing
    from fastlims.benches.cosim import CosimError, SimulationSpec, load_system, run_in_subprocess
    from fastlims.benches.cosim.spec import ProcedureRun
    from fastlims.intake import files, ports
    from fastlims.procedures.compiler import compile_procedure
    from fastlims.runs import results

    ctx = context()
    settings = ctx.settings
    run_id, uuid = order["run_id"], order["test_UUID"]
    folder = order["results_folder"].rstrip("/")
    results_key, summary_key = f"{folder}/{RESULTS_FILE}", f"{folder}/{SUMMARY_FILE}"
    fmus: list[str] = list(order.get("fmus") or [])
    interconnection = str(order.get("interconnection") or "")
    if not order.get("procedure"):
        return _refused("the run has no test procedure: a virtual bench runs a procedure or nothing")
    try:
        sandbox = ctx.sandbox or sandboxing.require(settings)
    except sandboxing.SandboxUnavailable as exc:
        return _refused(str(exc))
    spool = settings.data_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    with ctx.slots, tempfile.TemporaryDirectory(prefix="run-", dir=spool) as local_dir:
        writer = results.ResultsWriter(Path(local_dir) / RESULTS_FILE, run_id=run_id)
        try:
            run = RunProcedure.from_json(ctx.storage.get(order["procedure"]))
            profiles = _legacy_profiles(ctx, order)
            with ctx.storage.materialised([*fmus, interconnection]) as local:
                connections = json.loads(local[interconnection].read_text(encoding="utf-8"))
                roles = ports.uut_ports(connections)
                if roles is None:
                    return _refused(
                        "the Digital Twin's inter_connection.json has no UUT_ports: a battery procedure needs "
                        "at least the current and voltage roles (docs/partners-upload.md)"
                    )
                paths = {posixpath.basename(k)[: -len(".fmu")]: local[k] for k in fmus}
                with load_system(paths, connections) as system:
                    step = _step_size(ctx, system, run)
                expected = run.expected_duration_s
                cap = sandboxing.duration_cap(settings, expected)
                spec = SimulationSpec(
                    step_size=step,
                    stop_time=cap,
                    profiles=profiles,
                    parameters=order.get("parameters") or {},
                    procedure=ProcedureRun(
                        program=compile_procedure(run.procedure),
                        ports=roles,
                        current_sign=ports.current_sign(connections) or "charge_positive",
                    ),
                )
                timeout = float(order.get("timeout_s") or settings.virtual_bench_timeout_s)
                batch_rows = (
                    max(1, int(round(settings.virtual_bench_batch_sim_s / step)))
                    if settings.virtual_bench_batch_sim_s
                    else None
                )
                t0 = seed_time(utcnow())
                tracker = _Tracker(ctx, order, spec.start_time + expected, spec.start_time)

                def on_batch(batch: Any) -> None:
                    writer.add(batch)
                    ctx.send_run(
                        order,
                        "metrics",
                        batch.to_message(run_id=run_id, test_uuid=uuid, t0_utc=t0),
                        settings.virtual_bench_metrics_qos,
                    )

                result = run_in_subprocess(
                    paths, connections, spec, on_batch,
                    batch_rows=batch_rows, batch_every_s=settings.virtual_bench_batch_wall_s,
                    cancel=tracker.cancelled, on_progress=tracker.reached, timeout_s=timeout,
                    sandbox=sandbox, keep_rows=False,
                )  # fmt: skip
            if result.end_cause == "timeout" and result.reason.startswith("the procedure did not end"):
                result.reason += (
                    f" ({settings.virtual_bench_max_duration_factor:g} × its expected {expected:g} s "
                    "(FASTLIMS_VIRTUAL_BENCH_MAX_DURATION_FACTOR), at most FASTLIMS_VIRTUAL_BENCH_MAX_DURATION_S)"
                )
            writer.close(result)
        except (CosimError, RunFileError) as exc:
            writer.abort()
            return _refused(f"the simulation cannot run: {exc}")
        except (FileNotFoundError, KeyError) as exc:
            writer.abort()
            reason = f"the run's model files are not in storage: {exc}"
            return {"status": "failed", "end_cause": "error", "reason": reason[:4000], "samples": 0}
        document = {
            "run_id": run_id,
            **results.summarize_file(writer.path),
            "run": results.run_metadata(result),
            "parameters": dict(order.get("parameters") or {}),
            "values": dict(order.get("values") or {}),
            "procedure": run.procedure.name,
            **_outcomes(writer.path, result, run, run_id),
        }
        # Fixed names, each written whole: a step that runs again after a crash overwrites them.
        files.put_file_atomic(ctx.storage, results_key, writer.path)
    files.put_json(ctx.storage, summary_key, document)
    if ctx.publisher is not None:
        ctx.publisher.flush(30.0)  # the last batch is out before the run's final event
    stopped = result.stopped_at if math.isfinite(result.stopped_at) else None
    return {
        "status": result.status,
        "end_cause": result.end_cause,
        "reason": (result.reason or "")[:4000],
        "samples": result.rows,
        "batches": result.batches,
        "stopped_at_s": stopped,
        "simulated_s": (stopped - spec.start_time) if stopped is not None else None,
        "wall_s": max(0.0, result.wall_time_s - result.setup_time_s),
        "results": results_key,
        "summary": summary_key,
        "outcomes": document["outcomes"],
    }


def _outcomes(path: Path, result: Any, run: RunProcedure, run_id: str) -> dict[str, Any]:
    """The procedure's steps, cycles and outcomes, from the columns they need (read back from the
    results file: the run's other signals stay on disk)."""
    from fastlims.procedures.outcomes import USED, OutcomeError, summarise
    from fastlims.runs import results

    summary: dict[str, Any] = {"steps": [], "cycles": [], "outcomes": {}}
    if result.rows:
        try:
            columns = results.read_parquet(path, columns=list(USED)).columns
            summary = summarise(columns, run.procedure, criterion=run.criterion, end_cause=result.end_cause)
        except OutcomeError as exc:  # the samples are stored; the run's own end says what went wrong
            log.warning("no outcomes for the run", extra={"run_id": run_id, "problem": str(exc)})
            summary["outcomes_problem"] = str(exc)
    return summary


def _refused(reason: str) -> dict[str, Any]:
    return {"status": "failed", "end_cause": "error", "reason": reason[:4000], "samples": 0}


class _Tracker:
    """Progress (events and ``SimulationProgress``) and the request's status, at most once per
    ``FASTLIMS_VIRTUAL_BENCH_PROGRESS_S`` each."""

    def __init__(self, ctx: BenchContext, order: dict[str, Any], end: float, start: float) -> None:
        self.ctx, self.order, self.end, self.start = ctx, order, end, start
        self.every = ctx.settings.virtual_bench_progress_s
        self._published = -math.inf
        self._polled = time.monotonic()
        self._stop = False
        uuid = order["test_UUID"]
        with ctx.database.transaction() as session:
            states = list(session.scalars(select(ScheduledRun.state).where(ScheduledRun.test_uuid == uuid)))
        self.total = max(1, len(states))
        self.done = sum(1 for s in states if s == RunState.completed.value)

    def reached(self, t: float) -> None:
        now = time.monotonic()
        if now - self._published < self.every and t < self.end:
            return
        self._published = now
        span = self.end - self.start
        percent = 100.0 * min(1.0, max(0.0, (t - self.start) / span)) if span > 0 else 100.0
        self.ctx.event(self.order, "progress", percent)
        overall = int((self.done * 100.0 + percent) / self.total)
        with contextlib.suppress(Exception), self.ctx.database.transaction() as session:
            session.execute(
                update(TestRequest)
                .where(TestRequest.test_uuid == self.order["test_UUID"], TestRequest.simulation_progress < overall)
                .values(simulation_progress=overall)
                .execution_options(synchronize_session=False)
            )

    def cancelled(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._polled >= self.every:
            self._polled = now
            with contextlib.suppress(Exception):
                self._stop = _status(self.ctx, self.order["test_UUID"]) in (Status.Cancelled, Status.Failed)
        return self._stop


def record_step(order: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """The run's state and summary; then the request's status when this run decides it
    (:func:`fastlims.runs.service.run_ended`); then the run's final event."""
    ctx = context()
    run_id, uuid = order["run_id"], order["test_UUID"]
    status = outcome["status"]
    summary = None
    if outcome.get("summary"):
        with contextlib.suppress(FileNotFoundError, ValueError):
            summary = json.loads(ctx.storage.get(outcome["summary"]))
            for detail in ("steps", "cycles"):  # in the summary file and the runs API, not the request row
                summary.pop(detail, None)
    end_cause = _END_CAUSES.get(outcome.get("end_cause") or "", outcome.get("end_cause"))
    ended = runs.RunOutcome.from_mapping({**outcome, "end_cause": end_cause})
    with ctx.database.transaction() as session:
        final = runs.run_ended(
            session, run_id=run_id, test_uuid=uuid, outcome=ended, actor=ACTOR,
            results_folder=order["results_folder"], summary=summary, fmu_set=order.get("fmu_set"),
        )  # fmt: skip
        # A twin run that ends after its physical run compares the two (once; see runs.twins).
        twins.compare_after_end(
            session, storage=ctx.storage, run_id=run_id, threshold_v=ctx.settings.twin_residual_alert_v
        )
    event = {"completed": "completed", "cancelled": "cancelled"}.get(status, "failed")
    ctx.event(order, event, 100.0 if status == "completed" else 0.0, outcome.get("reason") or None)
    return {"run_id": run_id, "status": status, "request_status": final}


def _step(name: str, function: Callable[..., Any], *args: Any) -> Any:
    return DBOS.run_step({"name": f"virtual.{name}"}, function, *args)


@DBOS.workflow(name=queues.VIRTUAL_RUN_WORKFLOW)
def virtual_run(order: dict[str, Any]) -> dict[str, Any]:
    """One virtual run (``order``: :func:`fastlims.pipeline.steps.run_order`); returns its outcome."""
    scheduled = _parse_time(order.get("scheduled_start") or order["bench_start"])
    # Always one sleep (0 s when due): the steps keep their positions when the workflow replays.
    DBOS.sleep(max(0.0, (scheduled - utcnow()).total_seconds()))
    started = _step("start", start_step, order)
    if not started["go"]:
        return {"run_id": order["run_id"], "status": "cancelled", "reason": started["reason"]}
    try:
        outcome = _step("simulate", simulate_step, order)
    except Exception as exc:  # noqa: BLE001 - storage or database trouble ends the run failed, named
        log.exception("virtual run failed outside the simulation", extra={"run_id": order["run_id"]})
        outcome = {"status": "failed", "end_cause": "error", "reason": f"{type(exc).__name__}: {exc}"[:4000]}
    recorded = _step("record", record_step, order, outcome)
    return {**outcome, **recorded}
