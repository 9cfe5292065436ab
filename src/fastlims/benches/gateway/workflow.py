"""A physical run, end to end, as the durable workflow ``fastlims.benches.physical_run`` (one per
run, its id the run's idempotency key, on the bench's ``bench-<name>`` queue like a virtual run).

1. wait, durably, until the booking starts; ``check``: the request is still active, the bench is
   online and the capabilities it announced cover the run (else the run moves on: step 6);
2. ``load`` (the run file: resolved procedure, ratings, safety limits, DoE factors), then at the
   test's start ``start``; each command waits ``FASTLIMS_BENCH_COMMAND_TIMEOUT_S`` for the bench's
   one reply and is sent again with the same ``command_id`` up to ``FASTLIMS_BENCH_COMMAND_RETRIES``
   times (the bench answers a repeated id with its first answer and acts once);
3. wait for the run's end (``completed``, ``failed``, ``aborted``), as the gateway hears it; the
   samples are stored meanwhile by the gateway, each once (:mod:`fastlims.runs.samples`);
4. a bench that goes offline mid-run leaves the run ``interrupted``: a resumable test waits
   ``FASTLIMS_BENCH_OFFLINE_GRACE_S`` for the bench and is resumed; an abuse test
   (``abuse: true``), or one whose bench stays away, fails with its samples so far kept
   (:func:`.policy.after_offline`);
5. a run that overruns its expected duration × ``FASTLIMS_BENCH_MAX_DURATION_FACTOR`` is aborted;
6. a bench that never answers, rejects, or is offline before the start: the run is booked on
   another online bench whose ratings cover it and starts there, or the request fails saying why;
7. ``collect``: the samples become the run's Parquet file, summary and outcomes (the same format
   as a virtual run's); ``record``: the run's end and the request's status (:mod:`fastlims.runs`).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from dbos import DBOS

from fastlims.benches import registry
from fastlims.benches.gateway import placement, policy
from fastlims.benches.gateway.ingest import RUN_TOPIC, reply_topic
from fastlims.benches.gateway.models import BenchLiveState
from fastlims.config import Settings
from fastlims.contexts import Slot
from fastlims.db.engine import Database
from fastlims.intake import files
from fastlims.intake.storage import BlobStorage
from fastlims.messaging import outbox
from fastlims.messaging.schemas import BenchCommand, seed_time
from fastlims.messaging.topics import Topics
from fastlims.procedures.runfile import RunProcedure
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.runs import events as run_events
from fastlims.runs import queues, samples, twins
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import ScheduledRun
from fastlims.runs.results import RESULTS_FILE, SUMMARY_FILE
from fastlims.runs.service import run_ended, set_state
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)
ACTOR = "bench-gateway"


class Requeue(Protocol):
    def __call__(self, *, queue: str, key: str, order: dict[str, Any], workflow: str, delay_s: float) -> None: ...


@dataclass
class GatewayContext:
    """What the physical run's steps work with (bound by the composition root)."""

    settings: Settings
    database: Database
    storage: BlobStorage
    topics: Topics
    requeue: Requeue


CONTEXT: Slot[GatewayContext] = Slot("bench gateway")


def _run_file(ctx: GatewayContext, order: dict[str, Any]) -> RunProcedure:
    """The run's file (resolved procedure, ratings, limits) as the pipeline stored it."""
    return RunProcedure.from_json(ctx.storage.get(order["procedure"]))


def _step(name: str, function: Any, *args: Any) -> Any:
    return DBOS.run_step({"name": f"physical.{name}"}, function, *args)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the steps ---------------------------------------------------------------------------------------


