"""What a bench reports about its runs, recorded by ``fastlims.runs.service`` with plain data, as
the physical bench gateway will call it (no DBOS, no MQTT), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from fastlims.bootstrap import System
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.runs import service as runs
from fastlims.runs.lifecycle import IllegalRunTransition, RunState
from fastlims.runs.models import Channel, ScheduledRun
from fastlims.timeutil import utcnow
from tests.conftest import Actor
from tests.integration.pipeline.helpers import new_request

FOLDER = "simulations/req/simulation-results"


def physical_request(system: System, count: int) -> tuple[str, list[str]]:
    """A ScheduleReady request with ``count`` runs dispatched to physical benches."""
    uuid = new_request(system, "Physical")
    now = utcnow()
    ids = [f"{uuid}.run-{i:03d}" for i in range(1, count + 1)]
    with system.database.transaction() as session:
        request = requests.get_by_uuid(session=session, test_uuid=uuid)
        for target in (Status.ModelReady, Status.DoeComplete, Status.ScheduleReady):
            requests.change_status(session=session, request=request, target=target, actor="test")
        for index, run_id in enumerate(ids, 1):
            session.add(
                ScheduledRun(
                    run_id=run_id,
                    request_id=request.id,
                    test_uuid=uuid,
                    workflow_id=f"pipeline-{uuid}",
                    design_run_id=f"run-{index:03d}",
                    bench=f"rig-{index}",
                    bench_kind="physical",
                    start_at=now,
                    end_at=now + timedelta(hours=1),
                    test_start_at=now,
                    idempotency_key=f"pipeline-{uuid}:{run_id}",
                    channel=Channel.mqtt.value,
                    state=RunState.dispatched.value,
                    dispatched_at=now,
                )  # fmt: skip
            )
    return uuid, ids


def row(system: System, run_id: str) -> ScheduledRun:
    with system.database.transaction() as session:
        found = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == run_id))
        assert found is not None
        session.expunge(found)
        return found


def end(system: System, uuid: str, run_id: str, outcome: Any, **extra: Any) -> str:
    with system.database.transaction() as session:
        return runs.run_ended(
            session, run_id=run_id, test_uuid=uuid, outcome=outcome, actor="bench-gateway",
            results_folder=f"{FOLDER}/{run_id}", **extra,
        )  # fmt: skip


def started(system: System, run_id: str) -> None:
    with system.database.transaction() as session:
        runs.run_started(session=session, run_id=run_id, actor="bench-gateway")


def test_runs_of_a_physical_bench_end_the_request_completed(system: System, requester: Actor) -> None:
    uuid, (first, second) = physical_request(system, 2)
    started(system, first)
    started(system, second)
    outcome = {"status": "completed", "end_cause": "procedure_complete", "outcomes": {"capacity_Ah": 4.9},
               "results": f"{FOLDER}/{first}/results.parquet", "simulated_s": 3600.0, "wall_s": 3601.5,
               "samples": 36000}  # fmt: skip
    summary = {"samples": 36000, "signals": {}}
    assert end(system, uuid, first, outcome, summary=summary) == "Running"  # one run still going
    ended = row(system, first)
    assert (ended.state, ended.end_cause, ended.reason) == ("completed", "procedure_complete", None)
    assert json.loads(ended.outcomes_json or "") == {"capacity_Ah": 4.9}
    assert (ended.simulated_seconds, ended.wall_seconds, ended.fmu_set) == (3600.0, 3601.5, None)
    assert ended.ended_at is not None

    typed = runs.RunOutcome(status="completed", end_cause="procedure_complete", results="r2")
    assert end(system, uuid, second, typed) == "Completed"
    with system.database.transaction() as session:
        request = requests.get_by_uuid(session=session, test_uuid=uuid)
        metrics = json.loads(request.test_metrics_json)
        assert metrics[first] == {**summary, "status": "completed", "reason": None,
                                  "results": f"{FOLDER}/{first}/results.parquet"}  # fmt: skip
        assert metrics[second] == {"status": "completed", "reason": None, "results": "r2"}
        assert request.simulation_results_path == f"{FOLDER}/"
        assert request.simulation_progress == 100


def test_a_partly_failed_request_completes_when_every_run_ended_and_names_the_failed_run(
    system: System, requester: Actor
) -> None:
    uuid, (first, second) = physical_request(system, 2)
    started(system, first)
    reason = "safety limit tripped: voltage 4.31 V > 4.25 V"
    # one failed run of a design does not stop the others: the request waits for them
    assert end(system, uuid, first, {"status": "failed", "end_cause": "safety_limit", "reason": reason}) == "Running"
    started(system, second)
    assert end(system, uuid, second, {"status": "completed", "end_cause": "procedure_complete"}) == "Completed"
    with system.database.transaction() as session:
        request = requests.get_by_uuid(session=session, test_uuid=uuid)
        said = [e.reason or "" for e in request.events if e.to_value == "Completed"]
    assert said and f"1 of 2 run(s) completed, 1 failed (run {first} failed: {reason})" in said[-1]


def test_a_request_whose_every_run_failed_fails_with_each_reason(system: System, requester: Actor) -> None:
    uuid, (first, second) = physical_request(system, 2)
    started(system, first)
    assert end(system, uuid, first, {"status": "failed", "end_cause": "error", "reason": "no answer"}) == "Running"
    assert end(system, uuid, second, {"status": "failed", "end_cause": "error", "reason": "rejected"}) == "Failed"
    with system.database.transaction() as session:
        request = requests.get_by_uuid(session=session, test_uuid=uuid)
        assert request.failure_reason == f"run {first} failed: no answer; run {second} failed: rejected"


def test_the_same_end_recorded_twice_is_rewritten_another_is_refused(system: System, requester: Actor) -> None:
    uuid, (first,) = physical_request(system, 1)
    started(system, first)
    assert end(system, uuid, first, {"status": "completed", "end_cause": "procedure_complete"}) == "Completed"
    # a step replayed after a crash records the same end again
    assert end(system, uuid, first, {"status": "completed", "end_cause": "procedure_complete"}) == "Completed"
    with pytest.raises(IllegalRunTransition, match="from completed to failed"):
        end(system, uuid, first, {"status": "failed", "reason": "late"})
    assert row(system, first).state == "completed"


def test_a_report_for_another_request_or_an_unknown_end_is_refused(system: System, requester: Actor) -> None:
    uuid, (first,) = physical_request(system, 1)
    other, _ = physical_request(system, 1)
    started(system, first)
    with pytest.raises(ValueError, match=f"belongs to test request {uuid}, not {other}"):
        end(system, other, first, {"status": "completed"})
    with pytest.raises(ValueError, match="a run ends completed, failed, cancelled, not 'exploded'"):
        end(system, uuid, first, {"status": "exploded"})
    with pytest.raises(LookupError, match="no scheduled run has run_id 'nope'"):
        end(system, uuid, "nope", {"status": "completed"})
    assert row(system, first).state == "running"


def test_state_changes_follow_the_lifecycle(system: System, requester: Actor) -> None:
    uuid, (first,) = physical_request(system, 1)
    with system.database.transaction() as session:
        assert runs.set_state(session=session, run_id=first, target=RunState.completed) is False  # not running
    assert row(system, first).state == "dispatched"
    started(system, first)
    with system.database.transaction() as session:
        assert runs.set_state(session=session, run_id=first, target=RunState.paused) is True
    with system.database.transaction() as session:
        assert runs.set_state(session=session, run_id=first, target=RunState.interrupted) is True
    with system.database.transaction() as session:
        assert runs.set_state(session=session, run_id=first, target=RunState.cancelled) is True
    with system.database.transaction() as session:  # final: nothing moves it
        assert runs.set_state(session=session, run_id=first, target=RunState.running) is False
    assert row(system, first).state == "cancelled"
    with system.database.transaction() as session:
        assert Status(requests.get_by_uuid(session=session, test_uuid=uuid).status) is Status.Running


def add_twin(system: System, run_id: str) -> str:
    from fastlims.runs import twins

    with system.database.transaction() as session:
        made = twins.add_twin(session, run_id=run_id, bench="virtual-1", now=utcnow()).run_id
        again = twins.add_twin(session, run_id=run_id, bench="virtual-2", now=utcnow())  # a re-run adds nothing
        assert (again.run_id, again.bench, again.twin_of) == (made, "virtual-1", run_id)
    return made


def test_a_failed_twin_does_not_fail_the_request_and_is_named(system: System, requester: Actor) -> None:
    uuid, (physical,) = physical_request(system, 1)
    started(system, physical)
    twin = add_twin(system, physical)
    assert twin == f"{physical}.twin" and row(system, twin).bench_kind == "virtual"
    assert end(system, uuid, physical, {"status": "completed", "end_cause": "procedure_complete"}) == "Running"
    assert end(system, uuid, twin, {"status": "failed", "end_cause": "error", "reason": "FMU crashed"}) == "Completed"
    with system.database.transaction() as session:
        said = [e.reason or "" for e in requests.get_by_uuid(session=session, test_uuid=uuid).events]
    assert any(f"1 of 1 run(s) completed, 1 failed (run {twin} failed: FMU crashed)" in r for r in said), said


def test_a_completed_twin_does_not_complete_a_request_whose_measurement_failed(
    system: System, requester: Actor
) -> None:
    uuid, (physical,) = physical_request(system, 1)
    started(system, physical)
    twin = add_twin(system, physical)
    started(system, twin)
    assert end(system, uuid, twin, {"status": "completed", "end_cause": "procedure_complete"}) == "Running"
    failed = {"status": "failed", "end_cause": "safety_limit", "reason": "T1 61 °C > 60 °C"}
    assert end(system, uuid, physical, failed) == "Failed"
    with system.database.transaction() as session:
        reason = requests.get_by_uuid(session=session, test_uuid=uuid).failure_reason or ""
    assert f"run {physical} failed: T1 61 °C > 60 °C" in reason and "a prediction is not a measurement" in reason