def check_step(order: dict[str, Any]) -> dict[str, Any]:
    """Is the request still active, and can the booked bench take the run now?"""
    ctx = CONTEXT.get()
    with ctx.database.transaction() as session:
        status = Status(requests.get_by_uuid(session=session, test_uuid=order["test_UUID"]).status)
        if status in (Status.Cancelled, Status.Failed, Status.Completed):
            set_state(session=session, run_id=order["run_id"], target=RunState.cancelled)
            return {"go": False, "cancelled": True, "reason": f"the request is {status.name}"}
        live = session.get(BenchLiveState, order["bench"])
        seen = (live.state, live.capabilities) if live is not None else (None, None)
    run_file = _run_file(ctx, order)
    problem = policy.unfit(order["bench"], seen[0], seen[1], run_file)
    return {
        "go": problem is None, "cancelled": False, "reason": problem,
        "abuse": run_file.procedure.abuse, "expected_duration_s": run_file.expected_duration_s,
    }  # fmt: skip


def send_step(order: dict[str, Any], command: str, command_id: str, expected: str, reason: str | None) -> None:
    """The command, through the outbox (it goes out once the transaction commits, in order)."""
    ctx = CONTEXT.get()
    run_file = None
    if command in ("load", "start"):
        run_file = json.loads(ctx.storage.get(order["procedure"]))
    message = BenchCommand(
        command_id=command_id,
        command=command,  # type: ignore[arg-type]
        run_id=order["run_id"],
        test_UUID=order["test_UUID"],
        expected_state=expected,  # type: ignore[arg-type]
        run_file=run_file,
        factors=dict(order.get("values") or {}),
        scheduled_start=seed_time(_parse_time(order["scheduled_start"])) if command in ("load", "start") else None,
        idempotency_key=order["idempotency_key"],
        reason=reason,
    )
    with ctx.database.transaction() as session:
        outbox.enqueue(session, f"benches/{order['bench']}/commands", message, qos=1)


def command(order: dict[str, Any], name: str, expected: str, reason: str | None = None) -> dict[str, Any] | None:
    """Send ``name`` and wait for the bench's reply, retrying with the same id; None: no answer."""
    settings = CONTEXT.get().settings
    command_id = f"{order['idempotency_key']}:{name}"
    for _attempt in range(settings.bench_command_retries + 1):
        _step(f"send.{name}", send_step, order, name, command_id, expected, reason)
        reply = DBOS.recv(reply_topic(command_id), timeout_seconds=settings.bench_command_timeout_s)
        if reply is not None:
            return dict(reply)
    return None


def state_step(order: dict[str, Any], state: str, reason: str | None = None) -> None:
    with CONTEXT.get().database.transaction() as session:
        if set_state(session=session, run_id=order["run_id"], target=RunState(state)) and reason:
            session.query(ScheduledRun).filter(ScheduledRun.run_id == order["run_id"]).update(
                {ScheduledRun.reason: reason[:4000]}, synchronize_session=False
            )


def reschedule_step(order: dict[str, Any], reason: str) -> dict[str, Any]:
    """Book the run on another online bench that covers it, starting now; None bench: none can."""
    ctx = CONTEXT.get()
    run_file = _run_file(ctx, order)
    tried = [*order.get("tried_benches", []), order["bench"]]
    now = utcnow()
    with ctx.database.transaction() as session:
        candidates = placement.candidates(session, run_file, exclude=tried)
        chosen = None
        length = _parse_time(order["bench_end"]) - _parse_time(order["bench_start"])
        for bench in candidates:
            if not placement.is_free(session, bench, now, now + length, ignore_run=order["run_id"]):
                continue
            chosen = bench
            break
        if chosen is None:
            return {"bench": None, "tried": tried}
        key = f"{order['idempotency_key'].split(':moved-')[0]}:moved-{len(tried)}"  # a new workflow id
        lead = _parse_time(order["scheduled_start"]) - _parse_time(order["bench_start"])
        row = session.query(ScheduledRun).filter(ScheduledRun.run_id == order["run_id"]).one()
        row.bench, row.start_at, row.end_at = chosen, now, now + length
        row.test_start_at = now + lead
        row.idempotency_key = key
        row.state = RunState.dispatched.value
        row.reason = f"moved from {order['bench']}: {reason}"[:4000]
        requests.audit(
            session=session, test_uuid=order["test_UUID"], actor=ACTOR, field=f"run {order['run_id']} bench",
            from_value=order["bench"], to_value=chosen, reason=f"moved: {reason}",
        )  # fmt: skip
    moved = {
        **order,
        "bench": chosen,
        "bench_start": now.isoformat(),
        "bench_end": (now + length).isoformat(),
        "scheduled_start": (now + lead).isoformat(),
        "idempotency_key": key,
        "tried_benches": tried,
    }
    ctx.requeue(
        queue=queues.bench_queue(chosen), key=key, order=moved, workflow=queues.PHYSICAL_RUN_WORKFLOW, delay_s=0
    )
    return {"bench": chosen, "tried": tried}


def collect_step(order: dict[str, Any], ending: dict[str, Any]) -> dict[str, Any]:
    """The stored samples as the run's results file, summary and outcomes."""
    from fastlims.procedures.outcomes import OutcomeError, summarise
    from fastlims.runs import results

    ctx = CONTEXT.get()
    run_id = order["run_id"]
    folder = order["results_folder"].rstrip("/")
    results_key, summary_key = f"{folder}/{RESULTS_FILE}", f"{folder}/{SUMMARY_FILE}"
    run_file = _run_file(ctx, order)
    with ctx.database.transaction() as session:
        got = samples.assemble(session, run_id)
        said = run_events.of_run(session, run_id)
    status, end_cause, reason = policy.ending(ending, said)
    if got.gaps:
        missing = ", ".join(f"{a}..{b}" for a, b in got.gaps[:5])
        reason = f"{reason + '; ' if reason else ''}records missing from the bench's data: {missing}"
    document: dict[str, Any] = {
        "run_id": run_id,
        "bench": order["bench"],
        "bench_kind": "physical",
        "records": got.records,
        "record_gaps": got.gaps,
        "values": dict(order.get("values") or {}),
        "procedure": run_file.procedure.name,
        "events": said[-200:],
        "steps": [],
        "cycles": [],
        "outcomes": {},
    }
    spool = ctx.settings.data_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="physical-", dir=spool) as local:
        path = Path(local) / RESULTS_FILE
        run = {"status": status, "end_cause": end_cause, "reason": reason, "samples": got.records}
        # The results file's time axis is the test time (a virtual run's is the simulated time).
        columns = {"time": got.columns[samples.TIME_COLUMN], **got.columns}
        units = {"time": "s", **got.units}
        results.write_parquet(path, columns, units, run_id=run_id, parameters=order.get("values"), run=run)
        if got.records:
            document.update(results.summarize_file(path))
            try:
                document.update(summarise(got.columns, run_file.procedure, criterion=run_file.criterion,
                                          end_cause=end_cause))  # fmt: skip
            except OutcomeError as exc:
                document["outcomes_problem"] = str(exc)
        files.put_file_atomic(ctx.storage, results_key, path)
    files.put_json(ctx.storage, summary_key, document)
    test_time = got.columns.get(samples.TIME_COLUMN)
    stopped = float(test_time[-1]) if test_time is not None and len(test_time) else None
    return {
        "status": status,
        "end_cause": end_cause,
        "reason": (reason or "")[:4000],
        "samples": got.records,
        "simulated_s": stopped if stopped is not None and math.isfinite(stopped) else None,
        "results": results_key,
        "summary": summary_key,
        "outcomes": document["outcomes"],
    }


def record_step(order: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    ctx = CONTEXT.get()
    summary = None
    if outcome.get("summary"):
        summary = json.loads(ctx.storage.get(outcome["summary"]))
        for detail in ("steps", "cycles", "events"):  # in the summary file and the runs API, not the request row
            summary.pop(detail, None)
    with ctx.database.transaction() as session:
        final = run_ended(
            session, run_id=order["run_id"], test_uuid=order["test_UUID"], outcome=outcome, actor=ACTOR,
            results_folder=order["results_folder"], summary=summary,
        )  # fmt: skip
        # A physical run that ends after its twin compares the two (once; see runs.twins).
        twins.compare_after_end(
            session, storage=ctx.storage, run_id=order["run_id"], threshold_v=ctx.settings.twin_residual_alert_v
        )
    return {"run_id": order["run_id"], "status": outcome["status"], "request_status": final}


def twin_step(order: dict[str, Any]) -> dict[str, Any]:
    """The run's twin, once the bench accepted the start: the same procedure and factors on the
    request's Digital Twin models, queued at once on a virtual bench (the registry's, else the
    defaults; chosen by the run id, so the same bench on a re-run). None when the request has no
    models (its order carries no FMUs) or ``FASTLIMS_TWIN_RUNS`` is off."""
    ctx = CONTEXT.get()
    if not ctx.settings.twin_runs or not order.get("fmus") or not order.get("interconnection"):
        return {"twin": None}
    now = utcnow()
    with ctx.database.transaction() as session:
        records = registry.get_all(session=session)
        names = sorted(r.name for r in records if r.kind == registry.Kind.virtual)
        names = names or registry.default_virtual_names(ctx.settings.pipeline_virtual_benches)
        if not names:
            return {"twin": None}
        bench = names[zlib.crc32(order["run_id"].encode()) % len(names)]
        row = twins.add_twin(session, run_id=order["run_id"], bench=bench, now=now)
        twin_order = {
            key: value for key, value in order.items() if key not in ("tried_benches", "abuse", "expected_duration_s")
        }
        folder = order["results_folder"].rstrip("/").rsplit("/", 1)[0]
        twin_order.update(
            run_id=row.run_id,
            design_run_id=row.design_run_id,
            bench=row.bench,
            bench_start=row.start_at.isoformat(),
            bench_end=row.end_at.isoformat(),
            scheduled_start=row.test_start_at.isoformat(),
            idempotency_key=row.idempotency_key,
            results_folder=f"{folder}/{row.run_id}/",
            twin_of=order["run_id"],
        )
    ctx.requeue(
        queue=queues.bench_queue(twin_order["bench"]), key=twin_order["idempotency_key"], order=twin_order,
        workflow=queues.VIRTUAL_RUN_WORKFLOW, delay_s=0,
    )  # fmt: skip
    return {"twin": twin_order["run_id"], "bench": twin_order["bench"]}


def _now_s() -> float:
    return utcnow().timestamp()


def _failed(reason: str, end_cause: str = "error") -> dict[str, Any]:
    return {"status": "failed", "end_cause": end_cause, "reason": reason[:4000], "samples": 0}


# --- the workflow ----------------------------------------------------------------------------------


@DBOS.workflow(name=queues.PHYSICAL_RUN_WORKFLOW)
def physical_run(order: dict[str, Any]) -> dict[str, Any]:
    settings = CONTEXT.get().settings
    run_id = order["run_id"]
    booked = _parse_time(order["bench_start"])
    DBOS.sleep(max(0.0, (booked - utcnow()).total_seconds()))
    checked = _step("check", check_step, order)
    if checked["cancelled"]:
        return {"run_id": run_id, "status": "cancelled", "reason": checked["reason"]}
    order = {**order, "abuse": checked["abuse"], "expected_duration_s": checked["expected_duration_s"]}
    if not checked["go"]:
        return _move_or_fail(order, checked["reason"])
    loaded = command(order, "load", "idle")
    if loaded is None or loaded.get("result") != "accepted":
        return _move_or_fail(order, _refusal("load", order["bench"], loaded, settings))
    start_at = _parse_time(order["scheduled_start"])
    DBOS.sleep(max(0.0, (start_at - utcnow()).total_seconds()))
    started = command(order, "start", "loaded")
    if started is None or started.get("result") != "accepted":
        return _move_or_fail(order, _refusal("start", order["bench"], started, settings))
    _step("twin", twin_step, order)
    ending = _watch(order, settings)
    outcome = _step("collect", collect_step, order, ending)
    recorded = _step("record", record_step, order, outcome)
    return {**outcome, **recorded}


def _end(event: str, reason: str | None = None, **flags: bool) -> dict[str, Any]:
    return {"kind": "ended", "event": event, "reason": reason, **flags}


def _watch(order: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Wait for the run's end; handle the bench going away and an overrun."""
    bench = order["bench"]
    expected = float(order.get("expected_duration_s") or 3600.0)
    allowed = expected * settings.bench_max_duration_factor + settings.bench_command_timeout_s
    began = _step("clock", _now_s)
    while True:
        left = allowed - (_step("clock", _now_s) - began)
        if left <= 0:
            command(order, "abort", "running", reason="the run overran its expected duration")
            return _end(
                "aborted",
                f"the run overran {allowed:g} s ({settings.bench_max_duration_factor:g} × its expected "
                f"{expected:g} s, FASTLIMS_BENCH_MAX_DURATION_FACTOR) and was aborted",
                overran=True,
            )
        note = DBOS.recv(RUN_TOPIC, timeout_seconds=min(left, 60.0))
        if note is None or note.get("kind") == "online":
            continue
        if note.get("kind") == "ended":
            return dict(note)
        # offline: the run is interrupted; the per-test policy says what comes next
        _step("interrupted", state_step, order, RunState.interrupted.value, f"bench {bench} went offline")
        if policy.after_offline(bool(order.get("abuse"))) == "fail":
            return _end("failed", f"bench {bench} went offline mid-run; an abuse test is not resumed", interrupted=True)
        back = DBOS.recv(RUN_TOPIC, timeout_seconds=settings.bench_offline_grace_s)
        while back is not None and back.get("kind") == "offline":
            back = DBOS.recv(RUN_TOPIC, timeout_seconds=settings.bench_offline_grace_s)
        if back is None:
            return _end(
                "failed",
                f"bench {bench} went offline mid-run and did not come back within "
                f"{settings.bench_offline_grace_s:g} s (FASTLIMS_BENCH_OFFLINE_GRACE_S)",
                interrupted=True,
            )
        if back.get("kind") == "ended":
            return dict(back)
        if back.get("run_id") == order["run_id"] and back.get("state") == "running":
            _step("resumed", state_step, order, RunState.running.value, None)  # it ran on by itself
            continue
        if back.get("run_id") != order["run_id"] or back.get("state") != "paused":
            return _end(
                "failed", f"bench {bench} came back without the run (state {back.get('state')})", interrupted=True
            )
        resumed = command(order, "resume", "paused")
        if resumed is None or resumed.get("result") != "accepted":
            why = (resumed or {}).get("reason") or "no answer"
            return _end("failed", f"bench {bench} came back but did not resume the run: {why}", interrupted=True)
        _step("resumed", state_step, order, RunState.running.value, None)


def _refusal(name: str, bench: str, reply: dict[str, Any] | None, settings: Settings) -> str:
    if reply is None:
        tries = settings.bench_command_retries + 1
        return (
            f"bench {bench} did not answer {name} ({tries} tries, {settings.bench_command_timeout_s:g} s each: "
            "FASTLIMS_BENCH_COMMAND_TIMEOUT_S, FASTLIMS_BENCH_COMMAND_RETRIES)"
        )
    return f"bench {bench} rejected {name}: {reply.get('reason') or 'no reason given'}"


def _move_or_fail(order: dict[str, Any], reason: str) -> dict[str, Any]:
    moved = _step("reschedule", reschedule_step, order, reason)
    if moved["bench"] is not None:
        log.info("physical run moved", extra={"run_id": order["run_id"], "to": moved["bench"], "reason": reason})
        return {"run_id": order["run_id"], "status": "moved", "bench": moved["bench"], "reason": reason}
    tried = ", ".join(moved["tried"])
    outcome = _failed(f"{reason}; no other online bench covers the run (tried {tried})")
    recorded = _step("record", record_step, order, outcome)
    return {**outcome, **recorded}


def notify(workflow_id: str, topic: str, message: dict[str, Any], key: str) -> None:
    """What the gateway hears for a run's workflow (a reply, the run's end, its bench's state),
    delivered once per ``key`` however often the broker redelivers it."""
    try:
        DBOS.send(workflow_id, message, topic, idempotency_key=key[:200])
    except Exception:  # noqa: BLE001 - a workflow that ended (or a run of an older deployment)
        log.warning("no run workflow to tell", extra={"workflow_id": workflow_id, "topic": topic}, exc_info=True)
